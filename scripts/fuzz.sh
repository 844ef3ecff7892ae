#!/bin/bash
# Runs every go test -fuzz target of the repository, one after another, each
# for $FUZZTIME (default 60s). Usage: scripts/fuzz.sh [TARGET...] (names from
# the list below; none means all). go test writes a crasher to the package's
# testdata/fuzz/TARGET/, where the plain `go test` run keeps it as a
# regression test. Exits 1 if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
# go test spends up to -fuzzminimizetime (its default: 60s) shrinking each
# new interesting input, during which the target explores nothing new; a
# shorter limit leaves most of FUZZTIME to exploring.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}

# The targets, as PACKAGE TARGET: the one list of them.
targets="
./config FuzzConfigLoad
./config FuzzParseEnvFile
./config FuzzKeyLines
./control FuzzControlRequest
./metrics FuzzStatsdDatagram
"

# A Fuzz function missing from the list would never run: refuse to start.
if ! diff <(awk 'NF == 2 { print $2 }' <<<"$targets" | sort) \
	<(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/^func //' | sort) >&2; then
	echo "fuzz.sh: the target list (<) differs from the Fuzz functions in the tree (>)" >&2
	exit 2
fi

failed=()
while read -r pkg name; do
	[[ -n $pkg ]] || continue
	if (($# > 0)) && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	echo "== $name ($pkg, $FUZZTIME)"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" || failed+=("$name")
done <<<"$targets"
if ((${#failed[@]} > 0)); then
	echo "fuzz.sh: failed: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz.sh: every target ran for $FUZZTIME without a crasher"

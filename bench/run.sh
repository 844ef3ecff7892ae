#!/bin/bash
# Runs every benchmark and prints its figures (README's Benchmarks section
# quotes them): Go micro-benchmarks, the idle footprint against supervisord,
# and reloads under load against supervisord and Gunicorn's HUP.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

echo "== Go benchmarks"
go test -run XXX -bench . -benchtime 200x ./metrics/ ./supervise/ | grep -E "^Benchmark|^ok"

if [ -x bench/idle.sh ]; then
	echo
	echo "== Idle footprint (bench/idle.sh)"
	bench/idle.sh
fi

echo
echo "== Reloads under load (bench/reload.sh)"
bench/reload.sh

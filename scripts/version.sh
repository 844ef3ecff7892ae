#!/bin/sh
# Prints the version of this source tree: the one string that
# `supervisor --version`, `supctl --version`, the manual pages and the .deb's
# Version field carry (the Makefile's VERSION, passed to scripts/deb.sh).
# It is a valid Debian version, derived from `git describe`:
#   tag v1.2.3 (or 1.2.3)        -> 1.2.3
#   4 commits after that tag     -> 1.2.3+4.gabc1234
#   no tag (N commits on HEAD)   -> 0~gitN.gabc1234
#   uncommitted changes          -> +dirty appended
#   not a git checkout           -> 0~dev
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "0~dev"
	exit 0
fi
desc=$(git describe --tags --match '[v0-9]*' --dirty 2>/dev/null || true)
dirty=""
case "$desc" in *-dirty) dirty="+dirty"; desc=${desc%-dirty} ;; esac
if [ -z "$desc" ]; then
	n=$(git rev-list --count HEAD)
	h=$(git rev-parse --short HEAD)
	[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty="+dirty"
	echo "0~git$n.g$h$dirty"
	exit 0
fi
desc=${desc#v}
# 1.2.3-4-gabc1234 (4 commits after the tag) -> 1.2.3+4.gabc1234
echo "$desc$dirty" | sed -E 's/-([0-9]+)-(g[0-9a-f]+)$/+\1.\2/'

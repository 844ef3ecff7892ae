#!/bin/sh
# mkvenv.sh VENV: make the demo virtualenv at VENV (idempotent).
#
# The virtualenv is made with `/usr/bin/python3 -m venv --system-site-packages`
# so that it sees Debian's gunicorn and flask, and gets the bin/gunicorn entry
# script pip would write (Debian's gunicorn package installs none into a
# virtualenv). Never run Gunicorn as `python -m gunicorn`: its USR2 re-exec
# would then put the gunicorn package first on sys.path.
#
# Run again, it leaves a good virtualenv as it is and rewrites the entry
# script only if it differs. It fails, saying which package to install, when
# /usr/bin/python3, python3-venv, gunicorn or python3-flask is missing.
set -eu

PYTHON=/usr/bin/python3

die() {
	echo "mkvenv.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: mkvenv.sh VENV"
# Absolute and normalised (no ./, .., //; symlinks kept): the #! line of
# bin/gunicorn needs an absolute path, and a rerun must write the same one.
VENV=$(realpath -m -s -- "$1") || die "cannot make $1 absolute"

[ -x "$PYTHON" ] || die "$PYTHON is missing: apt-get install python3 python3-venv gunicorn python3-flask"
"$PYTHON" -c 'import gunicorn' 2>/dev/null ||
	die "$PYTHON cannot import gunicorn: apt-get install gunicorn"
"$PYTHON" -c 'import flask' 2>/dev/null ||
	die "$PYTHON cannot import flask: apt-get install python3-flask"

if [ -f "$VENV/pyvenv.cfg" ] && [ -x "$VENV/bin/python" ]; then
	grep -Eq '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" ||
		die "$VENV exists without --system-site-packages: remove it and run again"
	echo "mkvenv.sh: $VENV exists, keeping it"
elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
	die "$VENV exists but is not a virtualenv (no pyvenv.cfg or bin/python): remove it and run again"
else
	"$PYTHON" -c 'import ensurepip' 2>/dev/null ||
		die "$PYTHON cannot make a virtualenv with pip: apt-get install python3-venv"
	mkdir -p "$(dirname "$VENV")"
	"$PYTHON" -m venv --system-site-packages "$VENV" ||
		die "$PYTHON -m venv --system-site-packages $VENV failed"
	echo "mkvenv.sh: made $VENV"
fi

"$VENV/bin/python" -c 'import gunicorn, flask' ||
	die "$VENV/bin/python cannot import gunicorn and flask"

SCRIPT=$VENV/bin/gunicorn
WANT="#!$VENV/bin/python
import sys
from gunicorn.app.wsgiapp import run
sys.exit(run())"
if [ -f "$SCRIPT" ] && [ -x "$SCRIPT" ] && [ "$(cat "$SCRIPT")" = "$WANT" ]; then
	exit 0
fi
printf '%s\n' "$WANT" >"$SCRIPT.tmp"
chmod 0755 "$SCRIPT.tmp"
mv -f "$SCRIPT.tmp" "$SCRIPT"
echo "mkvenv.sh: wrote $SCRIPT"

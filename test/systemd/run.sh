#!/bin/sh
# run.sh DEB: boots a real systemd in a container (systemd-nspawn, root an
# overlay of the host's with a tmpfs on top, its own network namespace with
# loopback only), installs DEB there and runs inside.sh as a oneshot unit:
# gunisup.service as shipped, under load, through kill -9, reload,
# watchdog and stop. Prints the results; exit 0 when every check passed.
# Needs root and systemd-container. Never boots systemd over the host's root.
set -eu
DEB=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
command -v systemd-nspawn >/dev/null || { echo "run.sh: apt-get install systemd-container" >&2; exit 2; }

# Under /srv: the unit's ReadWritePaths names it, and PrivateTmp= would hide
# a /tmp or /var/tmp path. The same path inside and out: the venv's
# bin/gunicorn names its interpreter by absolute path.
W=$(mktemp -d /srv/gunisup-systemd.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 0755 "$W"
mkdir -p "$W/results" "$W/units/multi-user.target.wants"
cp "$DEB" "$W/gunisup.deb"
cp "$HERE/inside.sh" "$W/inside.sh"
cp -r "$ROOT/contrib/example" "$W/app"
"$ROOT/contrib/example/mkvenv.sh" "$W/venv" >/dev/null
cat >"$W/units/probe.service" <<EOF
[Unit]
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/bin/sh $W/inside.sh $W; /bin/systemctl poweroff'
EOF
ln -s ../probe.service "$W/units/multi-user.target.wants/probe.service"

start=$(date +%s)
rc=0
timeout 400 systemd-nspawn --register=no --keep-unit --volatile=overlay --private-network \
	--bind="$W" --bind-ro="$W/units:/run/systemd/system" -D / -b --console=pipe \
	>"$W/results/boot.log" 2>&1 || rc=$?
echo "container exited $rc after $(($(date +%s) - start))s"
cat "$W/results/log" 2>/dev/null || { echo "no results; boot log:"; tail -50 "$W/results/boot.log"; exit 1; }
grep -q '^RESULT: all checks passed' "$W/results/log"

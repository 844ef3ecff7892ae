#!/bin/sh
# run.sh DEB: boots a real systemd in a container (systemd-nspawn, its root
# an overlay whose upper layer is a tmpfs over the host's root filesystem as
# the read-only lower layer, so that dpkg can install into /usr and /etc
# while nothing reaches the host; its own network namespace with loopback
# only), installs DEB there and runs inside.sh as a oneshot unit:
# gunisup.service as shipped, under load, through kill -9, reload,
# watchdog and stop. Prints the results; exit 0 when every check passed.
# RESULTS (default ./systemd-results) receives the container's log and
# hey reports. Needs root and systemd-container. Never boots systemd over the host's root.
set -eu
DEB=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
command -v systemd-nspawn >/dev/null || { echo "run.sh: apt-get install systemd-container" >&2; exit 2; }

# Under /srv: the unit's ReadWritePaths names it, and PrivateTmp= would hide
# a /tmp or /var/tmp path. The same path inside and out: the venv's
# bin/gunicorn names its interpreter by absolute path.
W=$(mktemp -d /srv/gunisup-systemd.XXXXXX)
trap 'umount "$W/root" 2>/dev/null; umount "$W/layers" 2>/dev/null; rm -rf "$W"' EXIT
chmod 0755 "$W"
mkdir -p "$W/layers" "$W/root"
mount -t tmpfs -o size=512m tmpfs "$W/layers"
mkdir -p "$W/layers/upper" "$W/layers/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/layers/upper,workdir=$W/layers/work" "$W/root"
mkdir -p "$W/results" "$W/units"
cp "$DEB" "$W/gunisup.deb"
cp "$HERE/inside.sh" "$W/inside.sh"
cp -r "$ROOT/contrib/example" "$W/app"
# Releases for `supctl deploy`: one good, three that must be rolled back
# (fails at import, answers 500, never boots).
for r in good importerror http500 hang; do mkdir -p "$W/releases/$r"; done
cat >"$W/releases/good/app.py" <<'EOF'
from flask import Flask
app = Flask(__name__)
@app.route("/")
def index():
    return "release=good\n"
@app.route("/healthz")
def healthz():
    return "ok\n"
EOF
echo 'raise ImportError("this release is broken")' >"$W/releases/importerror/app.py"
cat >"$W/releases/http500/app.py" <<'EOF'
from flask import Flask
app = Flask(__name__)
@app.route("/", defaults={"p": ""})
@app.route("/<path:p>")
def fail(p):
    return "broken\n", 500
EOF
printf 'import time\ntime.sleep(3600)\n' >"$W/releases/hang/app.py"
ln -s "$W/app" "$W/current"
"$ROOT/contrib/example/mkvenv.sh" "$W/venv" >/dev/null
# probe.target boots the basic system and the probe only (the host's own
# services, enabled in the lower layer, are not started).
cat >"$W/units/probe.target" <<EOF
[Unit]
Requires=basic.target
After=basic.target
Wants=probe.service
EOF
cat >"$W/units/probe.service" <<EOF
[Unit]
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/bin/sh $W/inside.sh $W; /bin/systemctl poweroff'
EOF

RESULTS=$(realpath -m "${RESULTS:-systemd-results}")
start=$(date +%s)
rc=0
timeout ${BOOT_TIMEOUT:-400} systemd-nspawn --register=no --keep-unit --private-network \
	--capability=CAP_BPF --system-call-filter="bpf pidfd_getfd" \
	--bind="$W" --bind-ro="$W/units:/run/systemd/system" -D "$W/root" -b --console=pipe systemd.unit=probe.target \
	>"$W/results/boot.log" 2>&1 || rc=$?
echo "container exited $rc after $(($(date +%s) - start))s"
mkdir -p "$RESULTS" && cp -r "$W/results/." "$RESULTS/"
cat "$W/results/log" 2>/dev/null || { echo "no results; boot log:"; tail -50 "$W/results/boot.log"; exit 1; }
grep -q '^RESULT: all checks passed' "$W/results/log"

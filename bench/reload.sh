#!/bin/bash
# reload.sh: code reloads under load, side by side:
#   - this supervisor, `supctl deploy` with strategy swap, then usr2
#   - Debian's supervisord 4.2.5, `supervisorctl restart web`
#   - plain Gunicorn, `kill -HUP` of its master
# Each run serves the same Flask app (GET / answers "version=vI") with
# Gunicorn 20.1.0 and 2 sync workers on 127.0.0.1, under `hey -c $CONNS`,
# and changes the served version N times. Reported per run: requests,
# failed requests (refused, reset/EOF, non-2xx, other), the reload
# command's duration, and the time from the command's start until a fresh
# connection gets the new version.
#
# Usage: bench/reload.sh            (N=10 CONNS=32 SETTLE=1s by default)
#        N=20 KEEP=1 bench/reload.sh (KEEP=1 keeps the work directory)
#        PEERS=0 bench/reload.sh     (only this supervisor's columns: no
#                                     supervisord, no Gunicorn HUP)
#
# How each target changes version:
#   - releases/vI/app.py exist side by side; `current` is a symlink.
#   - supervisor: `supctl deploy web releases/vI` (points `current`
#     atomically, reloads, points it back on failure).
#   - supervisord: point `current`, then `supervisorctl restart web`; the
#     program's directory is `current`, resolved at each start.
#   - Gunicorn HUP: started with `--chdir <root>/current`, so sys.path holds
#     the link's path and the new workers HUP forks import app.py through
#     the link: point `current`, then HUP. HUP never reloads the master
#     itself (its imports, interpreter, environment, sockets); this works
#     only because the app is not preloaded.
#
# hey runs with -z $Z as an upper bound and is stopped with SIGINT once the
# N reloads are done (it then prints its summary): runs differ in length,
# compare req/s rather than request counts.
set -euo pipefail

N=${N:-10}
CONNS=${CONNS:-32}
Z=${Z:-10m}
SETTLE=${SETTLE:-1s}
WORKERS=${WORKERS:-2}
PEERS=${PEERS:-1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/reloadbench.XXXXXX)
BIN=$WORK/bin
VENV=$WORK/venv
RESULTS=$WORK/results.jsonl
PIDS=()

log() { printf '== %s\n' "$*" >&2; }

# stop PID: TERM one process we started and wait for it.
stop() {
	local pid=$1
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop "$pid"
	done
	if [ "${KEEP:-0}" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

TOOLS="go hey"
if [ "$PEERS" = 1 ]; then TOOLS="$TOOLS supervisord supervisorctl"; fi
for tool in $TOOLS; do
	command -v "$tool" >/dev/null || { echo "reload.sh: $tool is missing" >&2; exit 1; }
done

# (a) binaries without -race, the virtualenv, release trees.
log "building into $BIN"
(cd "$ROOT" && go build -o "$BIN/" ./cmd/supervisor ./cmd/supctl ./bench/cmd/reloadbench)
"$ROOT/contrib/example/mkvenv.sh" "$VENV" >&2
RB=$BIN/reloadbench

# make_tree DIR: DIR/releases/v0..vN/app.py and DIR/current -> releases/v0.
make_tree() {
	local dir=$1 i
	for i in $(seq 0 "$N"); do
		mkdir -p "$dir/releases/v$i"
		cat >"$dir/releases/v$i/app.py" <<EOF
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "version=v$i\n"


@app.route("/healthz")
def healthz():
    return "ok"
EOF
	done
	ln -sfn "$dir/releases/v0" "$dir/current"
}

# The shell command that points DIR/current at releases/v$I atomically.
point_cmd() {
	printf 'ln -sfn "%s/releases/v$I" "%s/current.new" && mv -Tf "%s/current.new" "%s/current"' "$1" "$1" "$1" "$1"
}

# (b) this supervisor, once per strategy.
for strategy in swap usr2; do
	T=$WORK/supervisor-$strategy
	mkdir -p "$T"
	make_tree "$T"
	PORT=$("$RB" freeport)
	cat >"$T/supervisor.toml" <<EOF
[supervisor]
control_socket = "$T/ctl.sock"
http = ""
run_dir = "$T/run"

[app.web]
allow_root = true
virtualenv = "$VENV"
directory = "$T/current"
wsgi = "app:app"
workers = $WORKERS
listen = ["tcp://127.0.0.1:$PORT"]

[app.web.reload]
strategy = "$strategy"

[app.web.health]
path = "/healthz"
interval = "1s"
healthy_after = 2
EOF
	log "supervisor ($strategy) on 127.0.0.1:$PORT"
	"$BIN/supervisor" -c "$T/supervisor.toml" >"$T/supervisor.log" 2>&1 &
	SUP=$!
	PIDS+=("$SUP")
	"$RB" wait "http://127.0.0.1:$PORT/" version=v0 60s
	"$RB" run -label "supervisor $strategy" -url "http://127.0.0.1:$PORT/" -n "$N" -c "$CONNS" -z "$Z" -settle "$SETTLE" \
		-reload "\"$BIN/supctl\" -s \"$T/ctl.sock\" deploy web \"$T/releases/v\$I\" >>\"$T/supctl.log\" 2>&1" \
		-out "$RESULTS" >&2 || log "supervisor $strategy: a reload failed (see $T/supctl.log)"
	stop "$SUP"
done

if [ "$PEERS" = 1 ]; then
# (c) supervisord 4.2.5 restarting Gunicorn on a port of its own.
T=$WORK/supervisord
mkdir -p "$T"
make_tree "$T"
PORT=$("$RB" freeport)
cat >"$T/supervisord.conf" <<EOF
[unix_http_server]
file = $T/supervisord.sock

[supervisord]
logfile = $T/supervisord.log
pidfile = $T/supervisord.pid
childlogdir = $T

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://$T/supervisord.sock

[program:web]
command = $VENV/bin/gunicorn --bind 127.0.0.1:$PORT --workers $WORKERS app:app
directory = $T/current
environment = PATH="$VENV/bin:/usr/bin:/bin"
stopsignal = TERM
stopwaitsecs = 30
startsecs = 1
redirect_stderr = true
stdout_logfile = $T/web.log
EOF
log "supervisord on 127.0.0.1:$PORT"
supervisord -n -c "$T/supervisord.conf" >"$T/supervisord.out" 2>&1 &
SD=$!
PIDS+=("$SD")
"$RB" wait "http://127.0.0.1:$PORT/" version=v0 60s
"$RB" run -label "supervisord restart" -url "http://127.0.0.1:$PORT/" -n "$N" -c "$CONNS" -z "$Z" -settle "$SETTLE" \
	-prepare "$(point_cmd "$T")" \
	-reload "supervisorctl -c \"$T/supervisord.conf\" restart web >>\"$T/supervisorctl.log\" 2>&1" \
	-out "$RESULTS" >&2 || log "supervisord: a reload failed"
stop "$SD"

# (d) plain Gunicorn, HUP.
T=$WORK/gunicorn-hup
mkdir -p "$T"
make_tree "$T"
PORT=$("$RB" freeport)
log "gunicorn (HUP) on 127.0.0.1:$PORT"
(cd "$T/current" && exec "$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers "$WORKERS" \
	--chdir "$T/current" --pid "$T/gunicorn.pid" app:app >"$T/gunicorn.log" 2>&1) &
GU=$!
PIDS+=("$GU")
"$RB" wait "http://127.0.0.1:$PORT/" version=v0 60s
"$RB" run -label "gunicorn HUP" -url "http://127.0.0.1:$PORT/" -n "$N" -c "$CONNS" -z "$Z" -settle "$SETTLE" \
	-prepare "$(point_cmd "$T")" \
	-reload "kill -HUP \$(cat \"$T/gunicorn.pid\")" \
	-out "$RESULTS" >&2 || log "gunicorn HUP: a reload failed"
stop "$GU"
fi

echo
echo "N=$N reloads each, hey -c $CONNS, Gunicorn 20.1.0 with $WORKERS sync workers, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$RB" table "$RESULTS"

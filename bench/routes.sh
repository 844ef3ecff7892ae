#!/bin/bash
# routes.sh: what per-route metrics cost the supervisor.
#
# One Gunicorn app (4 sync workers, a Flask app answering any path at once)
# runs twice under the same supervisor binary: route_metrics = true, then
# false. For each, hey sends REQUESTS requests (default 100000, -c 8) to
# /items/ID and the script reads the supervisor process's own CPU time
# (utime+stime of /proc/PID/stat, Gunicorn not included) before and after:
# the figure is the supervisor's CPU seconds per 100k requests. The statsd
# bridge runs in both (it is the app-wide request metrics).
#
# Then, with route metrics on, 1,000 distinct raw paths that no rule
# collapses (/page-N/x, 5 requests each) overflow route_cap (100): the
# script prints the supervisor's VmRSS before and after, and how many
# distinct routes /metrics shows (100 plus "other", plus the ones before).
#
# The machine's noise is of the order of the difference: ROUNDS (default 2)
# alternates on and off runs so that a drift shows.
#
# Usage: bench/routes.sh           (REQUESTS=N, ROUNDS=N to change the runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
N=${REQUESTS:-100000}
ROUNDS=${ROUNDS:-2}
TCK=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_work routes-bench

echo "building supervisor and supctl with make build's release flags"
make -s build BINOUT="$WORK/bin/" >/dev/null
contrib/example/mkvenv.sh "$WORK/venv" >/dev/null
mkdir -p "$WORK/app"
cat >"$WORK/app/app.py" <<'EOF'
from flask import Flask

app = Flask(__name__)


@app.route("/", defaults={"p": ""})
@app.route("/<path:p>")
def any_path(p):
    return "ok\n"
EOF

# start_supervisor ON: starts the supervisor with route_metrics = ON and
# waits until the app answers; sets SUP, PORT, MPORT.
start_supervisor() {
	PORT=$(free_port)
	MPORT=$(free_port)
	cat >"$WORK/supervisor.toml" <<EOF
[supervisor]
control_socket = "$WORK/ctl.sock"
http = "127.0.0.1:$MPORT"
run_dir = "$WORK/run"

[app.web]
allow_root = true
virtualenv = "$WORK/venv"
directory = "$WORK/app"
wsgi = "app:app"
workers = 4
listen = ["tcp://127.0.0.1:$PORT"]
route_metrics = $1
EOF
	"$WORK/bin/supervisor" -c "$WORK/supervisor.toml" >"$WORK/supervisor-$1.log" 2>&1 &
	SUP=$!
	PIDS+=("$SUP")
	wait_http "$PORT" || die "the app never answered: $(cat "$WORK/supervisor-$1.log")"
}

# routes_shown: distinct route labels of supervisor_route_requests_total.
routes_shown() {
	curl -fsS "http://127.0.0.1:$MPORT/metrics" |
		grep '^supervisor_route_requests_total{' | sed 's/.*route="\([^"]*\)".*/\1/' | sort -u | wc -l
}

# run ON: one measured hey run; prints a table row.
run() {
	start_supervisor "$1"
	local t0 t1 out rps
	t0=$(cpu_ticks "$SUP")
	out=$(hey -n "$N" -c 8 "http://127.0.0.1:$PORT/items/12345")
	t1=$(cpu_ticks "$SUP")
	rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
	awk -v m="$1" -v d="$((t1 - t0))" -v tck="$TCK" -v n="$N" -v r="$rps" -v rss="$(status_kb "$SUP" VmRSS)" 'BEGIN {
		printf "%-14s %9d %9.1f %9.3f %14.3f %9.1f\n", m, n, r, d / tck, d / tck * 100000 / n, rss / 1024 }'
	if [ "$1" = true ] && [ ! -e "$WORK/distinct" ]; then
		distinct_paths
	fi
	stop_pid "$SUP"
}

# distinct_paths: 1,000 distinct raw paths against the running supervisor;
# prints RSS and route counts before and after.
distinct_paths() {
	local before after r0 r1
	before=$(status_kb "$SUP" VmRSS)
	r0=$(routes_shown)
	/usr/bin/python3 - "$PORT" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
for i in range(1000):
    for _ in range(5):
        c.request("GET", "/page-%d/x" % i)
        c.getresponse().read()
EOF
	after=$(status_kb "$SUP" VmRSS)
	r1=$(routes_shown)
	echo "$before $after $r0 $r1" >"$WORK/distinct"
}

echo
echo "supervisor CPU per 100k requests, route metrics on and off (hey -c 8; CPU of the supervisor process only)"
printf "%-14s %9s %9s %9s %14s %9s\n" route_metrics requests req/s cpu_sec cpu_s/100k_req rss_MiB
for _ in $(seq 1 "$ROUNDS"); do
	run true
	run false
done
read -r before after r0 r1 <"$WORK/distinct"
echo
awk -v b="$before" -v a="$after" -v r0="$r0" -v r1="$r1" 'BEGIN {
	printf "1,000 distinct raw paths (5 requests each), route_cap 100: supervisor RSS %.1f -> %.1f MiB (%+.1f), routes in /metrics %d -> %d\n",
		b / 1024, a / 1024, (a - b) / 1024, r0, r1 }'

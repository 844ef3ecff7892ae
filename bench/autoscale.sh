#!/bin/bash
# autoscale.sh: the curve of a load step against a Gunicorn app whose
# workers the supervisor scales (workers = "2..8"), beside the same step
# against fixed 2 and fixed 8 workers.
#
# For each mode it starts the supervisor (built as `make build` builds it)
# with one app whose GET /sleep sleeps SLEEP_MS (default 20) ms, so that two
# sync workers serve about 100 requests a second. hey then sends LOW clients
# (10) for LOW_S seconds (5), HIGH clients (200) for HIGH_S seconds (20),
# and nothing for IDLE_S seconds (25, long enough for the range to step
# down). Every 0.5 s the script scrapes /metrics: the accept queue
# (supervisor_listener_queue_length), the live workers
# (supervisor_app_workers) and the target (supervisor_app_workers_target).
# It prints, per mode, one row a second (queue, workers, target as last
# scraped in that second; requests answered and their p99 from hey's CSV),
# then a summary: requests, failures and p99 of each phase.
#
# Usage: bench/autoscale.sh        (MODES="2 8 2..8", LOW_S=, HIGH_S=, IDLE_S=,
#                                   LOW=, HIGH=, SLEEP_MS= to change; KEEP=1 keeps the work dir)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
MODES=${MODES:-"2 8 2..8"}
LOW=${LOW:-10}
HIGH=${HIGH:-200}
LOW_S=${LOW_S:-5}
HIGH_S=${HIGH_S:-20}
IDLE_S=${IDLE_S:-25}
SLEEP_MS=${SLEEP_MS:-20}
WORK=$(mktemp -d /tmp/autoscale-bench.XXXXXX)
PIDS=()

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

log() { printf '== %s\n' "$*" >&2; }

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for tool in go hey curl python3; do
	command -v "$tool" >/dev/null || { echo "autoscale.sh: $tool is missing" >&2; exit 1; }
done

log "building into $WORK/bin"
(cd "$ROOT" && make -s build BINOUT="$WORK/bin/" >/dev/null)
"$ROOT/contrib/example/mkvenv.sh" "$WORK/venv" >&2
mkdir -p "$WORK/app"
cat >"$WORK/app/app.py" <<'EOF'
import time

from flask import Flask, request

app = Flask(__name__)


@app.route("/sleep")
def sleep():
    time.sleep(int(request.args.get("ms", "10")) / 1000.0)
    return "slept\n"
EOF

# workers_value MODE: the TOML value of workers for MODE.
workers_value() { case $1 in *..*) printf '"%s"' "$1" ;; *) printf '%s' "$1" ;; esac; }

# scrape_loop METRICS_ADDR OUT: a line "SECONDS QUEUE WORKERS TARGET" every
# 0.5 s into OUT, SECONDS since T0 (exported), until killed.
scrape_loop() {
	local m q w t now
	while :; do
		m=$(curl -s --max-time 2 "http://$1/metrics" || true)
		q=$(awk '/^supervisor_listener_queue_length\{/ { s += $NF } END { print s + 0 }' <<<"$m")
		w=$(awk '/^supervisor_app_workers\{/ { print $NF }' <<<"$m")
		t=$(awk '/^supervisor_app_workers_target\{/ { print $NF }' <<<"$m")
		now=$(date +%s.%N)
		echo "$(awk -v a="$now" -v b="$T0" 'BEGIN { printf "%.2f", a - b }') $q ${w:-0} ${t:--}" >>"$2"
		sleep 0.5
	done
}

# run_mode MODE: one load step against MODE; the per-second table and the
# summary on stdout.
run_mode() {
	local mode=$1 dir=$WORK/run-${1//./_} port http sup
	mkdir -p "$dir"
	port=$(free_port)
	http=127.0.0.1:$(free_port)
	cat >"$dir/supervisor.toml" <<EOF
[supervisor]
control_socket = "$dir/ctl.sock"
http = "$http"
run_dir = "$dir/run"

[app.web]
allow_root = true
virtualenv = "$WORK/venv"
directory = "$WORK/app"
wsgi = "app:app"
workers = $(workers_value "$mode")
listen = ["tcp://127.0.0.1:$port"]
backlog = 2048
stop_timeout = "10s"
EOF
	"$WORK/bin/supervisor" -c "$dir/supervisor.toml" >"$dir/supervisor.log" 2>&1 &
	sup=$!
	PIDS+=("$sup")
	for _ in $(seq 1 150); do
		curl -sf --max-time 1 "http://127.0.0.1:$port/sleep?ms=0" >/dev/null && break
		sleep 0.2
	done
	curl -sf --max-time 2 "http://127.0.0.1:$port/sleep?ms=0" >/dev/null ||
		{ tail -20 "$dir/supervisor.log" >&2; echo "autoscale.sh: $mode never served" >&2; exit 1; }
	log "workers = $mode: $LOW clients ${LOW_S}s, $HIGH clients ${HIGH_S}s, idle ${IDLE_S}s"
	T0=$(date +%s.%N)
	export T0
	scrape_loop "$http" "$dir/scrape.txt" &
	local scraper=$!
	local url="http://127.0.0.1:$port/sleep?ms=$SLEEP_MS"
	echo "low $(date +%s.%N)" >"$dir/phases.txt"
	hey -c "$LOW" -z "${LOW_S}s" -t 30 -o csv "$url" >"$dir/low.csv"
	echo "high $(date +%s.%N)" >>"$dir/phases.txt"
	hey -c "$HIGH" -z "${HIGH_S}s" -t 30 -o csv "$url" >"$dir/high.csv"
	echo "idle $(date +%s.%N)" >>"$dir/phases.txt"
	sleep "$IDLE_S"
	kill "$scraper" 2>/dev/null || true
	wait "$scraper" 2>/dev/null || true
	stop_pid "$sup"
	grep -h 'workers scaled' "$dir/supervisor.log" | sed 's/^/    /' >"$dir/steps.txt" || true
	python3 - "$mode" "$T0" "$dir" <<'EOF'
import csv, math, sys
mode, t0, d = sys.argv[1], float(sys.argv[2]), sys.argv[3]
starts = {}
for line in open(d + "/phases.txt"):
    name, at = line.split()
    starts[name] = float(at) - t0
per_sec, phase = {}, {}
for name in ("low", "high"):
    rows = list(csv.reader(open("%s/%s.csv" % (d, name))))[1:]
    lat, failed = [], 0
    for r in rows:
        if len(r) < 8:
            continue
        rt, code, off = float(r[0]), r[6], float(r[7])
        if not code.startswith("2"):
            failed += 1
            continue
        lat.append(rt)
        sec = int(starts[name] + off + rt)
        per_sec.setdefault(sec, []).append(rt)
    phase[name] = (len(rows), failed, lat)
scr = {}
for line in open(d + "/scrape.txt"):
    t, q, w, tg = line.split()
    scr[int(float(t))] = (q, w, tg)

def p99(xs):
    if not xs:
        return "-"
    xs = sorted(xs)
    return "%.0f" % (1000 * xs[min(len(xs) - 1, int(math.ceil(0.99 * len(xs))) - 1)])

print("workers = %s" % mode)
print("  t(s)  phase  queue  workers  target  answered  p99_ms")
last = ("0", "0", "-")
for s in range(0, max(scr) + 1):
    name = "idle"
    if s < starts["high"]:
        name = "low"
    elif s < starts["idle"]:
        name = "high"
    last = scr.get(s, last)
    xs = per_sec.get(s, [])
    print("  %4d  %-5s  %5s  %7s  %6s  %8d  %6s" % (s, name, last[0], last[1], last[2], len(xs), p99(xs)))
for name in ("low", "high"):
    n, failed, lat = phase[name]
    print("  %s: %d requests, %d failed, p99 %s ms" % (name, n, failed, p99(lat)))
EOF
	cat "$dir/steps.txt"
	echo
}

for mode in $MODES; do run_mode "$mode"; done

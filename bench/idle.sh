#!/bin/bash
# idle.sh: the idle footprint of the supervisor against Debian's supervisord
# 4.2.5, each running the same Gunicorn app (contrib/example, 2 workers).
#
# For each: start it, wait until the app answers, then sample the manager
# process itself (not Gunicorn) for IDLE_SECONDS (default 30): VmRSS and
# VmHWM from /proc/PID/status, CPU time as utime+stime from /proc/PID/stat.
# The Gunicorn processes are the same in both runs; their RSS is shown for
# scale only. Binaries are built as `make build` builds them (release flags,
# no -race). Acceptance: supervisor RSS under 15 MiB, CPU near zero.
#
# Usage: bench/idle.sh            (IDLE_SECONDS=N to change the window)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin"
SECS=${IDLE_SECONDS:-30}
TCK=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_work idle-bench

# tree_rss_kb PID: summed VmRSS of PID's descendants (Gunicorn), for scale.
tree_rss_kb() {
	local total=0 kids pid
	kids=$(ps -o pid= --ppid "$1" || true)
	for pid in $kids; do
		total=$((total + $(status_kb "$pid" VmRSS || echo 0) + $(tree_rss_kb "$pid")))
	done
	echo "$total"
}

# sample NAME PID: sample PID for SECS seconds and print one table row.
sample() {
	local name=$1 pid=$2 t0 t1 rss0 rss1 rssmax=0 rss hwm app
	rss0=$(status_kb "$pid" VmRSS)
	t0=$(cpu_ticks "$pid")
	for _ in $(seq 1 "$SECS"); do
		sleep 1
		rss=$(status_kb "$pid" VmRSS)
		[ "$rss" -gt "$rssmax" ] && rssmax=$rss
	done
	t1=$(cpu_ticks "$pid")
	rss1=$(status_kb "$pid" VmRSS)
	hwm=$(status_kb "$pid" VmHWM)
	app=$(tree_rss_kb "$pid")
	awk -v n="$name" -v p="$pid" -v a="$rss0" -v b="$rss1" -v m="$rssmax" -v h="$hwm" \
		-v d="$((t1 - t0))" -v tck="$TCK" -v s="$SECS" -v g="$app" 'BEGIN {
		printf "%-22s %7d %9.1f %9.1f %9.1f %9.1f %8d %9.3f %7.3f %10.1f\n",
			n, p, a / 1024, b / 1024, m / 1024, h / 1024, d, d / tck, 100 * d / tck / s, g / 1024 }'
	echo "$name $rss1" >>"$WORK/rss"
}

# breakdown PID METRICS_PORT: where the supervisor's RSS goes, from
# /proc/PID/smaps (file-backed pages of its own binary and of shared
# libraries, anonymous pages) and from its own /metrics (Go heap in use and
# live, goroutine stacks). File-backed pages are clean page cache, dropped
# under memory pressure; a fault maps the whole page-cache folio around the
# touched page, and folios are large after a big read-ahead (see
# /sys/block/*/queue/read_ahead_kb) or a fresh write, so nearly the whole
# binary (text, rodata, function table) is resident: its RSS follows the size
# of what is linked, not of what runs. Shared libraries (libc) are mostly
# pages other processes map too: their proportional share (Pss) is small.
breakdown() {
	local pid=$1 mport=$2 exe metrics
	exe=$(readlink "/proc/$pid/exe")
	metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$mport/metrics")
	awk -v exe="$exe" '
		/^[0-9a-f]+-[0-9a-f]+ / { path = $6 }
		/^Rss:/ {
			if (path == exe) bin += $2
			else if (path ~ /^\//) lib += $2
			else anon += $2
		}
		/^Pss:/ && path != exe && path ~ /^\// { libpss += $2 }
		END { printf "breakdown (MiB): binary %.1f, shared libraries %.1f (proportional share %.1f), anonymous %.1f", bin / 1024, lib / 1024, libpss / 1024, anon / 1024 }
	' "/proc/$pid/smaps"
	awk '
		$1 == "go_memstats_heap_inuse_bytes" { inuse = $2 }
		$1 == "go_memstats_heap_alloc_bytes" { live = $2 }
		$1 == "go_memstats_stack_inuse_bytes" { stack = $2 }
		END { printf " (Go heap in use %.1f, of it allocated %.1f; goroutine stacks %.1f)\n", inuse / 1048576, live / 1048576, stack / 1048576 }
	' <<<"$metrics"
	printf "binary %s: text+rodata+data %.1f MiB\n" "$exe" "$(size -d "$exe" | awk 'NR == 2 { print ($1 + $2) / 1048576 }')"
}

echo "building supervisor and supctl with make build's release flags"
make -s build BINOUT="$WORK/bin/" >/dev/null
contrib/example/mkvenv.sh "$WORK/venv" >/dev/null

# --- the supervisor ---------------------------------------------------------
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
directory = "$ROOT/contrib/example"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:$PORT"]
EOF
"$WORK/bin/supervisor" -c "$WORK/supervisor.toml" >"$WORK/supervisor.log" 2>&1 &
SUP=$!
PIDS+=("$SUP")
wait_http "$PORT" || die "nothing answered on 127.0.0.1:$PORT within 60 s"
for _ in $(seq 1 300); do
	"$WORK/bin/supctl" -s "$WORK/ctl.sock" status web --json 2>/dev/null | grep -q '"state": *"running"' && break
	sleep 0.2
done
"$WORK/bin/supctl" -s "$WORK/ctl.sock" status web --json | grep -q '"state": *"running"' ||
	die "web never reached running: $(cat "$WORK/supervisor.log")"

echo
echo "idle for ${SECS}s, one Gunicorn app with 2 workers (MiB; CPU in ticks of 1/${TCK} s)"
printf "%-22s %7s %9s %9s %9s %9s %8s %9s %7s %10s\n" \
	manager pid rss_start rss_end rss_max vm_hwm cpu_tick cpu_sec cpu_% gunicorn
sample "supervisor (Go)" "$SUP"
breakdown "$SUP" "$MPORT"

# --- Debian's supervisord ---------------------------------------------------
# run_supervisord: the same app under /usr/bin/supervisord, sampled likewise.
run_supervisord() {
	local PORT2 SD SDVER
	SDVER=$(/usr/bin/supervisord --version)
	PORT2=$(free_port)
	cat >"$WORK/supervisord.conf" <<EOF
[supervisord]
nodaemon=true
logfile=$WORK/supervisord.log
pidfile=$WORK/supervisord.pid
childlogdir=$WORK

[unix_http_server]
file=$WORK/supervisord.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$WORK/supervisord.sock

[program:web]
command=$WORK/venv/bin/gunicorn --workers 2 --bind 127.0.0.1:$PORT2 app:app
directory=$ROOT/contrib/example
autostart=true
stopasgroup=true
killasgroup=true
EOF
	/usr/bin/supervisord -c "$WORK/supervisord.conf" >/dev/null 2>&1 &
	SD=$!
	PIDS+=("$SD")
	wait_http "$PORT2" || die "nothing answered on 127.0.0.1:$PORT2 within 60 s"
	sample "supervisord $SDVER" "$SD"
}
if [ -x /usr/bin/supervisord ]; then
	run_supervisord
else
	echo "supervisord: not installed (apt-get install supervisor), its row is skipped"
fi

echo
awk '{ printf "%s RSS: %.1f MiB\n", ($1 == "supervisor" ? "supervisor (Go)" : "supervisord " $2), $NF / 1024 }' "$WORK/rss"
sup_kb=$(awk '$1 == "supervisor" { print $NF }' "$WORK/rss")
if [ "$sup_kb" -lt $((15 * 1024)) ]; then
	echo "acceptance: supervisor RSS under 15 MiB: yes"
else
	echo "acceptance: supervisor RSS under 15 MiB: NO"
fi

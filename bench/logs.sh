#!/bin/bash
# logs.sh: the log acceptance figures of the logs issue, measured on this
# machine. Binaries are built without -race. Usage:
#
#   bench/logs.sh [MODE...]      MODE: stall-file stall-stdout rotate idle cpu
#                                (none: all of them, about 4 minutes)
#
# stall-file    A Flask app under Gunicorn (2 workers, access log on stdout)
#               with log = "file" on a 64 KiB tmpfs filled up, writes 100 MB
#               to stdout in one request while hey loads it. Prints hey's
#               requests and failures, the time the 100 MB took, and
#               supervisor_log_dropped_lines_total; then frees the space and
#               checks that a marker line written after reaches the file.
# stall-stdout  The same with log = "stdout" and the supervisor's stdout a
#               fifo whose reader (cat) is stopped with SIGSTOP, then resumed.
# rotate        log_max_size = 1 (MiB), log_max_files = 5: an app writes
#               RATE (10,000) numbered lines a second for SECS (60) seconds.
#               A checker polls the log directory and hard-links every
#               rotated file as it appears (the link keeps the data after
#               the rotation deletes the name); then lines 1..N must appear
#               exactly once, in order, across the links and the current file.
# idle          APPS (500) idle process apps (sleep) under one supervisor:
#               OS threads (/proc/PID/status Threads) and VmRSS. With
#               BEFORE_REV=REV (a git revision), the supervisor built from
#               REV is measured the same way first.
# cpu           The supervisor's CPU (utime+stime ticks, /proc/PID/stat) per
#               100,000 lines an app writes to a log file (one write each,
#               scenarios in CPU_SCENARIOS), then the same app under Debian's
#               supervisord (stdout_logfile), in one run.
#
# Acceptance: stall: 0 failed requests, dropped > 0, marker found; rotate:
# 0 lost, 0 repeated; idle: threads <= 32. The script exits 1 if one fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin"
TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/logs-bench.XXXXXX)
PIDS=()   # processes to end at exit
STOPPED=() # processes sent SIGSTOP, to continue at exit
MOUNTS=() # tmpfs mounts to unmount at exit
FAILED=0
# shellcheck source=bench/lib.sh
. bench/lib.sh

cleanup() {
	local pid m
	for pid in "${STOPPED[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || echo "logs.sh: umount $m failed" >&2; done
	rm -rf "$WORK"
}
trap cleanup EXIT

die() {
	echo "logs.sh: $*" >&2
	exit 1
}

# verdict OK TEXT: prints an acceptance line and remembers a failure.
verdict() {
	if [ "$1" = 1 ]; then
		echo "acceptance: $2: yes"
	else
		echo "acceptance: $2: NO"
		FAILED=1
	fi
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	for _ in $(seq 1 $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what: not within $secs s"
}

# dropped MPORT APP: supervisor_log_dropped_lines_total{app="APP"}.
dropped() {
	curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v a="app=\"$2\"" '/^supervisor_log_dropped_lines_total\{/ && index($0, a) { printf "%.0f\n", $NF; found = 1 } END { if (!found) print "missing" }'
}

build() {
	[ -x "$WORK/bin/supervisor" ] && return 0
	echo "building supervisor and supctl (no -race)"
	go build -o "$WORK/bin/" ./cmd/supervisor ./cmd/supctl
}

# start_sup CONFIG OUT: starts the supervisor on CONFIG, stdout to OUT
# (a file or a fifo), stderr to CONFIG.err; sets SUP. GOMAXPROCS, if set
# and not empty, is passed on.
start_sup() {
	env ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} "$WORK/bin/supervisor" -c "$1" >"$2" 2>"$1.err" &
	SUP=$!
	PIDS+=("$SUP")
}

# running SOCK APP: whether APP is running.
running() { "$WORK/bin/supctl" -s "$1" status "$2" --json 2>/dev/null | grep -q '"state": *"running"'; }

# --- stall: 100 MB of stdout against a stalled sink -------------------------

# The stall app: GET / answers; GET /spew?mb=N writes N MB of 100-byte lines
# to stdout and answers with the time it took; GET /mark?tag=T prints T.
write_stall_app() {
	mkdir -p "$WORK/app"
	cat >"$WORK/app/spew.py" <<'EOF'
import sys, time
from flask import Flask, request

app = Flask(__name__)

@app.route("/")
def index():
    return "ok\n"

@app.route("/spew")
def spew():
    mb = int(request.args.get("mb", "100"))
    line = "spew " + "x" * 94 + "\n"
    t0 = time.monotonic()
    for _ in range(mb * 10000):
        sys.stdout.write(line)
    sys.stdout.flush()
    return "wrote %d MB in %.2f s\n" % (mb, time.monotonic() - t0)

@app.route("/mark")
def mark():
    print("marker " + request.args["tag"], flush=True)
    return "marked\n"
EOF
	[ -x "$WORK/venv/bin/gunicorn" ] || contrib/example/mkvenv.sh "$WORK/venv" >/dev/null
}

# stall_config NAME SINKLINES: writes $WORK/NAME.toml, one Gunicorn app web.
stall_config() {
	PORT=$(free_port)
	MPORT=$(free_port)
	cat >"$WORK/$1.toml" <<EOF
[supervisor]
control_socket = "$WORK/$1.sock"
http = "127.0.0.1:$MPORT"
run_dir = "$WORK/run-$1"

[app.web]
allow_root = true
virtualenv = "$WORK/venv"
directory = "$WORK/app"
wsgi = "spew:app"
workers = 2
listen = ["tcp://127.0.0.1:$PORT"]
args = ["--access-logfile", "-"]
$2
EOF
}

# stall_load NAME: hey for 20 s against / while one request writes 100 MB;
# prints both, and the dropped-lines metric.
stall_load() {
	hey -z 20s -c 4 -t 10 "http://127.0.0.1:$PORT/" >"$WORK/$1.hey" 2>&1 &
	local hey=$!
	PIDS+=("$hey")
	local spew
	spew=$(curl -sS --max-time 120 "http://127.0.0.1:$PORT/spew?mb=100") || die "$1: the 100 MB request failed"
	echo "100 MB request: $spew"
	wait "$hey" || die "$1: hey failed: $(cat "$WORK/$1.hey")"
	OK=$(awk '/^ *\[200\]/ { print $2 }' "$WORK/$1.hey")
	ALL=$(awk '/^ *\[[0-9]+\]/ { n += $2 } END { print n + 0 }' "$WORK/$1.hey")
	ERRS=$(awk '/^Error distribution:/ { e = 1; next } e && /^ *\[/ { gsub(/[][]/, "", $1); n += $1 } END { print n + 0 }' "$WORK/$1.hey")
	FAIL=$((ALL - ${OK:-0} + ERRS))
	DROP=$(dropped "$MPORT" web)
	echo "hey -z 20s -c 4: requests $((ALL + ERRS)), 200 OK ${OK:-0}, failed $FAIL"
	echo "supervisor_log_dropped_lines_total{app=\"web\"} = $DROP"
}

# stall_resume NAME SINK: writes a marker line and waits until it is in SINK.
stall_resume() {
	local tag="resumed-$RANDOM$RANDOM" found=0
	curl -fsS --max-time 10 "http://127.0.0.1:$PORT/mark?tag=$tag" >/dev/null || die "$1: /mark failed"
	for _ in $(seq 1 150); do
		if grep -q "marker $tag" "$2"; then found=1; break; fi
		sleep 0.2
	done
	echo "marker written after the sink recovered: $([ $found = 1 ] && echo found || echo MISSING) in $2"
	echo "drop notices in the sink: $(grep -c 'lines dropped' "$2" || true)"
	verdict "$([ "$FAIL" = 0 ] && echo 1)" "$1: 0 failed requests"
	verdict "$([ "$DROP" != missing ] && [ "$DROP" -gt 0 ] && echo 1)" "$1: dropped lines counted"
	verdict "$found" "$1: logging resumed by itself"
}

stall_file() {
	echo "== stall-file: log = \"file\" on a full 64 KiB tmpfs"
	build
	write_stall_app
	local dir=$WORK/tmpfs
	mkdir -p "$dir"
	mount -t tmpfs -o size=64k tmpfs "$dir" || die "mount a tmpfs on $dir (needs root)"
	MOUNTS+=("$dir")
	stall_config file "log = \"file\"
log_file = \"$dir/web.log\""
	start_sup "$WORK/file.toml" "$WORK/file.out"
	wait_for 60 "web running" running "$WORK/file.sock" web
	# Fill what is left of the tmpfs (dd stops at ENOSPC).
	dd if=/dev/zero of="$dir/fill" bs=1k 2>/dev/null || true
	df -k "$dir" | tail -1 | awk '{ printf "tmpfs: %s KiB size, %s KiB available\n", $2, $4 }'
	stall_load file
	rm -f "$dir/fill"
	echo "space returned: removed the filler ($(df -k "$dir" | awk 'NR == 2 { print $4 }') KiB available)"
	stall_resume stall-file "$dir/web.log"
	stop_pid "$SUP"
}

stall_stdout() {
	echo "== stall-stdout: log = \"stdout\", the supervisor's stdout a fifo whose reader is stopped"
	build
	write_stall_app
	mkfifo "$WORK/stdout.fifo"
	cat "$WORK/stdout.fifo" >"$WORK/stdout.log" &
	local reader=$!
	PIDS+=("$reader")
	stall_config stdout 'log = "stdout"'
	start_sup "$WORK/stdout.toml" "$WORK/stdout.fifo"
	wait_for 60 "web running" running "$WORK/stdout.sock" web
	kill -STOP "$reader"
	STOPPED+=("$reader")
	echo "reader (cat, pid $reader) stopped"
	stall_load stdout
	kill -CONT "$reader"
	echo "reader continued"
	stall_resume stall-stdout "$WORK/stdout.log"
	stop_pid "$SUP"
}

# --- rotate: numbered lines across rotations --------------------------------

rotate() {
	local rate=${RATE:-10000} secs=${SECS:-60}
	local total=$((rate * secs)) dir=$WORK/rot keep=$WORK/rot-keep
	echo "== rotate: $rate lines/s for $secs s ($total lines), log_max_size = 1, log_max_files = 5"
	build
	mkdir -p "$dir" "$keep"
	cat >"$WORK/numbered.py" <<'EOF'
import sys, time
rate, total = int(sys.argv[1]), int(sys.argv[2])
batch = rate // 100
pad = "-" * 60
t0 = time.monotonic()
n = 0
while n < total:
    for _ in range(min(batch, total - n)):
        n += 1
        sys.stdout.write("seq %d %s\n" % (n, pad))
        sys.stdout.flush()
    delay = t0 + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print("done %d lines in %.2f s" % (n, time.monotonic() - t0), file=sys.stderr, flush=True)
time.sleep(3600)
EOF
	cat >"$WORK/rotate.toml" <<EOF
[supervisor]
control_socket = "$WORK/rotate.sock"
http = ""
run_dir = "$WORK/run-rotate"

[app.writer]
allow_root = true
kind = "process"
restart = "never"
command = ["/usr/bin/python3", "$WORK/numbered.py", "$rate", "$total"]
log = "file"
log_file = "$dir/writer.log"
log_max_size = 1
log_max_files = 5
EOF
	start_sup "$WORK/rotate.toml" "$WORK/rotate.out"
	# The checker: link every rotated file as soon as it appears, until the
	# writer is done and its last line is in the current file.
	local f linked=0 deadline=$((SECONDS + secs + 120))
	while :; do
		for f in "$dir"/writer-*.log; do
			[ -e "$f" ] || continue
			[ -e "$keep/${f##*/}" ] && continue
			ln "$f" "$keep/${f##*/}" 2>/dev/null && linked=$((linked + 1))
		done
		if grep -q "writer\[1\] stderr: done" "$dir/writer.log" 2>/dev/null &&
			tail -n 2 "$dir/writer.log" | grep -q "stdout: seq $total "; then
			break
		fi
		[ $SECONDS -lt $deadline ] || die "rotate: line $total not in $dir/writer.log within $((secs + 120)) s"
		sleep 0.05
	done
	grep "stderr: done" "$dir/writer.log" | sed 's/^/writer: /'
	local left
	left=$(find "$dir" -name 'writer-*.log' | wc -l)
	echo "rotated files: $linked linked by the checker, $left still in the directory (log_max_files = 5)"
	# Oldest first (rotated files are named by time), then the current file.
	local out
	out=$( (find "$keep" -name 'writer-*.log' | sort | xargs -r cat; cat "$dir/writer.log") |
		awk -v total="$total" '
			/ stdout: seq / {
				for (i = 1; i <= NF; i++) if ($i == "seq") { n = $(i + 1) + 0; break }
				checked++
				if (seen[n]++) dup++
				else if (n < last) order++
				if (n > last) last = n
			}
			END {
				for (i = 1; i <= total; i++) if (!(i in seen)) missing++
				printf "lines checked %d, highest %d, missing %d, duplicated %d, out of order %d\n", checked, last, missing + 0, dup + 0, order + 0
				exit (checked == total && !missing && !dup && !order) ? 0 : 1
			}') && ok=1 || ok=0
	echo "$out"
	echo "dropped lines (supctl status): $("$WORK/bin/supctl" -s "$WORK/rotate.sock" status writer --json | awk -F'[:,]' '/"log_dropped"/ { print $2 + 0 }')"
	verdict "$ok" "rotate: 1..$total each exactly once, in order"
	stop_pid "$SUP"
}

# --- idle: threads and RSS with 500 idle apps -------------------------------

# idle_measure BIN LABEL: runs BIN on the 500-app config and prints its
# threads and RSS once every app runs and 10 s passed.
idle_measure() {
	local bin=$1 label=$2 apps=${APPS:-500} sup n conf=$WORK/idle.toml
	rm -rf "$WORK/run-idle"
	# A revision older than allow_root runs as root without it.
	if ! "$bin" check -c "$conf" >/dev/null 2>&1; then
		conf=$WORK/idle-noroot.toml
		grep -v '^allow_root' "$WORK/idle.toml" >"$conf"
		"$bin" check -c "$conf" >/dev/null || die "idle: $label rejects the config"
	fi
	"$bin" -c "$conf" >/dev/null 2>"$WORK/idle-$label.err" &
	sup=$!
	PIDS+=("$sup")
	for _ in $(seq 1 600); do
		n=$(pgrep -P "$sup" -c -x sleep || true)
		[ "$n" -ge "$apps" ] && break
		kill -0 "$sup" 2>/dev/null || die "idle: $label exited: $(tail -5 "$WORK/idle-$label.err")"
		sleep 0.2
	done
	[ "$n" -ge "$apps" ] || die "idle: $label started $n of $apps apps in 120 s"
	sleep 10 # idle, then sample
	printf "%-26s apps %d  threads %3d  VmRSS %6.1f MiB  VmHWM %6.1f MiB\n" "$label" "$n" \
		"$(awk '$1 == "Threads:" { print $2 }' "/proc/$sup/status")" \
		"$(echo "$(status_kb "$sup" VmRSS) / 1024" | bc -l)" "$(echo "$(status_kb "$sup" VmHWM) / 1024" | bc -l)"
	curl -fsS --max-time 5 "http://127.0.0.1:$IDLE_MPORT/metrics" 2>/dev/null | awk '
		$1 == "go_goroutines" { g = $2 }
		$1 == "go_memstats_heap_inuse_bytes" { h = $2 }
		$1 == "go_memstats_stack_inuse_bytes" { s = $2 }
		END { if (g) printf "%-26s goroutines %d, Go heap in use %.1f MiB, goroutine stacks %.1f MiB\n", "", g, h / 1048576, s / 1048576 }'
	THREADS=$(awk '$1 == "Threads:" { print $2 }' "/proc/$sup/status")
	stop_pid "$sup"
}

idle() {
	local apps=${APPS:-500} i
	echo "== idle: $apps idle process apps (sleep) under one supervisor"
	IDLE_MPORT=$(free_port)
	build
	{
		printf '[supervisor]\ncontrol_socket = "%s"\nhttp = "127.0.0.1:%s"\nrun_dir = "%s"\n' "$WORK/idle.sock" "$IDLE_MPORT" "$WORK/run-idle"
		for i in $(seq 1 "$apps"); do
			printf '\n[app.a%d]\nallow_root = true\nkind = "process"\ncommand = ["/bin/sleep", "infinity"]\n' "$i"
		done
	} >"$WORK/idle.toml"
	if [ -n "${BEFORE_REV:-}" ]; then
		mkdir -p "$WORK/before"
		git archive "$BEFORE_REV" | tar -x -C "$WORK/before"
		(cd "$WORK/before" && go build -o "$WORK/before/bin/" ./cmd/supervisor) || die "idle: cannot build $BEFORE_REV"
		idle_measure "$WORK/before/bin/supervisor" "before ($(git rev-parse --short "$BEFORE_REV"))"
	fi
	idle_measure "$WORK/bin/supervisor" "this tree"
	verdict "$([ "$THREADS" -le 32 ] && echo 1)" "idle: at most 32 OS threads with $apps apps"
}

# --- cpu: manager CPU per 100k lines ----------------------------------------

# The cpu app waits for a request file $WORK/cpu-go holding "RUN LINES RATE
# BATCH", removes it, writes LINES lines "run RUN line N ..." at RATE a
# second in bursts of BATCH (one write(2) per line) and waits for the next.
write_cpu_app() {
	cat >"$WORK/lines.py" <<'EOF'
import os, sys, time
go = sys.argv[1]
pad = b"-" * 60
while True:
    while not os.path.exists(go):
        time.sleep(0.05)
    with open(go) as f:
        run, total, rate, batch = (int(x) for x in f.read().split())
    os.remove(go)
    t0 = time.monotonic()
    n = 0
    while n < total:
        for _ in range(min(batch, total - n)):
            n += 1
            os.write(1, b"run %d line %d %s\n" % (run, n, pad))
        delay = t0 + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
EOF
}

# CPU_SCENARIOS: "LINES RATE BATCH" per scenario: bursts of 200 lines every
# 10 ms, and bursts of 5 lines every millisecond (closer to an access log,
# where requests log one by one).
CPU_SCENARIOS=${CPU_SCENARIOS:-"200000 20000 200;100000 5000 5"}

# cpu_runs LABEL PID SINKFILE: runs every scenario against the manager PID
# whose app logs to SINKFILE, printing its CPU ticks per 100k lines.
cpu_runs() {
	local label=$1 pid=$2 sink=$3 run=0 lines rate batch t0 t1 s0 sc s
	sleep 2 # let the manager settle after starting its app
	IFS=';' read -ra sc <<<"$CPU_SCENARIOS"
	for s in "${sc[@]}"; do
		read -r lines rate batch <<<"$s"
		run=$((run + 1))
		t0=$(cpu_ticks "$pid")
		s0=$SECONDS
		echo "$run $lines $rate $batch" >"$WORK/cpu-go.tmp"
		mv "$WORK/cpu-go.tmp" "$WORK/cpu-go"
		for _ in $(seq 1 3000); do
			tail -n 1 "$sink" 2>/dev/null | grep -q "run $run line $lines " && break
			sleep 0.1
		done
		tail -n 1 "$sink" | grep -q "run $run line $lines " || die "$label: run $run line $lines not in $sink"
		t1=$(cpu_ticks "$pid")
		printf "%-36s %7d lines (%d dropped) at %5d/s in bursts of %3d: %3d s, cpu %4d ticks, per 100k lines %6.1f ticks (%.3f s)\n" \
			"$label" "$(grep -c "run $run line " "$sink")" "$(awk '/ lines dropped: / { for (i = 1; i < NF; i++) if ($(i + 1) == "lines") n += $i } END { print n + 0 }' "$sink")" \
			"$rate" "$batch" $((SECONDS - s0)) $((t1 - t0)) \
			"$(echo "($t1 - $t0) * 100000 / $lines" | bc -l)" "$(echo "($t1 - $t0) * 100000 / $lines / $TCK" | bc -l)"
	done
}

cpu() {
	echo "== cpu: manager CPU per 100k lines written to a log file, one write(2) per line (ticks of 1/$TCK s)"
	build
	if [ ! -x /usr/bin/supervisord ]; then
		scripts/deps.sh bench
	fi
	write_cpu_app
	cat >"$WORK/cpu.toml" <<EOF
[supervisor]
control_socket = "$WORK/cpu.sock"
http = ""
run_dir = "$WORK/run-cpu"

[app.lines]
allow_root = true
kind = "process"
command = ["/usr/bin/python3", "$WORK/lines.py", "$WORK/cpu-go"]
log = "file"
log_file = "$WORK/cpu-sup.log"
log_max_size = 1024
EOF
	# The Go supervisor as configured, then with one P: its cost per line
	# is mostly the runtime waking threads between goroutines.
	local procs
	for procs in "" 1; do
		GOMAXPROCS=$procs start_sup "$WORK/cpu.toml" "$WORK/cpu.out"
		wait_for 30 "lines running" running "$WORK/cpu.sock" lines
		cpu_runs "supervisor (Go)${procs:+ GOMAXPROCS=$procs}" "$SUP" "$WORK/cpu-sup.log"
		stop_pid "$SUP"
		rm -f "$WORK/cpu-sup.log"
	done

	pgrep -x supervisord >/dev/null && echo "note: a supervisord is already running (not this run's)"
	cat >"$WORK/supervisord.conf" <<EOF
[supervisord]
nodaemon=true
logfile=$WORK/supervisord.log
pidfile=$WORK/supervisord.pid
childlogdir=$WORK

[program:lines]
command=/usr/bin/python3 $WORK/lines.py $WORK/cpu-go
autostart=true
startsecs=0
stdout_logfile=$WORK/cpu-sd.log
stdout_logfile_maxbytes=0
stderr_logfile=$WORK/cpu-sd.err
stderr_logfile_maxbytes=0
EOF
	/usr/bin/supervisord -c "$WORK/supervisord.conf" >/dev/null 2>&1 &
	local sd=$!
	PIDS+=("$sd")
	wait_for 30 "supervisord's lines app" pgrep -f "$WORK/lines.py"
	cpu_runs "supervisord $(/usr/bin/supervisord --version)" "$sd" "$WORK/cpu-sd.log"
	stop_pid "$sd"
}

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(stall-file stall-stdout rotate idle cpu)
for m in "${modes[@]}"; do
	case "$m" in
	stall-file) stall_file ;;
	stall-stdout) stall_stdout ;;
	rotate) rotate ;;
	idle) idle ;;
	cpu) cpu ;;
	*) die "unknown mode $m (stall-file stall-stdout rotate idle cpu)" ;;
	esac
	echo
done
exit "$FAILED"

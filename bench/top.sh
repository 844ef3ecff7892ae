#!/bin/bash
# top.sh: the CPU `supctl top` costs over TOP_APPS apps (default 50) at its
# 1 Hz refresh, on a terminal (through script(1), so that it redraws in
# place as a user sees it).
#
# It starts the supervisor with TOP_APPS process apps (/bin/sleep), waits
# until all run, then measures over TOP_SECONDS (default 60): the
# supervisor alone (baseline), then the supervisor and supctl while
# `supctl top` runs. CPU is utime+stime from /proc/PID/stat, in clock ticks
# (CLK_TCK a second). Binaries are built as `make build` builds them.
# Acceptance: what top adds to the supervisor (serving top minus idle) is
# under 1 % of a core.
#
# Usage: bench/top.sh            (TOP_APPS=N, TOP_SECONDS=N to change)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
APPS=${TOP_APPS:-50}
SECS=${TOP_SECONDS:-60}
TCK=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_work top-bench

# ticks_over PID...: CPU ticks each PID uses over SECS seconds, one a line.
ticks_over() {
	local before=() p i=0
	for p in "$@"; do before+=("$(cpu_ticks "$p")"); done
	sleep "$SECS"
	for p in "$@"; do
		echo $(($(cpu_ticks "$p") - before[i]))
		i=$((i + 1))
	done
}

pct() { awk -v d="$1" -v t="$TCK" -v s="$SECS" 'BEGIN { printf "%.2f", 100 * d / t / s }'; }

echo "building supervisor and supctl with make build's release flags"
make -s build BINOUT="$WORK/bin/" >/dev/null
{
	printf '[supervisor]\ncontrol_socket = "%s/ctl.sock"\nhttp = ""\nrun_dir = "%s/run"\n' "$WORK" "$WORK"
	for i in $(seq 1 "$APPS"); do
		printf '\n[app.app%d]\nallow_root = true\nkind = "process"\nstart_settle = "100ms"\ncommand = ["/bin/sleep", "100000"]\n' "$i"
	done
} >"$WORK/supervisor.toml"
"$WORK/bin/supervisor" -c "$WORK/supervisor.toml" >"$WORK/supervisor.log" 2>&1 &
SUP=$!
PIDS+=("$SUP")
SUPCTL=("$WORK/bin/supctl" -s "$WORK/ctl.sock")
running=0
for _ in $(seq 1 300); do
	running=$("${SUPCTL[@]}" status --json 2>/dev/null | grep -c '"state": *"running"' || true)
	[ "$running" -eq "$APPS" ] && break
	sleep 0.2
done
[ "$running" -eq "$APPS" ] || die "$running of $APPS apps running after 60 s: $(tail -5 "$WORK/supervisor.log")"

echo "$APPS apps running; supervisor alone for $SECS s"
base=$(ticks_over "$SUP")

script -qfc "${SUPCTL[*]} top" /dev/null >/dev/null &
SCRIPT=$!
PIDS+=("$SCRIPT")
TOP=""
for _ in $(seq 1 50); do
	TOP=$(ps -o pid= --ppid "$SCRIPT" | tr -d ' ' || true)
	[ -n "$TOP" ] && break
	sleep 0.1
done
[ -n "$TOP" ] || die "supctl top did not start"
echo "supctl top (pid $TOP) on a terminal for $SECS s"
mapfile -t with < <(ticks_over "$SUP" "$TOP")
stop_pid "$SCRIPT"

printf '%-34s %8s %9s\n' "process (over $SECS s, $APPS apps)" ticks "% core"
printf '%-34s %8d %9s\n' "supervisor, idle" "$base" "$(pct "$base")"
printf '%-34s %8d %9s\n' "supervisor, serving supctl top" "${with[0]}" "$(pct "${with[0]}")"
printf '%-34s %8d %9s\n' "supctl top" "${with[1]}" "$(pct "${with[1]}")"
printf '%-34s %8d %9s\n' "top's cost to the supervisor" "$((with[0] - base))" "$(pct "$((with[0] - base))")"

# lib.sh: shell functions the benchmarks share; sourced by bench/*.sh.

# free_port: a free TCP port on 127.0.0.1.
free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# status_kb PID FIELD: FIELD (VmRSS, VmHWM, ...) of /proc/PID/status in KiB.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: utime+stime (fields 14 and 15 of /proc/PID/stat, counted
# after the command name, which may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# wait_http PORT: until GET / on 127.0.0.1:PORT answers 2xx; returns 1
# after 60 s without an answer.
wait_http() {
	for _ in $(seq 1 300); do
		curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# stop_pid PID: TERM, up to 30 s, then KILL.
stop_pid() {
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
	kill -KILL "$1" 2>/dev/null || true
}

# die MESSAGE: the message on stderr, named by the script, then exit 1.
die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# bench_work NAME: WORK, a fresh directory /tmp/NAME.XXXXXX, and PIDS, the
# processes to stop; on exit every PIDS process is stopped (stop_pid) and
# WORK removed.
bench_work() {
	WORK=$(mktemp -d "/tmp/$1.XXXXXX")
	PIDS=()
	trap bench_cleanup EXIT
}

# bench_cleanup: bench_work's exit trap.
bench_cleanup() {
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	rm -rf "$WORK"
}

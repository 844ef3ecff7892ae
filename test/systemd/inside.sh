#!/bin/sh
# inside.sh W: run by probe.service inside the container run.sh boots.
# Installs W/gunisup.deb, starts gunisup.service as shipped and checks what
# the unit promises; writes everything to W/results/log, ending with
# "RESULT: all checks passed" or the failed checks.
set -u
W=$1
exec >"$W/results/log" 2>&1
failed=""
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed="$failed; $*"; }
# waitfor SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
waitfor() {
	n=$(($1 * 5)); shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2; n=$((n - 1))
	done
	return 1
}
mainpid() { systemctl show -p MainPID --value gunisup; }
# hey_failed FILE: non-2xx responses plus errors of a hey report.
hey_failed() {
	awk '/^  \[[0-9]+\]/ { code = substr($1, 2, 3); if (code !~ /^2/) bad += $2 }
	     /^Error distribution:/ { err = 1 } err && /^  \[[0-9]+\]/ { bad += substr($1, 2) + 0 }
	     END { print bad + 0 }' "$1"
}

echo "== systemd $(systemctl --version | head -1)"
DEBIAN_FRONTEND=noninteractive dpkg -i "$W/gunisup.deb" >/dev/null || fail "dpkg -i"
# What systemd is doing, refreshed for a run that hangs.
(while sleep 5; do
	journalctl -b --no-pager -n 300 >"$W/results/journal.txt" 2>&1
	systemctl list-jobs --no-pager >"$W/results/jobs.txt" 2>&1
done) &
mon=$!
# Before the configuration exists: the host's features only.
echo "== doctor under the old unit's restrictions, then under the new unit's"
old='CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER CAP_SYS_NICE CAP_SYS_RESOURCE'
echo "-- old unit"
timeout 60 systemd-run --wait --pipe -q -p NoNewPrivileges=yes -p "$old" -p "SystemCallFilter=@system-service" -p SystemCallErrorNumber=EPERM \
	-p "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" /usr/bin/supervisor doctor
echo "exit $?"
echo "-- new unit"
timeout 60 systemd-run --wait --pipe -q -p NoNewPrivileges=yes -p "$old CAP_BPF CAP_SYS_PTRACE" -p "SystemCallFilter=@system-service bpf pidfd_getfd" \
	-p SystemCallErrorNumber=EPERM -p "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" /usr/bin/supervisor doctor
echo "exit $?"
# The unit has no RestrictNamespaces= line (contrib/systemd/README.md says
# why): with any value that restricts something, systemd's filter fails
# clone3(2) with ENOSYS, and the apps can no longer be started in their
# cgroups (CLONE_INTO_CGROUP).
echo "== RestrictNamespaces= against clone3 (doctor's cgroup_delegation line, Delegate=yes)"
rn_doctor() {
	timeout 60 systemd-run --wait --pipe -q -p Delegate=yes "$@" /usr/bin/supervisor doctor 2>/dev/null | grep '^cgroup_delegation'
}
out=$(rn_doctor)
echo "no RestrictNamespaces=: $out"
case "$out" in "cgroup_delegation: works"*) pass "no RestrictNamespaces=: cgroup_delegation works" ;;
*) fail "no RestrictNamespaces=: cgroup_delegation works" ;; esac
for rn in yes '~user' user; do
	out=$(rn_doctor -p "RestrictNamespaces=$rn")
	echo "RestrictNamespaces=$rn: $out"
	case "$out" in *degraded*clone3*"function not implemented"*) pass "RestrictNamespaces=$rn fails clone3 with ENOSYS" ;;
	*) fail "RestrictNamespaces=$rn fails clone3 with ENOSYS (the unit's comment and README say so)" ;; esac
done

CFG=/etc/gunisup/gunisup.toml
mkdir -p /etc/gunisup
cat >$CFG <<EOF
[supervisor]
http = "127.0.0.1:9321"

[app.web]
allow_root = true
kind = "gunicorn"
virtualenv = "$W/venv"
directory = "$W/current"
start_timeout = "15s"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:8000", "unix:///run/gunisup/web.sock"]
env = { APP_VERSION = "1" }

[app.web.health]
path = "/healthz"
interval = "1s"
EOF
# The watchdog check stops the supervisor: a shorter WatchdogSec and abort
# timeout keep it to seconds. Everything else is the shipped unit.
mkdir -p /etc/systemd/system/gunisup.service.d
printf '[Service]\nWatchdogSec=4\nTimeoutAbortSec=3\n' >/etc/systemd/system/gunisup.service.d/test.conf
systemctl daemon-reload

echo "== start"
timeout 100 systemctl start gunisup || fail "systemctl start gunisup"
waitfor 30 curl --max-time 5 -fsS http://127.0.0.1:8000/ || fail "web answers"
status=$(timeout 10 supctl status)
echo "$status"
case "$status" in *"(bpf)"*) pass "status says bpf" ;; *) fail "status says bpf" ;; esac
case "$status" in *degraded:*) fail "no degraded header" ;; *) pass "no degraded header" ;; esac
metrics=$(curl --max-time 5 -fsS http://127.0.0.1:9321/metrics)
echo "$metrics" | grep -E '^supervisor_(listener_queue_length|feature_enabled)'
echo "$metrics" | grep -q '^supervisor_listener_queue_length{.*unix' && pass "unix queue depth metric" || fail "unix queue depth metric"
echo "$metrics" | grep -q '^supervisor_listener_queue_length{.*8000' && pass "tcp queue depth metric" || fail "tcp queue depth metric"
journalctl -u gunisup -o cat | grep 'doctor:'

echo "== reload applies an edit"
sed -i 's/APP_VERSION = "1"/APP_VERSION = "2"/' $CFG
timeout 60 systemctl reload gunisup || fail "systemctl reload"
waitfor 60 sh -c 'curl --max-time 5 -fsS http://127.0.0.1:8000/ | grep -q version=2' && pass "reload: version=2 served" || fail "reload: version=2 served"

waitfor 60 sh -c '! supctl status | grep -q reloading' || fail "reload finished"
echo "== 3 failing releases, then a good one, under load"
hey -z 300s -c 8 http://127.0.0.1:8000/ >"$W/results/hey-deploy" &
hey=$!
for r in importerror http500 hang good; do
	timeout 90 supctl deploy web "$W/releases/$r" >"$W/results/deploy-$r" 2>&1
	echo "deploy $r: exit $? ($(tail -1 "$W/results/deploy-$r"))"
done
kill -INT $hey; wait $hey
grep -E 'Requests/sec|^  \[' "$W/results/hey-deploy"
bad=$(hey_failed "$W/results/hey-deploy")
total=$(awk '/^  \[[0-9]+\]/ {n += $2} END {print n + 0}' "$W/results/hey-deploy")
[ "$bad" = 0 ] && pass "deploys: 0 failed of $total" || fail "deploys: $bad failed of $total"
curl --max-time 5 -fsS http://127.0.0.1:8000/ | grep -q release=good && pass "good release serves" || fail "good release serves"

echo "== kill -9 under load"
pid=$(mainpid)
hey -z 12s -c 8 http://127.0.0.1:8000/ >"$W/results/hey-kill" &
hey=$!
sleep 3
systemctl kill --kill-whom=main -s KILL gunisup
waitfor 30 sh -c "[ \"\$(systemctl show -p MainPID --value gunisup)\" != 0 ] && [ \"\$(systemctl show -p MainPID --value gunisup)\" != $pid ] && systemctl is-active -q gunisup" || fail "restarted after kill -9"
wait $hey
grep -E 'Requests/sec|^  \[' "$W/results/hey-kill"
bad=$(hey_failed "$W/results/hey-kill")
total=$(awk '/^  \[[0-9]+\]/ {n += $2} END {print n + 0}' "$W/results/hey-kill")
echo "kill -9: $total responses, $bad failed; restarts $(systemctl show -p NRestarts --value gunisup)"
[ "$bad" = 0 ] && pass "kill -9: 0 failed of $total" || fail "kill -9: $bad failed of $total"
journalctl -u gunisup -o cat | grep -E 'recovery|listener steering' | tail -5
status=$(timeout 10 supctl status)
echo "$status"
case "$status" in *"(bpf)"*) pass "status says bpf after recovery" ;; *) fail "status says bpf after recovery" ;; esac

echo "== watchdog fires on a stopped supervisor"
restarts=$(systemctl show -p NRestarts --value gunisup)
pid=$(mainpid)
kill -STOP "$pid"
waitfor 40 sh -c "[ \$(systemctl show -p NRestarts --value gunisup) -gt $restarts ] && systemctl is-active -q gunisup" &&
	pass "watchdog: restarted" || fail "watchdog: restarted"
journalctl -u gunisup -o cat | grep -i 'watchdog' | head -3
waitfor 30 curl --max-time 5 -fsS http://127.0.0.1:8000/ && pass "serves after watchdog restart" || fail "serves after watchdog restart"

echo "== journal holds the apps' lines"
journalctl -u gunisup -o cat | grep -E 'Booting worker|Listening at' | head -3
journalctl -u gunisup -o cat | grep -q 'Booting worker' && pass "journal: app lines" || fail "journal: app lines"

echo "== stop leaves no process"
cg=$(systemctl show -p ControlGroup --value gunisup)
timeout 60 systemctl stop gunisup
left=$(find "/sys/fs/cgroup$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | wc -l)
pgrep -a -f 'gunicorn|/usr/bin/supervisor' && fail "stop: processes left" || pass "stop: no process left (cgroup procs: $left)"

journalctl -u gunisup -o short-monotonic --no-pager >"$W/results/gunisup-journal.txt"
kill $mon
if [ -z "$failed" ]; then echo "RESULT: all checks passed"; else echo "RESULT: failed$failed"; fi

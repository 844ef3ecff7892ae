#!/bin/sh
# Installs what the demo, the tests or the benchmarks need and is missing, on
# Debian or Ubuntu. Usage: scripts/deps.sh demo|test|bench|man
# Runs apt-get (as root, or through sudo) only when a package is missing.
set -eu
what=${1:-test}

pkgs="gunicorn python3-venv python3-flask curl"
case "$what" in
demo) ;;
# man: the manual pages (make man, install, deb); man-db checks them (man -l).
man) pkgs="go-md2man man-db" ;;
# gcc and libc6-dev: go test -race needs cgo. ansible-core: contrib/ansible
# (ansible-playbook; the playbook uses ansible.builtin modules only).
test) pkgs="$pkgs gcc libc6-dev hey wrk prometheus systemd systemd-container iproute2 util-linux procps go-md2man man-db nginx ansible-core" ;;
bench) pkgs="$pkgs hey wrk supervisor procps nginx" ;;
*) echo "deps.sh: unknown target $what (demo, test, bench, man)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	echo "deps.sh: installing:$missing"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
	# Debian starts services from some packages (supervisor, prometheus) where an
	# init system runs; the tests and benchmarks start their own instances.
	for svc in supervisor prometheus; do
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
			$SUDO systemctl stop "$svc" || true
		fi
	done
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "deps.sh: Go is at /usr/local/go/bin; add it to PATH" >&2
	else
		echo "deps.sh: Go 1.21 or newer is needed (go.mod asks for 1.26; Go >= 1.21 fetches that toolchain itself)" >&2
	fi
	exit 1
fi

#!/bin/sh
# Builds the Debian package from a staged install tree with dpkg-deb.
# Usage: scripts/deb.sh STAGE OUTDIR
#   STAGE   a tree made by `make install PREFIX=/usr DESTDIR=STAGE`
#   OUTDIR  where gunisup_VERSION_ARCH.deb is written; its path is printed
# The version is $VERSION (the Makefile passes the one its binaries and
# manual pages carry), else scripts/version.sh's.
set -eu
stage=$1
out=$2

# libcdep names the newest glibc symbol version the binaries use.
libcdep() {
	if command -v objdump >/dev/null 2>&1; then
		v=$(objdump -T "$stage"/usr/bin/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
		if [ -n "$v" ]; then
			echo "libc6 (>= $v)"
			return
		fi
	fi
	echo "libc6"
}

version=${VERSION:-$("$(dirname "$0")"/version.sh)}
arch=$(dpkg --print-architecture)
mkdir -p "$stage/DEBIAN" "$out"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: gunisup
Version: $version
Architecture: $arch
Maintainer: gunisup <gunisup@users.noreply.github.com>
Installed-Size: $size
Depends: $(libcdep)
Section: admin
Priority: optional
Homepage: https://github.com/gunisup/supervisor
Description: process supervisor for Gunicorn apps (holds sockets, zero-downtime reloads)
 gunisup runs Python web apps under Gunicorn and plain processes from one TOML
 file. It binds and holds every app's listening socket, swaps code with zero
 failed requests (supctl reload), exports Prometheus metrics, and is a systemd
 Type=notify service (gunisup.service) or a container's PID 1.
 .
 Its unit, /etc/gunisup, /run/gunisup and /var/log/gunisup do not clash with
 Debian's supervisor package: both can be installed during a migration.
CONTROL
deb="$out/gunisup_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

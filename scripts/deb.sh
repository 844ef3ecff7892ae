#!/bin/sh
# Builds the Debian package from a staged install tree with dpkg-deb.
# Usage: scripts/deb.sh STAGE OUTDIR
#   STAGE   a tree made by `make install PREFIX=/usr DESTDIR=STAGE`
#   OUTDIR  where gunisup_VERSION_ARCH.deb is written; its path is printed
# The version comes from `git describe`: a tag v1.2.3 (or 1.2.3) gives
# 1.2.3, commits after it 1.2.3+N.gHASH; without a tag 0~gitN.gHASH (N is
# the number of commits); uncommitted changes add +dirty.
set -eu
stage=$1
out=$2

debversion() {
	desc=$(git describe --tags --match '[v0-9]*' --dirty 2>/dev/null || true)
	dirty=""
	case "$desc" in *-dirty) dirty="+dirty"; desc=${desc%-dirty} ;; esac
	if [ -z "$desc" ]; then
		n=$(git rev-list --count HEAD)
		h=$(git rev-parse --short HEAD)
		[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty="+dirty"
		echo "0~git$n.g$h$dirty"
		return
	fi
	desc=${desc#v}
	# 1.2.3-4-gabc1234 (4 commits after the tag) -> 1.2.3+4.gabc1234
	echo "$desc$dirty" | sed -E 's/-([0-9]+)-(g[0-9a-f]+)/+\1.\2/'
}

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

version=$(debversion)
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

#!/usr/bin/env bash
# Builds a Debian package of tcbpf from this repository with dpkg-deb: the
# files scripts/install.sh puts under PREFIX=/usr, staged in a temporary
# DESTDIR, debug info stripped (as dh_strip does), plus DEBIAN/control and
# the copyright file. Prints the path of the .deb on its last line.
#
#   scripts/build-deb.sh [ OUTDIR ]          (default: target/deb)
#
# With TCBPF_BIN_DIR=DIR the binaries in DIR are packaged as they are
# (scripts/install.sh --no-build); otherwise a release build is made.
# Install and remove:  dpkg -i OUTDIR/tcbpf_VERSION_ARCH.deb;  dpkg --purge tcbpf
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-target/deb}")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d /tmp/tcbpf-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT

if [ -n "${TCBPF_BIN_DIR:-}" ]; then
    PREFIX=/usr DESTDIR=$stage scripts/install.sh --no-build >&2
else
    PREFIX=/usr DESTDIR=$stage scripts/install.sh >&2
fi
strip --strip-debug "$stage"/usr/bin/tcbpf "$stage"/usr/bin/tcbpf-exporter "$stage"/usr/bin/tcbpf-sync "$stage"/usr/bin/tcbpf-dump

# Debian keeps the licence in copyright, not beside the docs.
doc=$stage/usr/share/doc/tcbpf
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: tcbpf"
    echo
    echo "Files: *"
    echo "Copyright: the tcbpf authors"
    echo "License: GPL-2.0-only or BSD-2-Clause"
    echo " On Debian systems the GPL-2 is in /usr/share/common-licenses/GPL-2."
    echo " The BSD-2-Clause text follows."
    echo " ."
    sed -e 's/^$/./' -e 's/^/ /' LICENSE-BSD-2-Clause
    echo
    echo "Files: third_party/etcd-client/*"
    echo "Copyright: The etcd-client Authors"
    echo "License: MIT or Apache-2.0"
} >"$doc/copyright"
rm -f "$doc/LICENSE-GPL-2.0" "$doc/LICENSE-BSD-2-Clause"
gzip -9n "$doc/README.md" "$doc"/docs/*.md

size=$(du -sk "$stage/usr" | cut -f1)
install -d "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: tcbpf
Version: $version
Architecture: $arch
Maintainer: the tcbpf authors <tcbpf@invalid>
Installed-Size: $size
Depends: libc6, iproute2, libpcap0.8t64 | libpcap0.8
Suggests: bpftool, prometheus
Section: net
Priority: optional
Description: tc's eBPF front-end and exec proxy, with a map helper for shells
 tcbpf loads eBPF objects for tc's classifier and action hooks (legacy and
 BTF-defined maps, CO-RE), attaches them with cls_bpf or tcx, hands their
 maps to other processes as descriptors over a Unix socket (bit-compatible
 with iproute2's exec proxy), and reads and writes maps from shell scripts
 with typed values. Also: a keeper service that owns exported maps, a
 Prometheus exporter and live terminal view (tcbpf-exporter), and a follower
 that keeps maps equal to a policy in etcd (tcbpf-sync), and a packet dump
 of tc programs with their verdicts (tcbpf-dump).
EOF
install -d "$out"
deb=$out/tcbpf_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"

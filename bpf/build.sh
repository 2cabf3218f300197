#!/usr/bin/env bash
# Rebuilds the committed eBPF objects from their C sources:
#   clang -O2 -g -target bpf, one NAME.o beside each NAME.c.
# Needs clang, and for CO-RE sources (those including vmlinux.h) bpftool and
# libbpf's headers; installs them with apt-get when missing. The tests use
# the committed objects and never run this script.
#   bpf/build.sh            rebuild every object
#   bpf/build.sh NAME.c…    rebuild these
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v clang >/dev/null || need+=(clang llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null || need+=(bpftool)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
arch_inc=/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
sources=("$@")
[ ${#sources[@]} -gt 0 ] || sources=(*.c)
for src in "${sources[@]}"; do
    if grep -q '#include "vmlinux.h"' "$src" && [ ! -s vmlinux.h ]; then
        bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h
    fi
    echo "  CC  ${src%.c}.o"
    clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I. -I"$arch_inc" -c "$src" -o "${src%.c}.o"
done

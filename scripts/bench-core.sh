#!/usr/bin/env bash
# Benchmark: time to load a CO-RE object (bpf/core_classifier.o, 25 CO-RE
# relocations against the running kernel's BTF) and pin its classifier,
# tcbpf against libbpf (bpftool), side by side.
#   tcbpf:   `tcbpf obj load bpf/core_classifier.o bpffs TMP pin TMP/t`
#   bpftool: `bpftool prog load bpf/core_classifier.o TMP/b type classifier`
# Both parse the object and /sys/kernel/btf/vmlinux, resolve the
# relocations, upload the BTF, create the maps, load and pin the program.
# Whole process runs, median of RUNS runs (default 15), in a private bpffs
# removed at the end, also on failure.
#   scripts/bench-core.sh [RUNS]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (3 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then runs=${1:-3}; else runs=${1:-15}; fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-core.sh: loads programs: run as root" >&2
    exit 2
fi
command -v bpftool >/dev/null || { apt-get update -qq && apt-get install -y -qq bpftool; }
scripts/build-bench.sh
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/tcbpf
obj=$PWD/bpf/core_classifier.o

fs=$(mktemp -d /tmp/tcbpf-bench-core.XXXXXX)
cleanup() {
    umount "$fs" 2>/dev/null || true
    rmdir "$fs" 2>/dev/null || true
}
trap cleanup EXIT
mount -t bpf bpf "$fs"

now_us() { echo $(( $(date +%s%N) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# One untimed warm-up of each (page cache).
"$bin" obj load "$obj" bpffs "$fs" pin "$fs/t" >/dev/null
bpftool prog load "$obj" "$fs/b" type classifier
rm -f "$fs/t" "$fs/b"

tcbpf_times=()
bpftool_times=()
for _ in $(seq "$runs"); do
    t0=$(now_us)
    "$bin" obj load "$obj" bpffs "$fs" pin "$fs/t" >/dev/null
    t1=$(now_us)
    tcbpf_times+=($((t1 - t0)))
    rm -f "$fs/t"

    t0=$(now_us)
    bpftool prog load "$obj" "$fs/b" type classifier
    t1=$(now_us)
    bpftool_times+=($((t1 - t0)))
    rm -f "$fs/b"
done
t=$(printf '%s\n' "${tcbpf_times[@]}" | median)
b=$(printf '%s\n' "${bpftool_times[@]}" | median)
# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^tcbpf obj load +INT$
# bench-smoke-row: ^bpftool prog load \(libbpf [0-9]+\.[0-9.]+\) +INT$
# bench-smoke-row: ^ratio tcbpf / bpftool +NUM$
printf '%-44s %10s\n' "load + pin bpf/core_classifier.o (median of $runs)" "µs"
printf '%-44s %10d\n' "tcbpf obj load" "$t"
printf '%-44s %10d\n' "bpftool prog load (libbpf $(bpftool version 2>/dev/null | sed -n 's/.*libbpf v\([0-9.]*\).*/\1/p'))" "$b"
awk -v t="$t" -v b="$b" 'BEGIN { printf "%-44s %10.2f\n", "ratio tcbpf / bpftool", t / b }'

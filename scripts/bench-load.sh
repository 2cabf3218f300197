#!/usr/bin/env bash
# Benchmark: time to load the 64-map BTF object (bpf/maps64.o) and have its
# classifier ready to attach, tcbpf against the distro tc, side by side.
#   tcbpf filter: `tcbpf -n NS filter add dev v0 ingress bpf da obj bpf/maps64.o sec classifier`
#          (parse, BTF upload, 64 maps, program load, netlink attach): the
#          like-for-like figure against tc
#   tcbpf obj: `tcbpf obj load bpf/maps64.o sec classifier bpffs TMP pin TMP/prog`
#          (the same without netlink, pinning the program instead)
#   tc:    `tc -n NS filter add dev v0 ingress bpf da obj bpf/maps64.o sec classifier`
#          (the same work through libbpf, plus the netlink attach)
# Filters are deleted between runs (not timed).
# Both are whole process runs (exec, parse, syscalls). Median of RUNS runs
# (default 15), in a throwaway network namespace with a veth pair and a
# private bpffs; everything is removed at the end, also on failure.
#   scripts/bench-load.sh [RUNS]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (3 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then runs=${1:-3}; else runs=${1:-15}; fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-load.sh: loads programs and creates a namespace: run as root" >&2
    exit 2
fi
command -v tc >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
scripts/build-bench.sh
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/tcbpf
obj=$PWD/bpf/maps64.o

ns=tcbpf-bench-$$
fs=$(mktemp -d /tmp/tcbpf-bench-fs.XXXXXX)
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    umount "$fs" 2>/dev/null || true
    rmdir "$fs" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" link set v0 up
ip -n "$ns" link set v1 up
tc -n "$ns" qdisc add dev v0 clsact
mount -t bpf bpf "$fs"

now_us() { echo $(( $(date +%s%N) / 1000 )); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# One untimed warm-up of each (page cache, module loading).
"$bin" obj load "$obj" sec classifier bpffs "$fs" pin "$fs/prog" >/dev/null
rm -f "$fs/prog"
tc -n "$ns" filter add dev v0 ingress bpf da obj "$obj" sec classifier
tc -n "$ns" filter del dev v0 ingress

tcbpf_times=()
filter_times=()
tc_times=()
for _ in $(seq "$runs"); do
    t0=$(now_us)
    "$bin" -n "$ns" filter add dev v0 ingress bpf da obj "$obj" sec classifier
    t1=$(now_us)
    filter_times+=($((t1 - t0)))
    tc -n "$ns" filter del dev v0 ingress

    t0=$(now_us)
    "$bin" obj load "$obj" sec classifier bpffs "$fs" pin "$fs/prog" >/dev/null
    t1=$(now_us)
    tcbpf_times+=($((t1 - t0)))
    rm -f "$fs/prog"

    t0=$(now_us)
    tc -n "$ns" filter add dev v0 ingress bpf da obj "$obj" sec classifier
    t1=$(now_us)
    tc_times+=($((t1 - t0)))
    tc -n "$ns" filter del dev v0 ingress
done

m_filter=$(printf '%s\n' "${filter_times[@]}" | median)
m_tcbpf=$(printf '%s\n' "${tcbpf_times[@]}" | median)
m_tc=$(printf '%s\n' "${tc_times[@]}" | median)
# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^  tcbpf filter add … bpf da obj … \(load \+ attach\) +INT us$
# bench-smoke-row: ^  tc filter add … bpf da obj … \(load \+ attach\) +INT us$
# bench-smoke-row: ^  tcbpf obj load … pin \(no attach\) +INT us$
# bench-smoke-row: ^  tcbpf filter add / tc filter add = NUM \(below
printf 'load bpf/maps64.o (64 BTF maps, 1 program), median of %d runs\n' "$runs"
printf '  %-46s %8d us\n' "tcbpf filter add … bpf da obj … (load + attach)" "$m_filter"
printf '  %-46s %8d us\n' "tc filter add … bpf da obj … (load + attach)" "$m_tc"
printf '  %-46s %8d us\n' "tcbpf obj load … pin (no attach)" "$m_tcbpf"
awk -v a="$m_filter" -v b="$m_tc" 'BEGIN { printf "  tcbpf filter add / tc filter add = %.2f (below 1.00: tcbpf is faster)\n", a / b }'

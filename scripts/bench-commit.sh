#!/usr/bin/env bash
# Benchmark of `tcbpf map commit` (a policy generation swapped whole through
# a map-in-map slot), side by side in one run on the same entries
# (u32 -> u32, keys 0..N), with bpf/policy_gen.o loaded into a private bpffs:
#   publish: tcbpf map commit (parse + build + swap)
#            | tcbpf map load … replace of the same entries into a map like
#              the inner one (entry by entry: packets see a mix meanwhile)
#            | a raw UPDATE_BATCH loop filling a fresh inner map (no parsing)
#   swap:    the one update of the outer slot, p50/p99/max over SWAPS swaps:
#            when a second thread sees the new inner map in the slot, and
#            when the update returns (after the kernel's RCU grace period);
#            run under `chrt -f 10` so the watcher is not the one waiting
# Runs alternate between two policies (value 1, value 2) so every replace
# has every entry to change.
# Needs root. Usage: scripts/bench-commit.sh [ENTRIES] [RUNS] [SWAPS]
#   BENCH_SMOKE=1 scripts/bench-commit.sh   the tiny form scripts/bench-smoke.sh
#                                           runs: 10,000 entries, 1 run, 50 swaps
# TCBPF_BIN_DIR=DIR uses the tcbpf and examples/commit_bench built there
# (default: scripts/build-bench.sh's release build).
# bench-smoke-row: ^publish INT entries \(median of INT runs
# bench-smoke-row: ^  tcbpf map commit \(parse, build, swap\) +NUM s$
# bench-smoke-row: ^  tcbpf map load … replace \(entry by entry\) +NUM s   \(NUMx commit\)$
# bench-smoke-row: ^  raw UPDATE_BATCH loop into a fresh map +NUM s   \(NUMx commit\)$
# bench-smoke-row: ^  new generation seen in the slot +p50 +NUM us   p99 +NUM us   max +NUM us$
# bench-smoke-row: ^  update returned \(after the RCU grace period\) +p50 +NUM us   p99 +NUM us   max +NUM us$
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    N=${1:-10000}; RUNS=${2:-1}; SWAPS=${3:-50}
else
    N=${1:-1000000}; RUNS=${2:-5}; SWAPS=${3:-1000}
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-commit.sh: needs root (loads an object, mounts a bpffs)" >&2
    exit 2
fi

if [ -z "${TCBPF_BIN_DIR:-}" ]; then
    scripts/build-bench.sh
    TCBPF_BIN_DIR=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
TCBPF=$TCBPF_BIN_DIR/tcbpf
RAW=$TCBPF_BIN_DIR/examples/commit_bench

WORK=$(mktemp -d /tmp/tcbpf-bench-commit.XXXXXX)
mkdir "$WORK/bpffs"
cleanup() {
    umount "$WORK/bpffs" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mount -t bpf bpf "$WORK/bpffs"
"$TCBPF" obj load bpf/policy_gen.o bpffs "$WORK/bpffs" pin "$WORK/bpffs/prog" >/dev/null
OUTER=$WORK/bpffs/tc/globals/policy
# The map `load … replace` writes into: the inner map's attributes
# (hash, u32 -> u32, BPF_F_NO_PREALLOC, 2 Mi entries).
PLAIN=$WORK/bpffs/plain
"$TCBPF" map create type hash key 4 value 4 entries 2097152 flags 1 name plain pin "$PLAIN" >/dev/null

echo "preparing $N entries…" >&2
for v in 1 2; do
    awk -v n="$N" -v v="$v" 'BEGIN { for (k = 0; k < n; k++) print k, v }' >"$WORK/p$v.txt"
done

once_ns() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(( t1 - t0 ))
}
median() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.3f\n", a[int((NR + 1) / 2)] / 1e9 }'
}

# The plain map starts holding policy 2, so the first replace changes all.
"$TCBPF" map load pinned "$PLAIN" key u32 value u32 from "$WORK/p2.txt"
echo "timing publish of $N entries ($RUNS runs each)…" >&2
: >"$WORK/c"; : >"$WORK/l"; : >"$WORK/r"
for i in $(seq "$RUNS"); do
    v=$(( (i - 1) % 2 + 1 ))
    once_ns "$TCBPF" map commit pinned "$OUTER" key u32 value u32 from "$WORK/p$v.txt" >>"$WORK/c"
    once_ns "$TCBPF" map load pinned "$PLAIN" key u32 value u32 from "$WORK/p$v.txt" replace >>"$WORK/l"
    once_ns "$RAW" raw "$OUTER" "$N" "$v" >>"$WORK/r"
done
# Sanity: the generation in force holds N entries plus its generation.
shown=$("$TCBPF" -j map show pinned "$OUTER")
inner=$(echo "$shown" | sed -n 's/.*"map_id":\([0-9]*\).*/\1/p')
got=$("$TCBPF" map dump id "$inner" | wc -l)
[ "$got" = $((N + 1)) ] || { echo "bench: expected $((N + 1)) entries in force, found $got" >&2; exit 1; }
commit=$(median "$WORK/c"); load=$(median "$WORK/l"); raw=$(median "$WORK/r")

echo "timing $SWAPS swaps…" >&2
# Under SCHED_FIFO (chrt, when present): on a busy machine the watching
# thread otherwise waits for a CPU, and its wait, not the swap, is measured.
FIFO=()
if command -v chrt >/dev/null; then FIFO=(chrt -f 10); fi
read -r p50 p99 max v50 v99 vmax < <("${FIFO[@]}" "$RAW" swaps "$OUTER" "$SWAPS")

echo
echo "publish $N entries (median of $RUNS runs, wall time of one process):"
printf '  %-44s %8s s\n' "tcbpf map commit (parse, build, swap)" "$commit"
printf '  %-44s %8s s   (%.2fx commit)\n' "tcbpf map load … replace (entry by entry)" "$load" "$(echo "$load / $commit" | bc -l)"
printf '  %-44s %8s s   (%.2fx commit)\n' "raw UPDATE_BATCH loop into a fresh map" "$raw" "$(echo "$raw / $commit" | bc -l)"
echo "swap step (one update of the outer slot, $SWAPS swaps${FIFO:+, under ${FIFO[*]}}):"
printf '  %-44s p50 %9s us   p99 %9s us   max %9s us\n' "new generation seen in the slot" "$v50" "$v99" "$vmax"
printf '  %-44s p50 %9s us   p99 %9s us   max %9s us\n' "update returned (after the RCU grace period)" "$p50" "$p99" "$max"

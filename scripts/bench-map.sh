#!/usr/bin/env bash
# Benchmark of `tcbpf map` against bpftool and the raw batch syscalls, side
# by side in one run on the same 1,000,000-entry u32 -> u64 hash map pinned
# in a private bpffs (so bpftool can reach it by path):
#   dump:   tcbpf map dump (text) | bpftool map dump | raw LOOKUP_BATCH loop
#   load:   tcbpf map load (lines) | bpftool batch file | raw UPDATE_BATCH loop
#   lookup: one tcbpf map lookup process | one bpftool map lookup process
# Needs root. Installs bpftool and hyperfine if missing.
# Usage: scripts/bench-map.sh [ENTRIES] [RUNS]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (5000 entries,
# 3 runs, lookups: 2 hyperfine rounds of 10 runs after 2 warm-up runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    N=${1:-5000}; RUNS=${2:-3}; ROUNDS=2; ROUND_RUNS=10; WARMUP=2
else
    N=${1:-1000000}; RUNS=${2:-11}; ROUNDS=5; ROUND_RUNS=100; WARMUP=20
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-map.sh: needs root (creates maps, mounts a bpffs)" >&2
    exit 2
fi
for tool in bpftool hyperfine; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool"
    fi
done
BPFTOOL=$(command -v bpftool)

# With the same binary linked statically (only the final link changes),
# for the start-up figure of a single lookup.
scripts/build-bench.sh static
TCBPF=${CARGO_TARGET_DIR:-$PWD/target}/release/tcbpf
TCBPF_STATIC=$PWD/target/bench-static/release/tcbpf
RAW=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/map_raw_batch

WORK=$(mktemp -d /tmp/tcbpf-bench.XXXXXX)
mkdir "$WORK/bpffs"
cleanup() {
    umount "$WORK/bpffs" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mount -t bpf bpf "$WORK/bpffs"
MAP=$WORK/bpffs/bench

"$TCBPF" map create type hash key 4 value 8 entries "$N" name tcbpf_bench pin "$MAP" >/dev/null

echo "preparing $N entries…" >&2
# The same updates in each tool's input form: key k, value 3k.
awk -v n="$N" 'BEGIN { for (k = 0; k < n; k++) print k, k * 3 }' >"$WORK/lines.txt"
awk -v n="$N" -v map="$MAP" 'BEGIN {
    for (k = 0; k < n; k++) {
        v = k * 3
        printf "map update pinned %s key %d %d %d %d value %d %d %d %d %d %d %d %d\n", map,
            k % 256, int(k / 256) % 256, int(k / 65536) % 256, int(k / 16777216) % 256,
            v % 256, int(v / 256) % 256, int(v / 65536) % 256, int(v / 16777216) % 256,
            int(v / 4294967296) % 256, 0, 0, 0
    }
}' >"$WORK/bpftool.txt"
"$RAW" update "$MAP" "$N"

# once_ns CMD…: wall time of one run of CMD (stdout to /dev/null), in ns.
once_ns() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(( t1 - t0 ))
}

# median FILE: the median of the numbers (ns) in FILE, in seconds.
median() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.7f\n", a[int((NR + 1) / 2)] / 1e9 }'
}

# fastest FILE: the smallest number (ns) in FILE, in seconds: what a run
# costs when nothing else on the machine gets in the way.
fastest() {
    sort -n "$1" | awk 'NR == 1 { printf "%.7f\n", $1 / 1e9 }'
}

# Sanity: every tool sees the same map.
got=$("$TCBPF" map dump pinned "$MAP" key u32 value u64 | wc -l)
[ "$got" = "$N" ] || { echo "bench: expected $N entries, tcbpf dumped $got" >&2; exit 1; }

# Runs alternate between the tools so that load from elsewhere on the
# machine falls on all of them alike; bpftool (seconds per run) runs 3 times.
echo "timing dump…" >&2
: >"$WORK/dt"; : >"$WORK/db"; : >"$WORK/dr"
for i in $(seq "$RUNS"); do
    once_ns "$TCBPF" map dump pinned "$MAP" >>"$WORK/dt"
    once_ns "$RAW" dump "$MAP" >>"$WORK/dr" 2>/dev/null
    if [ "$i" -le 3 ]; then once_ns "$BPFTOOL" map dump pinned "$MAP" >>"$WORK/db"; fi
done
dump_tcbpf=$(median "$WORK/dt"); dump_bpftool=$(median "$WORK/db"); dump_raw=$(median "$WORK/dr")
dump_tcbpf_min=$(fastest "$WORK/dt"); dump_bpftool_min=$(fastest "$WORK/db"); dump_raw_min=$(fastest "$WORK/dr")

echo "timing load…" >&2
: >"$WORK/lt"; : >"$WORK/lb"; : >"$WORK/lr"
for i in $(seq "$RUNS"); do
    once_ns "$TCBPF" map load pinned "$MAP" key u32 value u64 from "$WORK/lines.txt" >>"$WORK/lt"
    once_ns "$RAW" update "$MAP" "$N" >>"$WORK/lr"
    if [ "$i" -le 3 ]; then once_ns "$BPFTOOL" batch file "$WORK/bpftool.txt" >>"$WORK/lb"; fi
done
load_tcbpf=$(median "$WORK/lt"); load_bpftool=$(median "$WORK/lb"); load_raw=$(median "$WORK/lr")
load_tcbpf_min=$(fastest "$WORK/lt"); load_bpftool_min=$(fastest "$WORK/lb"); load_raw_min=$(fastest "$WORK/lr")

# The loads left value 3k at key k: check one through tcbpf.
"$TCBPF" map lookup pinned "$MAP" key u32 7 value u64 | grep 'value: 21$' >/dev/null

echo "timing single lookups…" >&2
# Five rounds of 100 runs each, so that load from elsewhere falls on every
# tool alike; the figure is the median of the rounds' medians.
: >"$WORK/kt"; : >"$WORK/ks"; : >"$WORK/kb"
for _ in $(seq "$ROUNDS"); do
    hyperfine -N --warmup "$WARMUP" --runs "$ROUND_RUNS" --export-csv "$WORK/lookup.csv" \
        "$TCBPF map lookup pinned $MAP key u32 7" \
        "$TCBPF_STATIC map lookup pinned $MAP key u32 7" \
        "$BPFTOOL map lookup pinned $MAP key 7 0 0 0" >/dev/null
    # CSV columns: command,mean,stddev,median,…; rows in the order given.
    awk -F, -v kt="$WORK/kt" -v ks="$WORK/ks" -v kb="$WORK/kb" '
        NR == 2 { printf "%d\n", $4 * 1e9 >> kt } NR == 3 { printf "%d\n", $4 * 1e9 >> ks } NR == 4 { printf "%d\n", $4 * 1e9 >> kb }' "$WORK/lookup.csv"
done
look_tcbpf=$(median "$WORK/kt"); look_static=$(median "$WORK/ks"); look_bpftool=$(median "$WORK/kb")

echo
# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^dump +NUMs +NUMs +NUMs +NUMx +NUMx$
# bench-smoke-row: ^load +NUMs +NUMs +NUMs +NUMx +NUMx$
# bench-smoke-row: ^dump +NUMs +NUMs +NUMs +NUMx +NUMx +\(fastest run\)$
# bench-smoke-row: ^load +NUMs +NUMs +NUMs +NUMx +NUMx +\(fastest run\)$
# bench-smoke-row: ^lookup +NUMms +NUMms +- +NUMx +- +\(default dynamic build\)$
# bench-smoke-row: ^lookup +NUMms +NUMms +- +NUMx +- +\(static build\)$
echo "tcbpf map benchmark: $N-entry u32 -> u64 hash map, median of $RUNS alternating runs (bpftool bulk: 3)"
awk -v dt="$dump_tcbpf" -v db="$dump_bpftool" -v dr="$dump_raw" \
    -v lt="$load_tcbpf" -v lb="$load_bpftool" -v lr="$load_raw" \
    -v dtm="$dump_tcbpf_min" -v dbm="$dump_bpftool_min" -v drm="$dump_raw_min" \
    -v ltm="$load_tcbpf_min" -v lbm="$load_bpftool_min" -v lrm="$load_raw_min" \
    -v kt="$look_tcbpf" -v ks="$look_static" -v kb="$look_bpftool" 'BEGIN {
    printf "%-8s %12s %12s %12s %14s %14s\n", "", "tcbpf", "bpftool", "raw batch", "bpftool/tcbpf", "raw/tcbpf"
    printf "%-8s %11.3fs %11.3fs %11.3fs %13.1fx %13.2fx\n", "dump", dt, db, dr, db / dt, dr / dt
    printf "%-8s %11.3fs %11.3fs %11.3fs %13.1fx %13.2fx\n", "load", lt, lb, lr, lb / lt, lr / lt
    printf "%-8s %11.3fs %11.3fs %11.3fs %13.1fx %13.2fx   (fastest run)\n", "dump", dtm, dbm, drm, dbm / dtm, drm / dtm
    printf "%-8s %11.3fs %11.3fs %11.3fs %13.1fx %13.2fx   (fastest run)\n", "load", ltm, lbm, lrm, lbm / ltm, lrm / ltm
    printf "%-8s %10.3fms %10.3fms %12s %13.2fx %14s   (default dynamic build)\n", "lookup", kt * 1000, kb * 1000, "-", kb / kt, "-"
    printf "%-8s %10.3fms %10.3fms %12s %13.2fx %14s   (static build)\n", "lookup", ks * 1000, kb * 1000, "-", kb / ks, "-"
    print ""
    print "targets: bpftool/tcbpf >= 8x and raw/tcbpf >= 0.7x for dump and load; lookup bpftool/tcbpf >= 1x"
}'

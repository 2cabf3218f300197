#!/usr/bin/env bash
# Benchmark of the typed map helper, side by side in one run:
#   batch: 100,000 single-key commands (70% update, 30% lookup, random keys
#          of a 1,000,000-entry u32 -> u64 hash map) fed to one
#          `tcbpf map batch` vs `bpftool batch file` vs a process per
#          command (1,000 commands timed, scaled to 100,000);
#   dump:  1,000,000 entries whose value is a 4-member struct, typed by BTF
#          (text and -j) vs `bpftool map dump` (BTF-formatted too) vs
#          tcbpf's own untyped dump (`raw`);
#   load:  `load json` of 1,000,000 NDJSON lines vs `map load` of the same
#          entries as typed words.
# Needs root. Installs bpftool if missing. Usage: scripts/bench-typed.sh [RUNS]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (5000 entries,
# 2000 commands, 50 of them a process each, 2 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    RUNS=${1:-2}; N=5000; CMDS=2000; PER=50
else
    RUNS=${1:-3}; N=1000000; CMDS=100000; PER=1000
fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-typed.sh: needs root (loads programs, mounts a bpffs)" >&2
    exit 2
fi
if ! command -v bpftool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftool
fi
BPFTOOL=$(command -v bpftool)
scripts/build-bench.sh
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
TCBPF=$TARGET/release/tcbpf
RAW=$TARGET/release/examples/map_raw_batch

WORK=$(mktemp -d /tmp/tcbpf-bench-typed.XXXXXX)
mkdir "$WORK/bpffs"
cleanup() {
    umount "$WORK/bpffs" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mount -t bpf bpf "$WORK/bpffs"

# once_ns CMD…: wall time of one run (stdout to /dev/null), in ns.
once_ns() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(( t1 - t0 ))
}
# median FILE: median of the ns figures in FILE, in seconds.
median() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.4f\n", a[int((NR + 1) / 2)] / 1e9 }'
}

echo "preparing…" >&2
# 1. The u32 -> u64 hash map of 1,000,000 entries, and the commands.
MAP=$WORK/bpffs/plain
"$TCBPF" map create type hash key 4 value 8 entries "$N" name tcbpf_bt pin "$MAP" >/dev/null
"$RAW" update "$MAP" "$N"
awk -v n="$CMDS" -v keys="$N" -v map="$MAP" 'BEGIN {
    srand(11)
    for (i = 0; i < n; i++) {
        k = int(rand() * keys)
        kb = sprintf("%d %d %d %d", k % 256, int(k / 256) % 256, int(k / 65536) % 256, int(k / 16777216) % 256)
        if (rand() < 0.7) {
            v = int(rand() * 1000000)
            printf "update pinned %s key %s value %d %d %d %d 0 0 0 0\n", map, kb,
                v % 256, int(v / 256) % 256, int(v / 65536) % 256, int(v / 16777216) % 256
        } else {
            printf "lookup pinned %s key %s\n", map, kb
        }
    }
}' >"$WORK/cmds.txt"
sed 's/^/map /' "$WORK/cmds.txt" >"$WORK/bpftool-cmds.txt"
head -n "$PER" "$WORK/cmds.txt" >"$WORK/cmds-per.txt"
per_process() {
    local line
    while read -r line; do
        # shellcheck disable=SC2086
        "$TCBPF" map $line >/dev/null 2>&1 || true
    done <"$WORK/cmds-per.txt"
}

# 2. The typed map: typed_maps.o's `quads` (u32 -> struct quad, 4 members).
"$TCBPF" obj load bpf/typed_maps.o bpffs "$WORK/bpffs" pin "$WORK/bpffs/prog" >/dev/null
QUADS=
for id in $("$BPFTOOL" prog show pinned "$WORK/bpffs/prog" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr ',' ' '); do
    if "$BPFTOOL" map show id "$id" | grep ' name quads ' >/dev/null; then QUADS=$id; fi
done
[ -n "$QUADS" ] || { echo "bench-typed: no quads map" >&2; exit 1; }
awk -v n="$N" 'BEGIN { for (k = 0; k < n; k++) printf "%d %d %d %d %d\n", k, k * 3, k * 7, k % 100, k }' >"$WORK/quads.txt"
awk -v n="$N" 'BEGIN { for (k = 0; k < n; k++)
    printf "{\"key\":%d,\"value\":{\"packets\":%d,\"bytes\":%d,\"drops\":%d,\"last_seen\":%d}}\n", k, k * 3, k * 7, k % 100, k }' >"$WORK/quads.ndjson"
"$TCBPF" map load id "$QUADS" key u32 value u64 u64 u32 u32 from "$WORK/quads.txt"
got=$("$TCBPF" map dump id "$QUADS" | wc -l)
[ "$got" = "$N" ] || { echo "bench-typed: expected $N typed entries, got $got" >&2; exit 1; }

echo "timing batch…" >&2
: >"$WORK/bt"; : >"$WORK/bb"; : >"$WORK/bp"
for i in $(seq "$RUNS"); do
    once_ns "$TCBPF" map batch from "$WORK/cmds.txt" >>"$WORK/bt"
    once_ns "$BPFTOOL" batch file "$WORK/bpftool-cmds.txt" >>"$WORK/bb"
    once_ns per_process >>"$WORK/bp"
done
batch_t=$(median "$WORK/bt"); batch_b=$(median "$WORK/bb"); per_some=$(median "$WORK/bp")

echo "timing typed dump…" >&2
: >"$WORK/dt"; : >"$WORK/dj"; : >"$WORK/dr"; : >"$WORK/db"
for i in $(seq "$RUNS"); do
    once_ns "$TCBPF" map dump id "$QUADS" >>"$WORK/dt"
    once_ns "$TCBPF" -j map dump id "$QUADS" >>"$WORK/dj"
    once_ns "$TCBPF" map dump id "$QUADS" raw >>"$WORK/dr"
    if [ "$i" = 1 ]; then once_ns "$BPFTOOL" map dump id "$QUADS" >>"$WORK/db"; fi
done
dump_t=$(median "$WORK/dt"); dump_j=$(median "$WORK/dj"); dump_r=$(median "$WORK/dr"); dump_b=$(median "$WORK/db")

echo "timing load json…" >&2
: >"$WORK/lj"; : >"$WORK/lw"
for i in $(seq "$RUNS"); do
    once_ns "$TCBPF" map load id "$QUADS" json from "$WORK/quads.ndjson" >>"$WORK/lj"
    once_ns "$TCBPF" map load id "$QUADS" key u32 value u64 u64 u32 u32 from "$WORK/quads.txt" >>"$WORK/lw"
done
load_j=$(median "$WORK/lj"); load_w=$(median "$WORK/lw")
"$TCBPF" map lookup id "$QUADS" key 7 | grep 'value: {packets: 21, bytes: 49, drops: 7, last_seen: 7}$' >/dev/null

echo
# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^  tcbpf map batch +NUMs +bpftool batch +NUMs +process per command +NUMs \(INT took NUMs\)$
# bench-smoke-row: ^  bpftool/tcbpf NUMx \(target >= 3x\) +per-process/tcbpf INTx \(target >= 50x\)$
# bench-smoke-row: ^  tcbpf text NUMs +tcbpf -j NUMs +tcbpf raw \(untyped\) NUMs +bpftool \(BTF\) NUMs$
# bench-smoke-row: ^  bpftool/tcbpf text NUMx, -j NUMx \(target >= 8x\) +text/raw NUMx, -j/raw NUMx \(target <= 1\.5x\)$
# bench-smoke-row: ^  load json \(NDJSON\) NUMs +load typed words NUMs +json/words NUMx \(target <= 2x\)$
echo "tcbpf typed map benchmark: median of $RUNS alternating runs (bpftool dump: 1 run)"
awk -v bt="$batch_t" -v bb="$batch_b" -v bp="$per_some" -v per="$PER" -v cmds="$CMDS" -v n="$N" \
    -v dt="$dump_t" -v dj="$dump_j" -v dr="$dump_r" -v db="$dump_b" \
    -v lj="$load_j" -v lw="$load_w" 'BEGIN {
    pp = bp * cmds / per
    printf "batch, %d commands (70%% update, 30%% lookup):\n", cmds
    printf "  tcbpf map batch %8.3fs   bpftool batch %8.3fs   process per command %8.1fs (%d took %.3fs)\n", bt, bb, pp, per, bp
    printf "  bpftool/tcbpf %.1fx (target >= 3x)   per-process/tcbpf %.0fx (target >= 50x)\n", bb / bt, pp / bt
    printf "dump, %d entries of a 4-member struct:\n", n
    printf "  tcbpf text %.3fs   tcbpf -j %.3fs   tcbpf raw (untyped) %.3fs   bpftool (BTF) %.3fs\n", dt, dj, dr, db
    printf "  bpftool/tcbpf text %.1fx, -j %.1fx (target >= 8x)   text/raw %.2fx, -j/raw %.2fx (target <= 1.5x)\n", db / dt, db / dj, dt / dr, dj / dr
    printf "load, %d entries:\n", n
    printf "  load json (NDJSON) %.3fs   load typed words %.3fs   json/words %.2fx (target <= 2x)\n", lj, lw, lj / lw
}'

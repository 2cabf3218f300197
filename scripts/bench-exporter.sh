#!/usr/bin/env bash
# Cost of one exporter scrape of a 1,000,000-entry map, side by side with
# `tcbpf map dump` and the raw LOOKUP_BATCH loop reading the same map, and
# whether a long scrape holds up other requests:
#   scrape (default cap: 10,000 series + 'other')   scrape (cap 2,000,000: every series)
#   map dump (text)   raw batch read
#   peak RSS of the exporter after the scrapes
#   GET / while a full scrape is running
# The exporter runs in a namespace of its own (its port is free there); the
# map is pinned in a private bpffs. Needs root (installs curl if missing).
# Usage: scripts/bench-exporter.sh [ENTRIES] [RUNS]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (20000 entries,
# so the default cap of 10,000 series still cuts; 2 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then N=${1:-20000}; RUNS=${2:-2}; else N=${1:-1000000}; RUNS=${2:-3}; fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-exporter.sh: needs root (creates maps, a namespace, mounts a bpffs)" >&2
    exit 2
fi
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
scripts/build-bench.sh
T=${CARGO_TARGET_DIR:-$PWD/target}/release
TCBPF=$T/tcbpf
EXPORTER=$T/tcbpf-exporter
RAW=$T/examples/map_raw_batch

WORK=$(mktemp -d /tmp/tcbpf-bench-exp.XXXXXX)
NS=tcbpf-bench-exp-$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    umount "$WORK/bpffs" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/bpffs"
mount -t bpf bpf "$WORK/bpffs"
ip netns add "$NS"
ip -n "$NS" link set lo up
MAP=$WORK/bpffs/bench
"$TCBPF" map create type hash key 4 value 8 entries "$N" name tcbpf_bench pin "$MAP" >/dev/null
echo "filling $N entries…" >&2
"$RAW" update "$MAP" "$N"

in_ns() { ip netns exec "$NS" "$@"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

start_exporter() { # PORT CONFIG
    # Not through the in_ns function: $! must be the exporter itself
    # (ip netns exec execs it), not a subshell, for the kill and its RSS.
    ip netns exec "$NS" "$EXPORTER" listen "127.0.0.1:$1" pinned "$MAP" config "$2" 2>"$WORK/exporter-$1.log" &
    PIDS+=($!)
    for _ in $(seq 100); do in_ns curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.1; done
    echo "exporter on $1 did not start" >&2; exit 1
}

echo "cap 10000" >"$WORK/capped.conf"
echo "cap 2000000" >"$WORK/full.conf"
start_exporter 9101 "$WORK/capped.conf"
CAPPED_PID=${PIDS[-1]}
start_exporter 9102 "$WORK/full.conf"
FULL_PID=${PIDS[-1]}

best() { sort -n | head -1; }
time_ns() { local t0; t0=$(date +%s%N); "$@" >/dev/null; echo $(( $(date +%s%N) - t0 )); }

echo "timing…" >&2
: >"$WORK/capped"; : >"$WORK/full"; : >"$WORK/dump"; : >"$WORK/raw"
for _ in $(seq "$RUNS"); do
    time_ns in_ns curl -s -o "$WORK/capped.txt" http://127.0.0.1:9101/metrics >>"$WORK/capped"
    time_ns in_ns curl -s -o "$WORK/full.txt" http://127.0.0.1:9102/metrics >>"$WORK/full"
    time_ns "$TCBPF" map dump pinned "$MAP" key u32 value u64 >>"$WORK/dump"
    time_ns "$RAW" dump "$MAP" >>"$WORK/raw"
done
series=$(grep -c '^tcbpf_map_tcbpf_bench_total{' "$WORK/full.txt")
[ "$series" = "$N" ] || { echo "bench: expected $N series, got $series" >&2; exit 1; }
capped_series=$(grep -c '^tcbpf_map_tcbpf_bench_total{' "$WORK/capped.txt")
rss_capped=$(awk '/VmHWM/ { print $2 }' "/proc/$CAPPED_PID/status")
rss_full=$(awk '/VmHWM/ { print $2 }' "/proc/$FULL_PID/status")
body=$(stat -c %s "$WORK/full.txt")

# A request for / while a full scrape runs: served by another thread.
t0=$(date +%s%N)
in_ns curl -s -o /dev/null http://127.0.0.1:9102/metrics &
SCRAPE=$!
sleep 0.2
side=$(time_ns in_ns curl -s -o /dev/null http://127.0.0.1:9102/)
wait $SCRAPE
t1=$(date +%s%N)

echo
# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^scrape, cap 10000 \(INT series\+other\) +NUM$
# bench-smoke-row: ^scrape, every series \(INT\) +NUM$
# bench-smoke-row: ^tcbpf map dump \(anchor\) +NUM$
# bench-smoke-row: ^raw LOOKUP_BATCH loop \(anchor\) +NUM$
# bench-smoke-row: ^body of the full scrape: INT MiB$
# bench-smoke-row: ^exporter peak RSS: capped INT MiB, every series INT MiB$
# bench-smoke-row: ^GET / during a full scrape: NUMs \(the scrape took NUMs\)$
echo "tcbpf exporter: one scrape of a $N-entry u32 -> u64 hash map (best of $RUNS)"
printf "%-34s %10s\n" "" "seconds"
printf "%-34s %10s\n" "scrape, cap 10000 ($capped_series series+other)" "$(secs 0 "$(best <"$WORK/capped")")"
printf "%-34s %10s\n" "scrape, every series ($series)" "$(secs 0 "$(best <"$WORK/full")")"
printf "%-34s %10s\n" "tcbpf map dump (anchor)" "$(secs 0 "$(best <"$WORK/dump")")"
printf "%-34s %10s\n" "raw LOOKUP_BATCH loop (anchor)" "$(secs 0 "$(best <"$WORK/raw")")"
echo "body of the full scrape: $((body / 1024 / 1024)) MiB"
echo "exporter peak RSS: capped $((rss_capped / 1024)) MiB, every series $((rss_full / 1024)) MiB"
echo "GET / during a full scrape: $(secs 0 "$side")s (the scrape took $(secs "$t0" "$t1")s)"

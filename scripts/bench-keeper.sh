#!/usr/bin/env bash
# Benchmark of the keeper (as root), side by side with its anchors:
#  1. time from a request until the command runs with the maps:
#     `tcbpf exec bpf import keeper SOCK ... run /bin/echo ready`, vs
#     `tcbpf exec bpf import UDS` and iproute2's `tc exec bpf import UDS`
#     (importer bound beforehand, not timed) fed by `tcbpf map export`;
#     median and p90 of RUNS runs each, interleaved;
#  2. get requests per second one keeper serves (library client, no
#     process per request): 1 client, 4 clients, and 100 clients at once,
#     with the latency of a get (median, p90, p99).
#
#   scripts/bench-keeper.sh [RUNS [MAPS]]     (defaults: 200 runs, 3 maps)
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (10 runs, a
# fiftieth of the get requests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/bench-keeper.sh: creates maps: run as root" >&2
    exit 2
fi
if ! command -v tc >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
if [ "${BENCH_SMOKE:-0}" = 1 ]; then RUNS=${1:-10}; GETS=50; else RUNS=${1:-200}; GETS=1; fi
MAPS=${2:-3}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
scripts/build-bench.sh
TCBPF=$TARGET/release/tcbpf
LOAD=$TARGET/release/examples/keeper_load

D=$(mktemp -d /tmp/tcbpf-bench-keeper.XXXXXX)
KPID=
cleanup() {
    [ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null || true
    umount "$D/fs" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
mkdir "$D/fs"
mount -t bpf bpf "$D/fs"
"$TCBPF" keeper "$D/k" 2>"$D/keeper.log" &
KPID=$!
for _ in $(seq 200); do [ -S "$D/k.import" ] && break; sleep 0.01; done
refs=()
for i in $(seq "$MAPS"); do
    "$TCBPF" map create type hash key 4 value 8 entries 64 name bench$i pin "$D/fs/m$i" >/dev/null
    refs+=(pinned "$D/fs/m$i")
done
"$TCBPF" map export "$D/k.import" "${refs[@]}" obj bench.o
for _ in $(seq 200); do "$TCBPF" keeper list "$D/k" | grep '^set bench.o' >/dev/null && break; sleep 0.01; done

# The table keeper_load prints; its rows, checked by scripts/bench-smoke.sh
# (NUM: a number, INT: a whole one):
# bench-smoke-row: ^  exec bpf import keeper \.\.\. run +median NUM ms  p90 NUM ms$
# bench-smoke-row: ^  exec bpf import UDS \+ map export +median NUM ms  p90 NUM ms  \(keeper/this NUM\)$
# bench-smoke-row: ^  tc exec bpf import UDS \+ map export +median NUM ms  p90 NUM ms  \(keeper/this NUM\)$
# bench-smoke-row: ^  gets INT threads 1 one-connection-each seconds NUM rate INT/s median NUM us p90 NUM us p99 NUM us$
# bench-smoke-row: ^  gets INT threads 4 one-connection-each seconds NUM rate INT/s median NUM us p90 NUM us p99 NUM us$
# bench-smoke-row: ^  gets INT threads 100 one-connection-each seconds NUM rate INT/s median NUM us p90 NUM us p99 NUM us$
# bench-smoke-row: ^  gets INT threads 4 connection-per-get seconds NUM rate INT/s median NUM us p90 NUM us p99 NUM us$
pairs=()
for i in $(seq "$MAPS"); do pairs+=("pinned:$D/fs/m$i"); done
"$LOAD" handoff "$TCBPF" "$(command -v tc)" "$D/k" bench.o "$RUNS" "${pairs[@]}"
echo "get requests served by one keeper (target: >= 1000/s):"
"$LOAD" get "$D/k" bench.o 1 $((5000 / GETS)) | sed 's/^/  /'
"$LOAD" get "$D/k" bench.o 4 $((2500 / GETS)) | sed 's/^/  /'
"$LOAD" get "$D/k" bench.o 100 $((100 / GETS)) | sed 's/^/  /'
"$LOAD" get "$D/k" bench.o 4 $((1000 / GETS)) reconnect | sed 's/^/  /'

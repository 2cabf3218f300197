#!/usr/bin/env bash
# Benchmark of the exec proxy: median time from the start of an export
# (`tcbpf map export`) until the imported command is running, for
# `tcbpf exec bpf import` and for iproute2's `tc exec bpf import` receiving
# from the same exporter, side by side. Run as root.
#
#   scripts/bench-exec.sh [MAPS [RUNS]]     (defaults: 3 maps, 200 runs; MAPS <= 64)
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (3 maps, 10 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/bench-exec.sh: creates maps: run as root" >&2
    exit 2
fi
if ! command -v tc >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
maps=${1:-3}
if [ "${BENCH_SMOKE:-0}" = 1 ]; then runs=${2:-10}; else runs=${2:-200}; fi
scripts/build-bench.sh
# The table bench_exec prints; its rows, checked by scripts/bench-smoke.sh
# (NUM: a number, INT: a whole one):
# bench-smoke-row: ^  tcbpf exec bpf import +NUM ms +NUM ms$
# bench-smoke-row: ^  tc exec bpf import +NUM ms +NUM ms$
# bench-smoke-row: ^  tcbpf/tc median ratio: NUM \(target
target=${CARGO_TARGET_DIR:-$PWD/target}/release
exec "$target/examples/bench_exec" --tcbpf "$target/tcbpf" --tc "$(command -v tc)" \
    --maps "$maps" --runs "$runs"

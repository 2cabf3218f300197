#!/usr/bin/env bash
# Benchmark of the exec proxy: median time from the start of an export
# (`tcbpf map export`) until the imported command is running, for
# `tcbpf exec bpf import` and for iproute2's `tc exec bpf import` receiving
# from the same exporter, side by side. Run as root.
#
#   scripts/bench-exec.sh [MAPS [RUNS]]     (defaults: 3 maps, 200 runs; MAPS <= 64)
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
runs=${2:-200}
cargo build --release -q -p tcbpf-cli
cargo build --release -q -p tcbpf --example bench_exec
exec target/release/examples/bench_exec --tcbpf target/release/tcbpf --tc "$(command -v tc)" \
    --maps "$maps" --runs "$runs"

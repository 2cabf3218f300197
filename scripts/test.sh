#!/usr/bin/env bash
# Runs every test on this machine: unit tests, and the integration tests
# that talk to the real kernel and the real `tc` (they need root).
# Installs what the tests need and a fresh machine lacks (iproute2's tc,
# strace; prometheus and tmux for the exporter and map watch tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the tests load eBPF programs and create namespaces: run as root" >&2
    exit 2
fi
if ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
# strace counts the batch syscalls of 'map batch' (tests/map_batch.rs).
if ! command -v strace >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace
fi
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --workspace --all-targets
cargo test --workspace

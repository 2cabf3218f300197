#!/usr/bin/env bash
# Runs every test on this machine: unit tests, and the integration tests
# that talk to the real kernel and the real `tc` (they need root).
# Installs what the tests need and a fresh machine lacks (iproute2's tc).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the tests load eBPF programs and create namespaces: run as root" >&2
    exit 2
fi
if ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
# The extern and map-default tests compare with libbpf's loader.
if ! command -v bpftool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftool
fi
cargo build --workspace --all-targets
cargo test --workspace

#!/usr/bin/env bash
# Runs every test on this machine: unit tests, and the integration tests
# that talk to the real kernel and the real `tc` (they need root).
# First installs what the tests need and a fresh machine lacks
# (scripts/setup.sh), then builds, tests, and runs the short soak.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: the tests load eBPF programs and create namespaces: run as root" >&2
    exit 2
fi
scripts/setup.sh
cargo build --workspace --all-targets
cargo test --workspace
# The short soak: hostile datagrams, an unread stderr pipe, racing
# exporters, filter add/export/del cycles (a few seconds).
scripts/soak.sh

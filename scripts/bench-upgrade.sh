#!/usr/bin/env bash
# Live upgrade of a classifier whose 1,000,000-entry hash gained a value
# member (bpf/upgrade_big_v1.o -> upgrade_big_v2.o): the whole upgrade's
# wall time beside a raw LOOKUP_BATCH + UPDATE_BATCH copy of the same
# entries, in one run, with UDP flowing through the hook (sent vs counted).
# Needs root; works in a namespace and bpffs of its own.
#   scripts/bench-upgrade.sh [ENTRIES]      default 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tcbpf --example upgrade_bench
exec nice target/release/examples/upgrade_bench "${1:-1000000}"

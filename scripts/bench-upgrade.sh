#!/usr/bin/env bash
# Live upgrade of a classifier whose 1,000,000-entry hash gained a value
# member (bpf/upgrade_big_v1.o -> upgrade_big_v2.o): the whole upgrade's
# wall time beside a raw LOOKUP_BATCH + UPDATE_BATCH copy of the same
# entries, in one run, with UDP flowing through the hook (sent vs counted).
# Needs root; works in a namespace and bpffs of its own.
#   scripts/bench-upgrade.sh [ENTRIES]      default 1000000
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (5,000 entries).
# bench-smoke-row: ^entries +INT \(raw copy moved INT\)$
# bench-smoke-row: ^raw LOOKUP_BATCH\+UPDATE_BATCH +NUM ms   NUM M entries/s$
# bench-smoke-row: ^whole upgrade +NUM ms   NUM M entries/s   \(NUMx the raw copy's speed\)$
# bench-smoke-row: ^  of which waiting for the old program NUM ms$
# bench-smoke-row: ^UDP during both +INT sent, INT counted: -?INT uncounted
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then entries=${1:-5000}; else entries=${1:-1000000}; fi
scripts/build-bench.sh
exec nice "${CARGO_TARGET_DIR:-$PWD/target}/release/examples/upgrade_bench" "$entries"

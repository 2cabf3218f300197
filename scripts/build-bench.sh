#!/usr/bin/env bash
# The release build every scripts/bench-*.sh runs: the binaries and
# examples of tcbpf, tcbpf-cli, tcbpf-exporter and tcbpf-dump (bench-dump.sh:
# tcbpf-dump and the example tracepoint_dump) in one cargo invocation
# (and tcbpf-sync's binary in a second),
# so that every benchmark runs the same artifacts (features unify the same
# way) and the build is made once and then reused. With `static`, also
# bench-map.sh's statically linked tcbpf (target/bench-static/release).
#   scripts/build-bench.sh [static]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tcbpf -p tcbpf-cli -p tcbpf-exporter -p tcbpf-dump --bins --examples
# tcbpf-sync (bench-fleet.sh) in a cargo run of its own: its dependencies'
# features (serde_json's preserve_order) do not unify into the others'.
cargo build --release -q -p tcbpf-sync --bins
if [ "${1:-}" = static ]; then
    # Only the final link changes (crt-static); its own target dir keeps
    # the dynamic build above from being rebuilt.
    cargo rustc --release -q -p tcbpf-cli --bin tcbpf --target-dir target/bench-static \
        -- -C target-feature=+crt-static
fi

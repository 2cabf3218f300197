#!/usr/bin/env bash
# Runs every test on this machine: unit tests, and the integration tests
# that talk to the real kernel and the real `tc` (they need root).
# Installs what the tests need and a fresh machine lacks (iproute2's tc,
# strace; protoc, etcd and etcdctl for tcbpf-sync).
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
# tcbpf-sync: protoc builds the etcd client's protocol code; its tests run a
# real etcd (etcd-server) and use etcdctl (etcd-client).
if ! command -v protoc >/dev/null || ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        protobuf-compiler etcd-server etcd-client
fi
cargo build --workspace --all-targets
cargo test --workspace

#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine lacks:
# iproute2's tc, strace, python3 and gcc (old hand-off generations),
# bpftool (loader parity), systemd-socket-activate (the keeper as a
# service; systemd-analyze checks the units), man, zsh and fish (the
# generated man pages and completions), prometheus and tmux (exporter and
# map watch), etcd and etcdctl (tcbpf-sync), hyperfine
# (scripts/bench-map.sh, which CI runs in its tiny form), libpcap-dev
# (tcbpf-dump links libpcap to compile filters), tcpdump and tshark (dump's
# tests: filters compiled as tcpdump does, pcapng read back). Each package
# is installed only when its command is missing, so a second run does
# nothing.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "scripts/setup.sh: installing packages needs root" >&2
    exit 2
fi
if ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
# strace: harden_import checks that a timeout ends without busy polling;
# map_batch counts the batch syscalls of 'map batch'.
if ! command -v strace >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace
fi
# exec_generations: an old-style exporter in Python, an old-style importer built with gcc.
if ! command -v python3 >/dev/null || ! command -v gcc >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 gcc libc6-dev linux-libc-dev
fi
# json_schema.rs validates every -j output against docs/json.md.
if ! python3 -c 'import jsonschema' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jsonschema
fi
# The exporter's exposition.rs parses OpenMetrics scrapes with Debian's
# prometheus_client (run by /usr/bin/python3; promtool parses only the
# text format).
if ! /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-prometheus-client
fi
# The extern and map-default tests compare with libbpf's loader.
if ! command -v bpftool >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftool
fi
# The keeper's socket-activation test runs systemd-socket-activate.
if ! command -v systemd-socket-activate >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd
fi
need=()
# man renders the generated man pages (gen_docs, deb_package); zsh and
# fish run the generated completions (gen_docs).
command -v man >/dev/null || need+=(man-db)
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v prometheus >/dev/null || need+=(prometheus)
command -v tmux >/dev/null || need+=(tmux)
command -v hyperfine >/dev/null || need+=(hyperfine)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# tcbpf-sync's tests run a real etcd (etcd-server) and use etcdctl
# (etcd-client). The build needs no protoc: the etcd client's generated
# code is committed (third_party/etcd-client).
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        etcd-server etcd-client
fi
# tcbpf-dump: libpcap compiles 'filter EXPR' (the crate links -lpcap);
# its tests compare with tcpdump -ddd and read the pcapng with tshark.
need=()
[ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v tshark >/dev/null || need+=(tshark)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

#!/usr/bin/env bash
# Benchmark of `tcbpf dump`: UDP packets per second across a veth pair
# through a 3-program tcx chain (bpf/dump_targets.o: mark_udp, count_all,
# pass_all on v1 ingress) with no dump, with `tcpdump -w` on the same
# device (which sees no verdicts), with `tcbpf dump … w FILE` writing every
# packet, and with a filter keeping 1 % of them (`ip[4:2] % 100 = 0`: the
# IP id of a connected UDP socket counts up). N datagrams (default 300000)
# are sent as fast as one socket can (tcbpf-cli/examples/udp_flood.rs);
# the rate is the sender's, which pays for the receiver's softirq on this
# machine; the configurations run in turn, $BENCH_RUNS rounds (default
# 3), and each row is its best round (the machine is shared: single runs
# drift). Cost = 1 - rate / rate without dump. Records and losses are
# what dump reports on stderr. Where the kernel refuses BPF trampolines
# (fentry/fexit), dump's rows say so; the last two rows then measure the
# same tracing programs, filter and read loop on the sender's egress
# tracepoints instead (example tracepoint_dump: net_dev_queue and
# net_dev_xmit of v0), which every kernel allows. Tracepoints see every
# namespace: their filter names the receiver's address as well.
#   BENCH_KEEP=1 keeps the outputs (the directory is printed).
#   scripts/bench-dump.sh [N]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (N = 3000, one
# round); every configuration still runs. Where trampolines are refused,
# dump's two rows show "-" and the reason.
# bench-smoke-row: ^UDP across veth, 3-program tcx chain \(N=INT\) +packets/s +cost
# bench-smoke-row: ^no dump +INT +-?NUM %
# bench-smoke-row: ^tcpdump -w FILE \(no verdicts\) +INT +-?NUM %
# bench-smoke-row: ^tcbpf dump w FILE \(every packet\) +(INT +-?NUM % +INT records, INT lost|- +- )
# bench-smoke-row: ^tcbpf dump filter \(1 %\) w FILE +(INT +-?NUM % +INT records, INT lost|- +- )
# bench-smoke-row: ^dump\.c on tracepoints w FILE \(every packet\) +INT +-?NUM % +INT records, INT lost
# bench-smoke-row: ^dump\.c on tracepoints, filter \(1 %\) w FILE +INT +-?NUM % +INT records, INT lost
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then n=${1:-3000}; else n=${1:-300000}; fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-dump.sh: loads programs and creates namespaces: run as root" >&2
    exit 2
fi
command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump; }
scripts/build-bench.sh
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=$target/release/tcbpf
flood=$target/release/examples/udp_flood
tpdump=$target/release/examples/tracepoint_dump
a=tcbpf-bda-$$
b=tcbpf-bdb-$$
fs=$(mktemp -d /tmp/tcbpf-bench-dfs.XXXXXX)
out=$(mktemp -d /tmp/tcbpf-bench-dump.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    umount "$fs" 2>/dev/null || true
    [ -n "${BENCH_KEEP:-}" ] && echo "kept $out" >&2 && return
    rm -rf "$fs" "$out"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip -n "$a" link add v0 type veth peer name v1 netns "$b"
ip -n "$a" addr add 10.79.0.1/24 dev v0
ip -n "$b" addr add 10.79.0.2/24 dev v1
ip -n "$a" link set v0 up
ip -n "$b" link set v1 up
mount -t bpf bpf "$fs"
# Link pins go to this private bpffs, not /sys/fs/bpf.
export TC_BPF_MNT=$fs
for p in mark_udp count_all pass_all; do
    "$bin" -n "$b" filter add dev v1 tcx ingress bpf obj bpf/dump_targets.o sec tc program "$p" > /dev/null
done

# run LABEL READY CMD…: starts CMD in namespace $ns (b unless set; none
# when CMD is empty), waits for READY on its stderr, floods, stops it with
# SIGTERM (a background job of a script inherits SIGINT ignored, and dump
# keeps it so). Sets $rate.
run() {
    local label=$1 ready=$2
    shift 2
    if [ $# -gt 0 ]; then
        ip netns exec "${ns:-$b}" "$@" > /dev/null 2> "$out/$label.err" &
        pid=$!
        local i=0
        until grep -q "$ready" "$out/$label.err" 2>/dev/null || [ $i -ge 200 ]; do
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" || true
                pid=
                rate=
                return
            fi
            sleep 0.05
            i=$((i + 1))
        done
    fi
    rate=$(ip netns exec "$a" "$flood" 10.79.0.2:7777 "$n" | awk '{ print $6 }' | tr -d '(/s)')
    sleep 0.5
    if [ -n "$pid" ]; then
        kill -TERM "$pid"
        wait "$pid" || true
        pid=
    fi
}
runs=${BENCH_RUNS:-3}
[ "${BENCH_SMOKE:-0}" = 1 ] && runs=1
cost() { awk -v r="$1" -v b="$2" 'BEGIN { printf "%.1f %%", (1 - r / b) * 100 }'; }
row() {
    local label=$1 extra=${2:-}
    if [ -z "$rate" ]; then
        printf '%-46s %12s %10s  %s\n' "$label" "-" "-" "$(head -c 120 "$out/$3.err")"
    else
        printf '%-46s %12s %10s  %s\n' "$label" "$rate" "$(cost "$rate" "$base")" "$extra"
    fi
}
records() { sed -n 's/^tcbpf dump: \([0-9]*\) records written, \([0-9]*\) lost.*/\1 records, \2 lost/p' "$out/$1.err"; }

printf '%-46s %12s %10s  %s\n' "UDP across veth, 3-program tcx chain (N=$n)" "packets/s" "cost" ""
run none ""    # warm-up: first sends pay for neighbour and route setup
declare -A top
labels=(none tcpdump dump_all dump_1pc tp_all tp_1pc)
for k in $(seq "$runs"); do
    for l in "${labels[@]}"; do
        ns=
        case $l in
        none) run none "" ;;
        tcpdump) run tcpdump "listening on" tcpdump -i v1 -Q in -w "$out/tcpdump.pcap" ;;
        dump_all) run dump_all "tracing " "$bin" dump dev v1 ingress w "$out/dump.pcapng" ;;
        dump_1pc) run dump_1pc "tracing " "$bin" dump dev v1 ingress filter 'udp and ip[4:2] % 100 = 0' w "$out/dump1.pcapng" ;;
        tp_all) ns=$a run tp_all "tracing " "$tpdump" v0 'udp and dst host 10.79.0.2' w "$out/tp.pcapng" ;;
        tp_1pc) ns=$a run tp_1pc "tracing " "$tpdump" v0 'udp and dst host 10.79.0.2 and ip[4:2] % 100 = 0' w "$out/tp1.pcapng" ;;
        esac
        if [ -n "$rate" ] && [ "$rate" -gt "${top[$l]:-0}" ]; then top[$l]=$rate; fi
    done
done
base=${top[none]}
show() { rate=${top[$1]:-}; row "$2" "${3:-}" "$1"; }
show none "no dump"
show tcpdump "tcpdump -w FILE (no verdicts)"
show dump_all "tcbpf dump w FILE (every packet)" "$(records dump_all)"
show dump_1pc "tcbpf dump filter (1 %) w FILE" "$(records dump_1pc)"
show tp_all "dump.c on tracepoints w FILE (every packet)" "$(records tp_all)"
show tp_1pc "dump.c on tracepoints, filter (1 %) w FILE" "$(records tp_1pc)"

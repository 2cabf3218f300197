#!/usr/bin/env bash
# Benchmark: events per second delivered by `tcbpf map events` under a UDP
# flood across a veth pair, for a ring buffer and a perf event array, next
# to `bpftool map event_pipe` on the same perf array; and the events lost.
# The classifier (bpf/events.o) sends one 16-byte event per datagram to
# both maps. N datagrams (default 200000) are sent as fast as one socket
# can (tcbpf-cli/examples/udp_flood.rs) from namespace A to B; the reader
# runs from before the flood until 1 s after it. Rates are events read per
# second of flood; lost = events the kernel could not deliver (ring buffer:
# refused records, counted by the program in .bss; perf: PERF_RECORD_LOST).
#   scripts/bench-events.sh [N]
# BENCH_SMOKE=1: the tiny form scripts/bench-smoke.sh runs (N = 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_SMOKE:-0}" = 1 ]; then n=${1:-2000}; else n=${1:-200000}; fi
if [ "$(id -u)" != 0 ]; then
    echo "bench-events.sh: loads programs and creates namespaces: run as root" >&2
    exit 2
fi
command -v tc >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
command -v bpftool >/dev/null || { apt-get update -qq && apt-get install -y -qq bpftool; }
scripts/build-bench.sh
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=$target/release/tcbpf
flood=$target/release/examples/udp_flood
a=tcbpf-eva-$$
b=tcbpf-evb-$$
fs=$(mktemp -d /tmp/tcbpf-bench-fs.XXXXXX)
out=$(mktemp -d /tmp/tcbpf-bench-ev.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    umount "$fs" 2>/dev/null || true
    rm -rf "$fs" "$out"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip -n "$a" link add v0 type veth peer name v1 netns "$b"
ip -n "$a" addr add 10.78.0.1/24 dev v0
ip -n "$b" addr add 10.78.0.2/24 dev v1
ip -n "$a" link set v0 up
ip -n "$b" link set v1 up
mount -t bpf bpf "$fs"
"$bin" obj load bpf/events.o bpffs "$fs" pin "$fs/prog" > "$out/load"
map_id() { awk -v m="$1" '$1 == "map" && $2 == m { print $NF }' "$out/load"; }
rb=$(map_id rb)
pa=$(map_id pa)
bss=$(map_id .bss)
tc -n "$b" qdisc add dev v1 clsact
tc -n "$b" filter add dev v1 ingress bpf da pinned "$fs/prog"
# .bss: seen, rb_full.
refused() { "$bin" map lookup id "$bss" key u32 0 value u64 u64 u64 | awk '{ print $5 }'; }

# How a reader is stopped. A background job of a non-interactive shell
# starts with SIGINT ignored, and `tcbpf map events` keeps an inherited
# ignored SIGINT ignored (as `nohup` would): it is stopped with SIGTERM,
# which docs/map.md documents as its other way to end. bpftool installs its
# own SIGINT handler (its Ctrl-C), which overrides the inherited ignore, so
# it gets SIGINT and exits through its own clean-up. A reader still running
# 10 s after its signal is a failure, not a hang.
stop_reader() {
    local sig=$1 i=0
    kill "-$sig" "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if [ $i -ge 200 ]; then
            echo "bench-events.sh: reader $pid still running 10 s after SIG$sig" >&2
            kill -KILL "$pid" 2>/dev/null || true
            exit 4
        fi
        sleep 0.05
        i=$((i + 1))
    done
    wait "$pid" || true
    pid=
}

# perf_fds PID: how many perf events PID holds open.
perf_fds() { find "/proc/$1/fd" -lname 'anon_inode:*perf_event*' 2>/dev/null | wc -l; }

# run LABEL READY_WORD STOP_SIGNAL CMD…: starts the reader (stdout as CMD
# redirects it through $sink), waits until it reads (READY_WORD on its
# stderr; without one, until it holds a perf event per online CPU, and a
# little more for it to store them in the array), floods, stops it with
# STOP_SIGNAL 1 s after the flood. Sets $secs (flood seconds).
run() {
    local label=$1 ready=$2 sig=$3
    shift 3
    "$@" > "$sink" 2> "$out/$label.err" &
    pid=$!
    local i=0
    if [ -n "$ready" ]; then
        until grep -q "$ready" "$out/$label.err" 2>/dev/null || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
    else
        until [ "$(perf_fds "$pid")" -ge "$cpus" ] || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
        sleep 0.5
    fi
    local flood_out
    flood_out=$(ip netns exec "$a" "$flood" 10.78.0.2:7777 "$n")
    secs=$(echo "$flood_out" | awk '{ print $4 }')
    sleep 1
    stop_reader "$sig"
}
cpus=$(getconf _NPROCESSORS_ONLN)
rate() { awk -v e="$1" -v s="$2" 'BEGIN { printf "%.0f", e / s }'; }
tcbpf_events() { sed -n 's/.*after \([0-9]*\) events.*/\1/p' "$out/$1.err"; }
tcbpf_lost() { sed -n 's/.*, \([0-9]*\) lost samples.*/\1/p' "$out/$1.err" | head -1; }

# row LABEL EVENTS LOST: one line of the table; a reader that read nothing
# (or whose count could not be read) fails the run.
row() {
    case "$2" in '' | 0 | *[!0-9]*)
        echo "bench-events.sh: $1: no events read (got '$2')" >&2
        exit 4 ;;
    esac
    printf '%-44s %10s %12s %10s %10s\n' "$1" "$(rate "$n" "$secs")" "$(rate "$2" "$secs")" "$2" "$3"
}

# The table's rows, checked by scripts/bench-smoke.sh (NUM: a number, INT: a whole one):
# bench-smoke-row: ^reader \(N=INT datagrams\) +sent/s +events/s +events +lost$
# bench-smoke-row: ^tcbpf map events \(ringbuf\) > /dev/null +INT +INT +INT +INT$
# bench-smoke-row: ^tcbpf map events \(perf\) > /dev/null +INT +INT +INT +INT$
# bench-smoke-row: ^tcbpf map events \(perf\) > file +INT +INT +INT +INT$
# bench-smoke-row: ^bpftool map event_pipe \(perf\) > file +INT +INT +INT +INT$
printf '%-44s %10s %12s %10s %10s\n' "reader (N=$n datagrams)" "sent/s" "events/s" "events" "lost"

sink=/dev/null
before=$(refused)
run rb_null "reading" TERM "$bin" -v map events id "$rb"
lost=$(( $(refused) - before ))
ev=$(tcbpf_events rb_null)
row "tcbpf map events (ringbuf) > /dev/null" "$ev" "$lost"

run pa_null "reading" TERM "$bin" -v map events id "$pa"
ev=$(tcbpf_events pa_null)
lost=$(tcbpf_lost pa_null)
row "tcbpf map events (perf) > /dev/null" "$ev" "${lost:-0}"

sink=$out/tcbpf_pa.txt
run pa_file "reading" TERM "$bin" -v map events id "$pa"
ev=$(grep -vc '^lost ' "$sink" || true)
lost=$(awk '/^lost / { s += $2 } END { print s + 0 }' "$sink")
row "tcbpf map events (perf) > file" "$ev" "$lost"

sink=$out/bpftool_pa.txt
run bpftool "" INT bpftool map event_pipe id "$pa"
ev=$(grep -c '^== @' "$sink" || true)
lost=$(awk '/^lost / { s += $2 } END { print s + 0 }' "$sink")
row "bpftool map event_pipe (perf) > file" "$ev" "$lost"

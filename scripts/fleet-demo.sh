#!/usr/bin/env bash
# A fleet on one machine: a 3-member etcd cluster on loopback and HOSTS
# "hosts", each a pair of network namespaces joined by a veth with its own
# sync_block classifier (bpf/sync_block.c) on the ingress, its own bpffs and
# maps, and its own `tcbpf sync etcd` process. Prints:
#   - put → every host's map: median / p99 / max over PUTS puts
#   - convergence after a BULK-entry policy written by one command
#   - the fault cases, each with its outcome: the etcd leader killed during
#     a stream of updates; a sync SIGKILLed and restarted; compaction past a
#     stopped node's revision; a map changed by hand behind sync's back.
# Every case ends with fleet_probe checking that each host's maps equal the
# policy; the script exits non-zero when one does not.
#
#   scripts/fleet-demo.sh          10 hosts, 1,000 puts, 100,000 entries
#   scripts/fleet-demo.sh short    3 hosts, 50 puts, 5,000 entries (the tests run this)
#
# Needs root, etcd/etcdctl (etcd-server, etcd-client), iproute2. Uses the
# binaries in $TCBPF_BIN_DIR when set (tcbpf, tcbpf-sync, examples/fleet_probe),
# else builds them (release). Removes everything it made, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "fleet-demo: needs root (namespaces, bpf)" >&2
    exit 2
fi
if [ "${1:-}" = short ]; then
    HOSTS=3 PUTS=50 BULK=5000 STREAM=60
else
    HOSTS=10 PUTS=1000 BULK=100000 STREAM=300
fi
if [ -z "${TCBPF_BIN_DIR:-}" ]; then
    cargo build --release -q -p tcbpf-cli -p tcbpf-sync --bins --example fleet_probe
    TCBPF_BIN_DIR=${CARGO_TARGET_DIR:-target}/release
fi
TCBPF=$TCBPF_BIN_DIR/tcbpf
PROBE=$TCBPF_BIN_DIR/examples/fleet_probe
OBJ=$PWD/bpf/sync_block.o
export ETCDCTL_API=3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tcbpf-fleet.XXXXXX")
TAG=fl$$
PREFIX=/fleet/$TAG
declare -a MEMBER_PID SYNC_PID CPORT PPORT

cleanup() {
    set +e
    for p in "${SYNC_PID[@]:-}" "${MEMBER_PID[@]:-}"; do
        [ -n "$p" ] || continue
        { kill -CONT "$p"; kill -KILL "$p"; wait "$p"; } 2>/dev/null
    done
    for i in $(seq 1 "$HOSTS"); do
        ip netns del "${TAG}a$i" 2>/dev/null
        ip netns del "${TAG}b$i" 2>/dev/null
        umount -l "$WORK/h$i/fs" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htan "( sport = :$p )" | grep . >/dev/null; then
            echo "$p"
            return
        fi
    done
    fail "no free port"
}

for m in 0 1 2; do CPORT[m]=$(free_port); PPORT[m]=$(free_port); done
CLUSTER="${TAG}m0=http://127.0.0.1:${PPORT[0]},${TAG}m1=http://127.0.0.1:${PPORT[1]},${TAG}m2=http://127.0.0.1:${PPORT[2]}"
EPS="127.0.0.1:${CPORT[0]},127.0.0.1:${CPORT[1]},127.0.0.1:${CPORT[2]}"

start_member() {
    local m=$1
    etcd --name "${TAG}m$m" --data-dir "$WORK/m$m" \
        --listen-client-urls "http://127.0.0.1:${CPORT[m]}" --advertise-client-urls "http://127.0.0.1:${CPORT[m]}" \
        --listen-peer-urls "http://127.0.0.1:${PPORT[m]}" --initial-advertise-peer-urls "http://127.0.0.1:${PPORT[m]}" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token "$TAG" \
        --heartbeat-interval 50 --election-timeout 500 >"$WORK/m$m.log" 2>&1 &
    MEMBER_PID[m]=$!
}

ctl() { etcdctl --endpoints="$EPS" --command-timeout=5s "$@"; }

wait_cluster() {
    for _ in $(seq 1 300); do
        ctl put "$PREFIX/ready" 1 >/dev/null 2>&1 && return
        sleep 0.1
    done
    fail "etcd cluster did not come up: $(tail -3 "$WORK/m0.log")"
}

leader() {
    local m
    for m in 0 1 2; do
        [ -n "${MEMBER_PID[m]}" ] || continue
        if etcdctl --endpoints="127.0.0.1:${CPORT[m]}" endpoint status -w simple 2>/dev/null |
            awk -F', ' '{ exit !($5 == "true") }'; then
            echo "$m"
            return
        fi
    done
    echo -1
}

pins() { # pins of map NAME on every host
    local i
    for i in $(seq 1 "$HOSTS"); do printf '%s ' "$WORK/h$i/fs/tc/globals/$1"; done
}

start_sync() {
    local i=$1
    shift
    "$TCBPF" sync etcd "$EPS" prefix "$PREFIX" \
        pinned "$WORK/h$i/fs/tc/globals/sync_blocked" as blocked \
        pinned "$WORK/h$i/fs/tc/globals/sync_src" as blocked_src \
        node "host$i" status-ttl 5 "$@" >>"$WORK/h$i/sync.log" 2>&1 &
    SYNC_PID[i]=$!
}

node_field() { # node_field NODE FIELD: from `tcbpf sync status`
    "$TCBPF" sync status "$EPS" prefix "$PREFIX" |
        awk -v n="$1" -v f="$2" '$1 == "node" && $2 == n { for (i = 3; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

check() { # check NAME SECS: every host's map equals the policy
    local pin=sync_blocked
    [ "$1" = blocked_src ] && pin=sync_src
    "$PROBE" check "$EPS" "$PREFIX" "$1" "$2" $(pins "$pin") || fail "hosts differ from the policy ($1)"
}

say "== fleet: 3 etcd members, $HOSTS hosts ($(etcd --version | head -1))"
for m in 0 1 2; do start_member "$m"; done
wait_cluster

for i in $(seq 1 "$HOSTS"); do
    a=${TAG}a$i b=${TAG}b$i
    ip netns add "$a"
    ip netns add "$b"
    ip -n "$a" link add v0 type veth peer name v1 netns "$b"
    ip -n "$a" addr add "10.98.$i.1/24" dev v0
    ip -n "$b" addr add "10.98.$i.2/24" dev v1
    ip -n "$a" link set v0 up
    ip -n "$b" link set v1 up
    mkdir -p "$WORK/h$i/fs"
    mount -t bpf bpf "$WORK/h$i/fs"
    TC_BPF_MNT=$WORK/h$i/fs "$TCBPF" -n "$b" qdisc add dev v1 clsact
    TC_BPF_MNT=$WORK/h$i/fs "$TCBPF" -n "$b" filter add dev v1 ingress bpf da obj "$OBJ" >/dev/null
    start_sync "$i"
done

# Real traffic on host 1: UDP to a port the policy blocks is dropped.
"$TCBPF" sync put "$EPS" prefix "$PREFIX" map blocked key 5353 value 1
check blocked 10
udp_dropped() {
    "$TCBPF" map lookup pinned "$WORK/h1/fs/tc/globals/sync_udp_stats" key u32 1 value u64 | awk '{ print $NF }'
}
before=$(udp_dropped)
for _ in 1 2 3 4 5; do ip netns exec "${TAG}a1" bash -c 'echo x > /dev/udp/10.98.1.2/5353'; done
sleep 0.2
after=$(udp_dropped)
say "udp: 5 datagrams to blocked port 5353 on host1, classifier dropped $((after - before))"
[ $((after - before)) -eq 5 ] || fail "blocked port not dropped"

say "== latency"
"$PROBE" latency "$EPS" "$PREFIX" "$PUTS" $(pins sync_blocked)

say "== bulk"
seq 0 $((BULK - 1)) | awk '{ printf "{\"key\":%d,\"value\":1}\n", 167772160 + $1 }' >"$WORK/bulk.ndjson"
"$PROBE" await "$BULK" 300 $(pins sync_src) >"$WORK/await.out" &
await_pid=$!
t0=$(date +%s%N)
"$TCBPF" sync put "$EPS" prefix "$PREFIX" map blocked_src from "$WORK/bulk.ndjson" >/dev/null
t1=$(date +%s%N)
wait "$await_pid" || fail "bulk: $(cat "$WORK/await.out")"
conv=$(cat "$WORK/await.out")
awk -v n="$BULK" -v h="$HOSTS" -v w="$(( (t1 - t0) / 1000000 ))" -v c="$conv" 'BEGIN {
    printf "bulk %d entries by one tcbpf sync put … from FILE (transactions of 128): all %d hosts hold all %d %.2f s after the command began; the command took %.2f s\n", n, h, n, c, w / 1000 }'
check blocked_src 60

say "== fault: etcd leader killed during a stream of $STREAM updates"
"$PROBE" stream "$EPS" "$PREFIX" 30000 $((30000 + STREAM)) 10 >"$WORK/stream.out" &
stream_pid=$!
sleep 0.5
L=$(leader)
[ "$L" -ge 0 ] || fail "no leader found"
{ kill -KILL "${MEMBER_PID[L]}"; wait "${MEMBER_PID[L]}"; } 2>/dev/null || true
MEMBER_PID[L]=
t0=$(date +%s%N)
for _ in $(seq 1 100); do
    N=$(leader)
    [ "$N" -ge 0 ] && break
    sleep 0.05
done
say "killed leader m$L; m$N leads $(( ($(date +%s%N) - t0) / 1000000 )) ms later"
wait "$stream_pid" || fail "stream: $(cat "$WORK/stream.out")"
cat "$WORK/stream.out"
check blocked 30
start_member "$L"
wait_cluster
say "m$L restarted and rejoined"

say "== fault: sync on host2 SIGKILLed during a stream and restarted"
"$PROBE" stream "$EPS" "$PREFIX" 40000 $((40000 + STREAM / 2)) 5 >"$WORK/stream2.out" &
stream_pid=$!
sleep 0.3
{ kill -KILL "${SYNC_PID[2]}"; wait "${SYNC_PID[2]}"; } 2>/dev/null || true
wait "$stream_pid"
"$TCBPF" sync del "$EPS" prefix "$PREFIX" map blocked key 30000
start_sync 2
check blocked 30
cat "$WORK/stream2.out"
for _ in $(seq 1 50); do
    [ "$(node_field host2 pid)" = "${SYNC_PID[2]}" ] && [ "$(node_field host2 last_resync)" != - ] && break
    sleep 0.1
done
say "host2 restarted (pid ${SYNC_PID[2]}): last_resync $(node_field host2 last_resync) $(node_field host2 added) $(node_field host2 changed) $(node_field host2 unchanged) $(node_field host2 removed) (added changed unchanged removed)"

say "== fault: compaction past a stopped node's revision"
kill -STOP "${SYNC_PID[3]}"
rev_before=$(node_field host3 revision)
# Cut every connection the stopped node has, before the policy changes (so
# no event waits in its socket): restart the members one by one (the
# cluster keeps its quorum throughout).
for m in 0 1 2; do
    { kill -KILL "${MEMBER_PID[m]}"; wait "${MEMBER_PID[m]}"; } 2>/dev/null || true
    start_member "$m"
    wait_cluster
done
for p in $(seq 50000 50099); do ctl put "$PREFIX/maps/blocked/$p" 1 >/dev/null; done
ctl del "$PREFIX/maps/blocked/5353" >/dev/null
head=$(ctl get "$PREFIX/ready" -w fields | awk '/"Revision"/ { print $3 }')
ctl compaction --physical "$head" >/dev/null
kill -CONT "${SYNC_PID[3]}"
check blocked 30
for _ in $(seq 1 50); do
    [ "$(node_field host3 resyncs)" -ge 2 ] 2>/dev/null && break
    sleep 0.1
done
say "host3 was stopped at revision $rev_before, history compacted at $head: resyncs $(node_field host3 resyncs), last_resync $(node_field host3 last_resync), last error: $("$TCBPF" sync status "$EPS" prefix "$PREFIX" | awk '$2 == "host3" { sub(/.*last_error /, ""); print }')"

say "== fault: a map changed by hand behind sync's back (host4 or the last host)"
H=$((HOSTS >= 4 ? 4 : HOSTS))
pin=$WORK/h$H/fs/tc/globals/sync_blocked
"$TCBPF" map update pinned "$pin" key u16 7777 value u8 1
"$TCBPF" map delete pinned "$pin" key u16 20000
sleep 2
if "$TCBPF" map lookup pinned "$pin" key u16 7777 >/dev/null 2>&1; then
    say "after 2 s: host$H still holds the hand-made entry 7777 and lacks 20000 (the watch sees only etcd)"
else
    fail "drift vanished without a resync"
fi
kill -HUP "${SYNC_PID[H]}"
check blocked 10
for _ in $(seq 1 50); do
    [ "$(node_field "host$H" drift_fixed)" = 2 ] && break
    sleep 0.1
done
say "after SIGHUP: host$H equals the policy again; drift_fixed $(node_field "host$H" drift_fixed) (7777 removed, 20000 restored)"

say "== status"
"$TCBPF" sync status "$EPS" prefix "$PREFIX" | grep '^node\|^head'
say "fleet-demo: OK"

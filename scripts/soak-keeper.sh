#!/usr/bin/env bash
# Soak test of the keeper (as root): CYCLES attach/detach cycles from
# clients that exit, are SIGKILLed mid-request, or send garbage; then
# CLIENTS clients at once, each incrementing counters through the
# descriptors it got. Prints the keeper's descriptor count and RSS at start
# and end, and fails when the descriptor count grew, the keeper stopped
# answering, a hostile request was not refused, or a per-client counter
# lost an update, or the shared counter incremented with `map add` did.
#
#   scripts/soak-keeper.sh [CYCLES [CLIENTS [ROUNDS [ATTACK_SECS]]]]    # defaults 1000 100 20 4
#
# Key 1 of the same map is incremented with `map add` (an atomic add in the
# kernel): that one must lose nothing.
# The shared counter uses `map update … lock` (BPF_F_LOCK): each update and
# each lookup is atomic, but a client's lookup-then-update is not, so
# concurrent increments of the one shared counter can be lost; the script
# counts them and prints the figure. Each client also increments its own
# key of a second map: those must all arrive.
#
# Then the attacks of a local user with no 'rw' (uid 65534, allowed only
# 'ro' of soak.o), ATTACK_SECS seconds each: 2,000 connections held with
# the keeper's open-files limit lowered to its descriptors + 6 (so accept
# fails with EMFILE); 2,000 connections held at the normal limit; 40
# clients sending gets they never read. Before, during and after each it
# prints the keeper's descriptors, threads, RSS, the worst of 5 root
# `keeper list` latencies and the keeper's CPU ticks during the probe; it
# fails when root is refused or waits more than a second.
#
# TCBPF and KEEPER_LOAD name the binaries (default: release builds, built
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-1000}
CLIENTS=${2:-100}
ROUNDS=${3:-20}
ATTACK_SECS=${4:-4}
if [ "$(id -u)" != 0 ]; then
    echo "soak-keeper.sh: run as root (the keeper opens maps by id)" >&2
    exit 2
fi
TARGET=${CARGO_TARGET_DIR:-target}
TCBPF=${TCBPF:-$TARGET/release/tcbpf}
KEEPER_LOAD=${KEEPER_LOAD:-$TARGET/release/examples/keeper_load}
if [ ! -x "$TCBPF" ] || [ ! -x "$KEEPER_LOAD" ]; then
    cargo build --release -p tcbpf-cli --bin tcbpf --example keeper_load
fi
export TCBPF

D=$(mktemp -d /tmp/tcbpf-soak.XXXXXX)
KPID=
cleanup() {
    [ -n "$KPID" ] && kill "$KPID" 2>/dev/null && wait "$KPID" 2>/dev/null || true
    umount "$D/fs" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
mkdir "$D/fs"
mount -t bpf bpf "$D/fs"
chmod 0755 "$D"    # uid 65534 reaches the socket for the attacks
echo "allow uid 65534 set soak.o ro" >"$D/policy"

K=$D/keeper
"$TCBPF" keeper "$K" policy "$D/policy" mode 0666 2>"$D/keeper.log" &
KPID=$!
for _ in $(seq 200); do [ -S "$K.import" ] && break; sleep 0.01; done

# The maps: bpf/spinlock.o's `locked` (value: spin lock, pad, u64 count)
# and a per-client counter map; exported as set soak.o, then unpinned, so
# that only the keeper holds them.
"$TCBPF" obj load bpf/spinlock.o bpffs "$D/fs" pin "$D/fs/prog" >/dev/null
"$TCBPF" map update pinned "$D/fs/tc/globals/locked" key u32 0 value u32 0 u32 0 u64 0 lock
"$TCBPF" map create type hash key 4 value 8 entries 4096 name soak_ctr pin "$D/fs/ctr" >/dev/null
"$TCBPF" map update pinned "$D/fs/ctr" key u32 0 value u64 0
"$TCBPF" map export "$K.import" pinned "$D/fs/tc/globals/locked" pinned "$D/fs/ctr" obj soak.o
rm -f "$D/fs/tc/globals/locked" "$D/fs/ctr" "$D/fs/prog"
for _ in $(seq 200); do "$TCBPF" keeper list "$K" | grep '^set soak.o' >/dev/null && break; sleep 0.01; done

fds() { ls "/proc/$KPID/fd" | wc -l; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$KPID/status"; }
FDS0=$(fds); RSS0=$(rss)
echo "start: keeper pid $KPID  fds $FDS0  rss ${RSS0} kB"

# Attach/detach cycles, four kinds in turn.
T0=$(date +%s.%N)
killed=0; exited=0; refs=0; hostile=0
for i in $(seq "$CYCLES"); do
    case $((i % 4)) in
    0)  # attach, use, exit
        "$TCBPF" exec bpf import keeper "$K" set soak.o run \
            sh -c '"$TCBPF" map update env SOAK_CTR key u32 0 value u64 '"$i" || exit 1
        exited=$((exited + 1)) ;;
    1)  # a MAP reference: connect, get one map, exit
        "$TCBPF" map lookup keeper "$K" soak.o/soak_ctr key u32 0 value u64 >/dev/null
        refs=$((refs + 1)) ;;
    2)  # SIGKILL after 0-3 ms: before, during or after its request
        "$TCBPF" exec bpf import keeper "$K" set soak.o run sleep 5 &
        p=$!
        sleep "0.00$((i % 4))"
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
        killed=$((killed + 1)) ;;
    3)  # garbage, huge, descriptors attached, abandoned mid-reply
        "$KEEPER_LOAD" garbage "$K" 1 "$((i / 4))" >/dev/null || { echo "FAIL: hostile request not refused"; exit 1; }
        hostile=$((hostile + 1)) ;;
    esac
done
T1=$(date +%s.%N)
sleep 0.2
FDS1=$(fds); RSS1=$(rss)
echo "cycles: $CYCLES ($exited exited, $refs map references, $killed SIGKILLed, $hostile hostile) in $(awk "BEGIN {printf \"%.1f\", $T1 - $T0}") s"
echo "after cycles: fds $FDS0 -> $FDS1  rss ${RSS0} kB -> ${RSS1} kB"
"$KEEPER_LOAD" garbage "$K" 12 | sed 's/^/hostile burst: /'

# CLIENTS clients at once, ROUNDS increments each.
"$TCBPF" map update keeper "$K" soak.o/locked key u32 0 value u32 0 u32 0 u64 0 lock
"$TCBPF" map delete keeper "$K" soak.o/soak_ctr key u32 0
"$TCBPF" map update keeper "$K" soak.o/locked key u32 1 value u32 0 u32 0 u64 0 lock
for c in $(seq "$CLIENTS"); do
    "$TCBPF" exec bpf import keeper "$K" set soak.o run sh -c '
        c='"$c"'; r=0
        "$TCBPF" map update env SOAK_CTR key u32 $c value u64 0
        while [ $r -lt '"$ROUNDS"' ]; do
            v=$("$TCBPF" map lookup env LOCKED key u32 0 value u32 u32 u64 lock | awk "{print \$NF}")
            "$TCBPF" map update env LOCKED key u32 0 value u32 0 u32 0 u64 $((v + 1)) lock
            w=$("$TCBPF" map lookup env SOAK_CTR key u32 $c value u64 | awk "{print \$NF}")
            "$TCBPF" map update env SOAK_CTR key u32 $c value u64 $((w + 1))
            "$TCBPF" map add env LOCKED key u32 1 field count value 1 >/dev/null || exit 1
            r=$((r + 1))
        done' &
done
wait $(jobs -p | grep -v "^$KPID$") 2>/dev/null || true
want=$((CLIENTS * ROUNDS))
shared=$("$TCBPF" map lookup keeper "$K" soak.o/locked key u32 0 value u32 u32 u64 lock | awk '{print $NF}')
own=$("$TCBPF" -j map dump keeper "$K" soak.o/soak_ctr key u32 value u64 |
    tr ',' '\n' | awk -F: '/"value"/ {gsub(/[^0-9]/, "", $2); s += $2} END {print s}')
echo "concurrent: $CLIENTS clients x $ROUNDS increments = $want"
echo "  per-client keys: sum $own (lost $((want - own)))"
echo "  shared 'lock' counter (lookup+update, not atomic together): $shared (lost $((want - shared)))"
added=$("$TCBPF" map lookup keeper "$K" soak.o/locked key u32 1 value u32 u32 u64 lock | awk '{print $NF}')
echo "  shared counter by 'map add' (atomic in the kernel): $added (lost $((want - added)))"

# Attacks by uid 65534.
threads() { awk '/^Threads/ {print $2}' "/proc/$KPID/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$KPID/stat"; }
ATTACK_FAIL=0
lat() {  # root's `keeper list`: the worst of 5, in ms
    local worst=0 t0 t1 ms
    for _ in 1 2 3 4 5; do
        t0=$(date +%s%N)
        if ! timeout 15 "$TCBPF" keeper list "$K" >/dev/null 2>"$D/lat.err"; then
            echo "FAILED ($(head -c 120 "$D/lat.err"))"; return
        fi
        t1=$(date +%s%N); ms=$(( (t1 - t0) / 1000000 ))
        [ "$ms" -gt "$worst" ] && worst=$ms
    done
    echo "${worst} ms"
}
probe() {
    local c0 l c1
    c0=$(cpu); l=$(lat); c1=$(cpu)
    echo "  $1: fds $(fds) threads $(threads) rss $(rss) kB  root list (worst of 5) $l  keeper cpu $((c1 - c0)) ticks"
    case $l in FAILED*) ATTACK_FAIL=1 ;; *) [ "${l% ms}" -lt 1000 ] || ATTACK_FAIL=1 ;; esac
}
NOFILE=$(prlimit --pid "$KPID" --nofile --output SOFT,HARD --noheadings | awk '{print $1 ":" $2}')
attack() {  # NAME LIMIT(empty: unchanged) KEEPER_LOAD-WORDS...
    local name=$1 limit=$2 ap
    shift 2
    echo "attack: $name"
    probe before
    # The soft limit only: raising it back needs no CAP_SYS_RESOURCE.
    [ -z "$limit" ] || prlimit --pid "$KPID" --nofile="$limit:${NOFILE#*:}"
    prlimit --nofile=4096:4096 setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$KEEPER_LOAD" "$@" >"$D/attack.out" 2>&1 &
    ap=$!
    sleep 1
    probe during
    wait "$ap" || true
    [ -z "$limit" ] || prlimit --pid "$KPID" --nofile="$NOFILE"
    sleep 0.5
    probe after
    echo "  attacker: $(tr '\n' ' ' <"$D/attack.out")"
}
attack "2000 connections held, open-files limit lowered to fds + 6" "$(($(fds) + 6))" \
    hold "$K" 2000 "$ATTACK_SECS"
attack "2000 connections held" "" hold "$K" 2000 "$ATTACK_SECS"
attack "40 clients sending gets they never read" "" unread "$K" soak.o 40 "$ATTACK_SECS"

# The last clients' hang-ups may still be queued: give the keeper's loop up
# to 2 s to close them before counting.
for _ in $(seq 200); do [ "$(fds)" -le "$FDS0" ] && break; sleep 0.01; done
FDS2=$(fds); RSS2=$(rss)
"$TCBPF" keeper status "$K" | head -1
echo "end: keeper pid $KPID  fds $FDS0 -> $FDS2  rss ${RSS0} kB -> ${RSS2} kB"
kill -TERM "$KPID"; wait "$KPID"; rc=$?; KPID=
echo "keeper exit status $rc; log lines: $(wc -l <"$D/keeper.log") (refused requests $(grep -c 'refused pid' "$D/keeper.log" || true), refused connections $(grep -c 'refused connection' "$D/keeper.log" || true), suppressed $(grep -c 'suppressed' "$D/keeper.log" || true))"
fail=0
[ "$FDS2" -le "$FDS0" ] || { echo "FAIL: the keeper's descriptor count grew ($FDS0 -> $FDS2)"; fail=1; }
[ "$own" -eq "$want" ] || { echo "FAIL: per-client counters lost $((want - own)) update(s)"; fail=1; }
[ "$added" -eq "$want" ] || { echo "FAIL: the 'map add' counter lost $((want - added)) update(s)"; fail=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: keeper exit status $rc"; fail=1; }
[ "$ATTACK_FAIL" -eq 0 ] || { echo "FAIL: root's list was refused or took a second or more during an attack"; fail=1; }
[ $fail -eq 0 ] && echo "PASS"
exit $fail

#!/usr/bin/env bash
# Soak of the hand-off and filter paths under hostile and repeated use
# (as root). Four phases, each checking that descriptor counts and memory
# stay flat and that nothing is left on the bpffs, in the namespace or in
# the socket directory:
#   1. hostile datagrams from another uid (nobody) at an importer while a
#      legitimate export must get through;
#   2. the same with the importer's stderr a pipe nobody reads;
#   3. exporters racing importers for the same path;
#   4. filter add … export / filter del cycles, every map of each cycle
#      gone from the kernel afterwards.
#
#   scripts/soak.sh          short form (scripts/test.sh and CI; ~5 s)
#   scripts/soak.sh long     long form, by hand (x100: 2,000 filter cycles, ~5 min)
#   scripts/soak.sh N        scale factor N
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/soak.sh: needs root (namespaces, bpffs, another uid)" >&2
    exit 2
fi
case "${1:-}" in
    "") scale=1 ;;
    long) scale=100 ;;
    *[!0-9]* | 0) echo "usage: scripts/soak.sh [long | N]" >&2; exit 2 ;;
    *) scale=$1 ;;
esac
target=${CARGO_TARGET_DIR:-target}
cargo build -q -p tcbpf-cli
cargo build -q -p tcbpf --example hostile_sender
T=$(realpath "$target/debug/tcbpf")
H=$(realpath "$target/debug/examples/hostile_sender")
OBJ=$(realpath bpf/verdict_legacy.o)

work=$(mktemp -d /tmp/tcbpf-soak.XXXXXX)
chmod 0711 "$work"
ns=tcbpf-soak-$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    umount -l "$work/fs" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/fs"
mount -t bpf bpf "$work/fs"
export TC_BPF_MNT=$work/fs
unset TC_BPF_UDS

fail() { echo "soak: FAIL: $*" >&2; exit 1; }
say() { echo "soak: $*"; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
wait_path() { # PATH: up to 10 s
    for _ in $(seq 1000); do [ -e "$1" ] && return 0; sleep 0.01; done
    fail "nothing bound $1"
}
wait_exit() { # PID SECONDS: the exit code, or fail when it still runs
    local i
    for i in $(seq $(($2 * 100))); do
        kill -0 "$1" 2>/dev/null || { wait "$1" && return 0 || return $?; }
        sleep 0.01
    done
    fail "process $1 still running after $2 s"
}
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }
gone() { # MAP_ID: gone from the kernel within 5 s
    for _ in $(seq 500); do
        "$T" map show id "$1" >/dev/null 2>&1 || return 0
        sleep 0.01
    done
    return 1
}

"$T" map create type hash key 4 value 8 entries 4 name soak_legit pin "$work/fs/legit" >/dev/null

# A flooded importer: the legitimate export gets through, the importer's
# descriptors and memory stay flat, its warnings stay few.
flooded_import() { # NAME STDERR-TARGET
    local sock=$work/$1.sock imp hostile fd0 rss0 fdmax=0 rssmax=0 i n
    "$T" -j exec bpf import "$sock" mode 0666 timeout 60 >"$work/$1.out" 2>"$2" &
    imp=$!
    pids+=("$imp")
    wait_path "$sock"
    fd0=$(fds "$imp")
    rss0=$(rss_kb "$imp")
    as_nobody "$H" "$sock" $((100000 * scale)) >"$work/$1.hostile" 2>/dev/null &
    hostile=$!
    pids+=("$hostile")
    for i in $(seq $((20 + 10 * scale))); do
        n=$(fds "$imp"); [ "$n" -gt "$fdmax" ] && fdmax=$n
        n=$(rss_kb "$imp"); [ "$n" -gt "$rssmax" ] && rssmax=$n
        sleep 0.01
    done
    kill -0 "$hostile" 2>/dev/null || fail "$1: the flood ended before the export (raise its count)"
    timeout 10 "$T" map export "$sock" pinned "$work/fs/legit" ||
        fail "$1: the legitimate export did not get through the flood"
    wait_exit "$imp" 10 || fail "$1: importer failed"
    wait "$hostile" 2>/dev/null || true
    grep -q '"num_maps":1' "$work/$1.out" || fail "$1: importer got $(cat "$work/$1.out")"
    [ ! -e "$sock" ] || fail "$1: socket left behind"
    # Up to three descriptors of one datagram in flight, at most 4 MB more.
    [ "$fdmax" -le $((fd0 + 3)) ] || fail "$1: importer fds grew from $fd0 to $fdmax"
    [ "$rssmax" -le $((rss0 + 4096)) ] || fail "$1: importer RSS grew from $rss0 to $rssmax kB"
    say "$1: $(cat "$work/$1.hostile") hostile datagrams before the importer left; fds $fd0 -> max $fdmax, RSS $rss0 -> max $rssmax kB; legit export delivered"
}

# 1. Hostile datagrams from another uid while a legitimate export must get through.
flooded_import hostile "$work/hostile.err"
lines=$(wc -l <"$work/hostile.err")
[ "$lines" -le 8 ] || fail "hostile: $lines warning lines (rate limit)"

# 2. The same with stderr a pipe nobody reads.
mkfifo "$work/errpipe"
sleep 600 <"$work/errpipe" &
pids+=("$!")
flooded_import unread "$work/errpipe"

# 3. Exporters racing importers for one path.
rounds=$((10 * scale))
delivered=0
for r in $(seq "$rounds"); do
    sock=$work/race.sock
    for e in 1 2; do
        (for _ in $(seq 300); do
            "$T" map export "$sock" pinned "$work/fs/legit" 2>/dev/null && exit 0
            sleep 0.005
        done; exit 1) &
        eval "exp$e=$!"
    done
    "$T" -j exec bpf import "$sock" timeout 10 >"$work/race.out" 2>"$work/race.err" ||
        fail "race $r: importer failed: $(cat "$work/race.err")"
    grep -q '"num_maps":1' "$work/race.out" || fail "race $r: importer got $(cat "$work/race.out")"
    # The exporter that lost may retry into nothing: stop it.
    kill "$exp1" "$exp2" 2>/dev/null || true
    wait "$exp1" "$exp2" 2>/dev/null || true
    [ ! -e "$sock" ] || fail "race $r: socket left behind"
    delivered=$((delivered + 1))
done
say "race: $delivered importers each took exactly one transfer from racing exporters, no socket left"

# 4. filter add … export / filter del cycles.
ip netns add "$ns"
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" link set v0 up
cycles=$((20 * scale))
pins_before=""
for c in $(seq "$cycles"); do
    sock=$work/filter.sock
    "$T" -j exec bpf import "$sock" timeout 10 >"$work/filter.out" 2>"$work/filter.err" &
    imp=$!
    wait_path "$sock"
    "$T" -n "$ns" filter add dev v0 ingress pref 1 bpf da obj "$OBJ" sec classifier export "$sock" ||
        fail "cycle $c: filter add"
    wait_exit "$imp" 10 || fail "cycle $c: importer: $(cat "$work/filter.err")"
    grep -q '"num_maps":2' "$work/filter.out" || fail "cycle $c: importer got $(cat "$work/filter.out")"
    "$T" -n "$ns" filter del dev v0 ingress pref 1 || fail "cycle $c: filter del"
    # The unpinned map of this cycle (blocked_ports) is gone with its filter.
    id=$(grep -o '"name":"blocked_ports"[^}]*"map_id":[0-9]*' "$work/filter.out" | grep -o '[0-9]*$')
    gone "$id" || fail "cycle $c: map $id still exists after filter del"
    pins=$(cd "$work/fs" && find . | sort | tr '\n' ' ')
    [ -z "$pins_before" ] && pins_before=$pins
    [ "$pins" = "$pins_before" ] || fail "cycle $c: pins changed: $pins_before -> $pins"
    [ ! -e "$sock" ] || fail "cycle $c: socket left behind"
done
left=$(tc -n "$ns" filter show dev v0 ingress)
[ -z "$left" ] || fail "filters left: $left"
say "filter: $cycles add/export/del cycles, every cycle's map freed, pins unchanged ($pins_before), no filter left"
say "all phases passed (scale $scale)"

#!/usr/bin/env bash
# Loader parity: each extern fixture of bpf/ (ext_*.o) loaded by tcbpf
# (`obj load`) and by `bpftool prog load` (libbpf), side by side; each
# program that loads is attached at the ingress of a veth in a throwaway
# namespace pair, fed 3 UDP datagrams, and what it computed is read back
# from its map `out` (the same words for both loaders). Prints a table.
#   scripts/parity-externs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "parity-externs.sh: loads programs and creates namespaces: run as root" >&2
    exit 2
fi
command -v tc >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
command -v bpftool >/dev/null || { apt-get update -qq && apt-get install -y -qq bpftool; }
cargo build --release -q -p tcbpf-cli --bin tcbpf --example udp_flood
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=$target/release/tcbpf
flood=$target/release/examples/udp_flood
a=tcbpf-pa-$$
b=tcbpf-pb-$$
fs=$(mktemp -d /tmp/tcbpf-parity-fs.XXXXXX)
cleanup() {
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    umount "$fs" 2>/dev/null || true
    rm -rf "$fs"
}
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip -n "$a" link add v0 type veth peer name v1 netns "$b"
ip -n "$a" addr add 10.79.0.1/24 dev v0
ip -n "$b" addr add 10.79.0.2/24 dev v1
ip -n "$a" link set v0 up
ip -n "$b" link set v1 up
tc -n "$b" qdisc add dev v1 clsact
mount -t bpf bpf "$fs"

# What each fixture's map `out` holds, as `map dump` words.
declare -A words=(
    [ext_kconfig]="key u32 value u64"
    [ext_dynptr]="key u32 value u64"
    [ext_iter]="key u64 value u64"
    [ext_weak_kfunc]="key u32 value u64"
    [ext_ksym]="key u32 value u64"
    [ext_ksym_typed]="key u32 value u64"
    [ext_conntrack]="key u32 value u64"
    [ext_kfunc_proto]="key u32 value u64"
)

# result PIN FIXTURE: attaches the pinned program, sends 3 datagrams, and
# prints its `out` map as "k=v k=v…".
result() {
    local pin=$1 fixture=$2 id
    tc -n "$b" filter replace dev v1 ingress pref 1 handle 1 bpf da pinned "$pin"
    ip netns exec "$a" "$flood" 10.79.0.2:4300 3 >/dev/null
    id=$(bpftool -j prog show pinned "$pin" | sed -n 's/.*"map_ids":\[\([0-9,]*\)\].*/\1/p' | tr ',' '\n' |
        while read -r m; do bpftool -j map show id "$m" | grep '"name":"out"' >/dev/null && echo "$m"; done)
    # shellcheck disable=SC2086
    "$bin" map dump id "$id" ${words[$fixture]} | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $4 }'
    tc -n "$b" filter del dev v1 ingress pref 1
}

printf '| %-18s | %-24s | %-24s | %s\n' fixture tcbpf bpftool "what the classifier computed (tcbpf / bpftool)"
printf '|%s|%s|%s|%s\n' "--------------------" "--------------------------" "--------------------------" "---"
for o in bpf/ext_*.o; do
    f=$(basename "$o" .o)
    ours=loaded theirs=loaded rt=- rb=-
    if ! err=$("$bin" obj load "$o" bpffs "$fs" pin "$fs/t_$f" 2>&1 >/dev/null); then
        ours="refused ($(echo "$err" | grep -o "extern ([a-z-]*) '[A-Za-z0-9_]*'\|failed to find the address[^.]*" | head -1))"
    else
        rt=$(result "$fs/t_$f" "$f")
    fi
    if ! err=$(bpftool prog load "$o" "$fs/b_$f" 2>&1); then
        theirs="refused ($(echo "$err" | grep -o "extern [a-z (]*)* *'[A-Za-z0-9_]*'\|failed to find the address[^.]*" | head -1))"
    else
        rb=$(result "$fs/b_$f" "$f")
    fi
    printf '| %-18s | %-24s | %-24s | %s / %s\n' "$f" "$ours" "$theirs" "$rt" "$rb"
done

#!/usr/bin/env bash
# Soak of the exporter's listener under hostile local clients (as root):
# the exporter runs in a namespace of its own under a low open-files limit
# (prlimit --nofile) with a map large enough for a body of several MB, and
# each attack is run for SECONDS against it:
#   slowloris   3,000 connections, each a request head sent 1 byte a second
#   pipeline    one connection sending 2,000 requests for /metrics, never reading
#   nonread     4 clients asking for /metrics and never reading the body
#   header      one header line without an end, up to 1 GiB
#   emfile      2,000 idle connections to an exporter allowed more
#               connections than it has descriptors: accept meets EMFILE
# Before, during and after each: the exporter's descriptors, threads, RSS
# and the latency of a normal scrape (curl). Fails when a scrape is not
# answered in full (its whole Content-Length) within 10 s, or threads
# exceed 4.
#
#   scripts/soak-exporter.sh                   ENTRIES=150000 NOFILE=128 SECONDS=5
#   scripts/soak-exporter.sh ENTRIES NOFILE SECONDS
#   EXPORTER=PATH scripts/soak-exporter.sh      another exporter binary
#   ATTACKS="pipeline header" scripts/soak-exporter.sh   only these attacks
#
# Needs root, curl and python3 (the attackers).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-150000}
NOFILE=${2:-128}
SECS=${3:-5}
if [ "$(id -u)" != 0 ]; then
    echo "soak-exporter.sh: needs root (maps, a namespace, a bpffs)" >&2
    exit 2
fi
cargo build --release -q -p tcbpf-cli -p tcbpf-exporter -p tcbpf --bin tcbpf --bin tcbpf-exporter --example map_raw_batch
T=${CARGO_TARGET_DIR:-$PWD/target}/release
# EXPORTER=PATH runs another build (e.g. an older one, for figures side by
# side); the emfile attack needs 'connections N'.
EXPORTER=${EXPORTER:-$T/tcbpf-exporter}
# ATTACKS="…" runs only these, in this order.
ATTACKS=${ATTACKS:-slowloris pipeline nonread header emfile}
WORK=$(mktemp -d /tmp/tcbpf-soak-exp.XXXXXX)
NS=tcbpf-soak-exp-$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    umount "$WORK/bpffs" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/bpffs"
mount -t bpf bpf "$WORK/bpffs"
ip netns add "$NS"
ip -n "$NS" link set lo up
MAP=$WORK/bpffs/soak
"$T/tcbpf" map create type hash key 4 value 8 entries "$N" name tcbpf_soak pin "$MAP" >/dev/null
"$T/examples/map_raw_batch" update "$MAP" "$N"
echo "cap 10000000" >"$WORK/full.conf"

cat >"$WORK/attack.py" <<'PY'
import socket, sys, time
mode, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
addr = ("127.0.0.1", port)
end = time.time() + secs
def conn():
    s = socket.socket()
    s.settimeout(2)
    s.connect(addr)
    return s
held = []
if mode in ("slowloris", "emfile"):
    want = 3000 if mode == "slowloris" else 2000
    for _ in range(want):
        try:
            s = conn()
            if mode == "slowloris":
                s.send(b"GET / HTTP/1.1\r\n")
            held.append(s)
        except OSError:
            pass
    while time.time() < end:
        if mode == "slowloris":
            for s in held:
                try:
                    s.send(b"X")
                except OSError:
                    pass
        time.sleep(1)
    print(f"{mode}: {len(held)} connections held")
elif mode == "pipeline":
    s = conn()
    s.settimeout(secs)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
    except OSError:
        pass
    held.append(s)
    time.sleep(max(0, end - time.time()))
    print("pipeline: 2000 requests sent, no answer read")
elif mode == "nonread":
    for _ in range(4):
        s = conn()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        held.append(s)
    time.sleep(max(0, end - time.time()))
    print("nonread: 4 clients, no body read")
elif mode == "header":
    s = conn()
    s.settimeout(2)
    sent = 0
    chunk = b"a" * (1 << 20)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nX-Long: ")
        while sent < (1 << 30) and time.time() < end:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError as e:
        pass
    answer = b""
    try:
        answer = s.recv(64)
    except OSError:
        pass
    print(f"header: {sent >> 20} MiB of one line taken before the exporter said {answer[:40]!r}")
PY

start_exporter() { # PORT EXTRA…
    local port=$1; shift
    ip netns exec "$NS" prlimit --nofile="$NOFILE:$NOFILE" "$EXPORTER" listen "127.0.0.1:$port" pinned "$MAP" config "$WORK/full.conf" "$@" 2>>"$WORK/exporter-$port.log" &
    PIDS+=($!)
    for _ in $(seq 100); do ip netns exec "$NS" curl -s -o /dev/null "http://127.0.0.1:$port/" && return; sleep 0.1; done
    echo "exporter on $port did not start" >&2; exit 1
}

FAILED=0
stats() { # WHEN PID PORT
    local when=$1 pid=$2 port=$3 fds threads rss out
    fds=$(ls "/proc/$pid/fd" | wc -l)
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    local rc=0
    out=$(ip netns exec "$NS" curl -s -o "$WORK/body" --max-time 10 -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/metrics") || rc=$?
    local code=${out%% *} secs=${out#* }
    # curl fails (18) on a body cut short of its Content-Length.
    [ "$rc" = 0 ] || code="$code(curl exit $rc)"
    local size
    size=$(stat -c %s "$WORK/body" 2>/dev/null || echo 0)
    printf "  %-7s fds %4s  threads %2s  RSS %6s KiB  scrape %s in %ss (%s bytes)\n" "$when" "$fds" "$threads" "$rss" "$code" "$secs" "$size"
    rm -f "$WORK/body"
    if [ "$code" != 200 ] || [ "$threads" -gt 4 ]; then FAILED=1; echo "  FAIL: $when" >&2; fi
}

attack() { # MODE PORT PID
    local mode=$1 port=$2 pid=$3
    echo "$mode:"
    stats before "$pid" "$port"
    ip netns exec "$NS" python3 "$WORK/attack.py" "$mode" "$port" "$SECS" >"$WORK/attack.out" &
    local apid=$!
    PIDS+=($apid)
    sleep 2
    stats during "$pid" "$port"
    wait "$apid" || true
    sed 's/^/  attacker: /' "$WORK/attack.out"
    sleep 1
    stats after "$pid" "$port"
}

start_exporter 9121
P1=${PIDS[-1]}
echo "tcbpf exporter under attack: $N series (~$(( N * 40 / 1000000 )) MB body), --nofile=$NOFILE, $SECS s per attack"
for mode in $ATTACKS; do
    [ "$mode" = emfile ] || attack "$mode" 9121 "$P1"
done
if [[ " $ATTACKS " == *" emfile "* ]]; then
    start_exporter 9122 connections 100000
    attack emfile 9122 "${PIDS[-1]}"
fi
echo "exporter logs:"
sed 's/^/  /' "$WORK"/exporter-*.log
[ "$FAILED" = 0 ] || { echo "soak-exporter: FAILED" >&2; exit 1; }
echo "soak-exporter: ok"

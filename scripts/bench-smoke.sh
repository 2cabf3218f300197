#!/usr/bin/env bash
# Every benchmark in its tiny form, so that none of them rots: runs each
# scripts/bench-*.sh (or the SCRIPTs named) with BENCH_SMOKE=1 under a time
# bound, prints each one's table, and fails when a script fails, hangs
# (killed by `timeout`), or its table lacks a row it declares or shows a
# figure that is not a number. How fast anything is does not matter here.
#
# A bench script joins by its name (scripts/bench-NAME.sh) and three things:
#   - with BENCH_SMOKE=1 it runs small (thousands of entries, a few runs)
#     but through every code path and every anchor (bpftool, tc, raw
#     loops, …) of the full run, and prints the same table;
#   - it declares the rows of that table in comment lines
#       # bench-smoke-row: EXTENDED-REGEX
#     where NUM stands for a decimal number and INT for a whole one; each
#     must match a line of its standard output;
#   - it builds through scripts/build-bench.sh, which this script runs
#     first, outside the time bound (whatever else a script builds counts
#     against its own bound: add it to build-bench.sh).
#
#   scripts/bench-smoke.sh [SCRIPT…]      (as root)
# Bounds: BENCH_SMOKE_TIMEOUT seconds per script (default 60),
# BENCH_SMOKE_BUDGET seconds for all of them together (default 180).
set -euo pipefail
named=()
for s in "$@"; do named+=("$(realpath -m -- "$s")"); done
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench-smoke.sh: the benchmarks load programs and create namespaces: run as root" >&2
    exit 2
fi
per=${BENCH_SMOKE_TIMEOUT:-60}
budget=${BENCH_SMOKE_BUDGET:-180}
if [ ${#named[@]} -gt 0 ]; then
    scripts=("${named[@]}")
else
    scripts=()
    for s in scripts/bench-*.sh; do
        [ "$s" = scripts/bench-smoke.sh ] || scripts+=("$PWD/$s")
    done
fi

# One release build for every script; each one's own call is then a no-op.
echo "bench-smoke: building (release)…" >&2
scripts/build-bench.sh static

num='[0-9]+(\.[0-9]+)?'
int='[0-9]+'
logs=$(mktemp -d /tmp/tcbpf-bench-smoke.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# check SCRIPT OUT: the table in OUT has every row SCRIPT declares and no
# figure that is not a number; prints what is wrong.
check() {
    local script=$1 out=$2 rows=0 bad=0 row pattern
    while IFS= read -r row; do
        rows=$((rows + 1))
        pattern=${row//NUM/$num}
        pattern=${pattern//INT/$int}
        if ! grep -Eq -- "$pattern" "$out"; then
            echo "  no line matches the declared row: $row"
            bad=1
        fi
    done < <(sed -n 's/^# bench-smoke-row: //p' "$script")
    if [ "$rows" = 0 ]; then
        echo "  declares no '# bench-smoke-row:' line"
        bad=1
    fi
    # awk's figures for 0/0 and x/0, and a sum over nothing.
    if grep -Eiq '(^|[^a-z])-?(nan|inf)([^a-z]|$)' "$out"; then
        echo "  a figure is not a number:"
        grep -Ei '(^|[^a-z])-?(nan|inf)([^a-z]|$)' "$out" | sed 's/^/    /'
        bad=1
    fi
    return $bad
}

passed=0
failed=0
start=$(date +%s)
for script in "${scripts[@]}"; do
    name=$(basename "$script")
    left=$((budget - ($(date +%s) - start)))
    bound=$((left < per ? left : per))
    if [ "$bound" -le 0 ]; then
        echo "== $name: not run, the budget of ${budget}s is spent"
        failed=$((failed + 1))
        continue
    fi
    t0=$(date +%s%N)
    rc=0
    BENCH_SMOKE=1 timeout -k 10 "$bound" "$script" >"$logs/$name.out" 2>"$logs/$name.err" || rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    echo "== $name (${secs}s)"
    sed 's/^/  | /' "$logs/$name.out"
    why=
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        why="hung: killed after ${bound}s"
    elif [ "$rc" != 0 ]; then
        why="exit status $rc"
    elif ! check "$script" "$logs/$name.out" >"$logs/$name.check"; then
        why="malformed table"
    fi
    if [ -n "$why" ]; then
        echo "FAIL $name: $why"
        cat "$logs/$name.check" 2>/dev/null || true
        echo "  last lines of its stderr:"
        tail -n 15 "$logs/$name.err" | sed 's/^/    /'
        failed=$((failed + 1))
    else
        echo "ok   $name"
        passed=$((passed + 1))
    fi
done
echo "bench-smoke: ${#scripts[@]} scripts in $(($(date +%s) - start))s"
echo "bench-smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Coverage-guided fuzzing of tcbpf's parsers with cargo-fuzz (libFuzzer,
# nightly toolchain): ELF objects, BTF, .BTF.ext, CO-RE relocation against
# a fixed target BTF, the hand-off datagram decoder, the DATA/TYPES word
# grammar and the BTF value decoder. Each target runs SECONDS (default 10)
# from its committed seeds in fuzz/corpus/TARGET; new inputs go to a
# scratch copy, so the committed corpus stays small. A crash stops the run
# with libFuzzer's report and the input under fuzz/artifacts/TARGET/
# (turn it into a regression test).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz (and the nightly toolchain) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
shift || true
case "$secs" in *[!0-9]* | "") echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
if ! rustup toolchain list | grep '^nightly' >/dev/null; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(elf_object btf btf_ext core_relocate handoff_datagram data_words btf_value typed_json)
cd fuzz
cargo +nightly fuzz build
scratch=$(mktemp -d /tmp/tcbpf-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t"
    log=$scratch/$t.log
    status=0
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t ${secs}s: ${execs:-?} executions (${rate:-?}/s), ${cov:-cov: ?} edges, ${ft:-ft: ?} features, corpus $(ls "$scratch/$t" | wc -l) new + $(ls "corpus/$t" | wc -l) seeds"
    if [ "$status" != 0 ]; then
        grep -E 'panicked|SUMMARY|ERROR|Test unit written' "$log" >&2 || tail -20 "$log" >&2
        echo "fuzz: $t FAILED (input under fuzz/artifacts/$t)" >&2
        exit 1
    fi
done
echo "fuzz: every target ran ${secs}s without a crash"

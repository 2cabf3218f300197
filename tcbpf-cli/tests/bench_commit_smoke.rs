//! `BENCH_SMOKE=1 scripts/bench-commit.sh`: the short form of the
//! `map commit` benchmark runs to its end and prints every figure (its own
//! sanity check requires the generation in force to hold every entry).

use std::path::Path;
use std::process::Command;

#[test]
fn bench_commit_smoke_prints_publish_and_swap_figures() {
    tcbpf_testkit::require_root!();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcbpf")).parent().unwrap();
    if !bin_dir.join("examples/commit_bench").is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "tcbpf", "--example", "commit_bench"])
            .status()
            .unwrap();
        assert!(st.success(), "build examples/commit_bench");
    }
    let out = Command::new("bash")
        .arg(tcbpf_testkit::repo().join("scripts/bench-commit.sh"))
        .env("BENCH_SMOKE", "1")
        .env("TCBPF_BIN_DIR", bin_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench-commit.sh failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "publish 10000 entries",
        "tcbpf map commit (parse, build, swap)",
        "tcbpf map load … replace (entry by entry)",
        "raw UPDATE_BATCH loop into a fresh map",
        "swap step (one update of the outer slot, 50 swaps",
        "new generation seen in the slot",
        "update returned (after the RCU grace period)",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    print!("{text}");
}

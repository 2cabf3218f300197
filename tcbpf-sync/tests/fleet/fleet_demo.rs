//! `scripts/fleet-demo.sh short`: a 3-member etcd cluster on loopback,
//! three hosts (namespaces, each its own classifier, maps and sync
//! process), latency and bulk convergence, and the fault cases (leader
//! killed during a stream, sync SIGKILLed and restarted, compaction past a
//! stopped node's revision, drift repaired on SIGHUP), each ending with
//! every host's maps compared to the policy. The script fails when one
//! differs; this test requires it to pass and to print every case.

use std::path::Path;
use std::process::Command;

#[test]
fn fleet_demo_short_converges_through_every_fault_case() {
    tcbpf_testkit::require_root!();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcbpf-sync"))
        .parent()
        .unwrap();
    if !bin_dir.join("tcbpf").is_file() {
        // `cargo test -p tcbpf-sync` alone does not build the tcbpf binary.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "tcbpf-cli"])
            .status()
            .unwrap();
        assert!(st.success(), "build tcbpf");
    }
    assert!(
        bin_dir.join("examples/fleet_probe").is_file(),
        "cargo test builds examples/fleet_probe"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("bash")
        .arg(repo.join("scripts/fleet-demo.sh"))
        .arg("short")
        .env("TCBPF_BIN_DIR", bin_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fleet-demo.sh short failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "udp: 5 datagrams to blocked port 5353 on host1, classifier dropped 5",
        "latency put→all 3 hosts over 50 puts: median",
        "bulk 5000 entries by one tcbpf sync put … from FILE",
        "check blocked_src: all 3 hosts equal the policy (5000 entries)",
        "stream: 60 puts all acknowledged",
        "host2 restarted (pid",
        "etcd answered compacted",
        "still holds the hand-made entry 7777",
        "drift_fixed 2 (7777 removed, 20000 restored)",
        "fleet-demo: OK",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    print!("{text}");
}

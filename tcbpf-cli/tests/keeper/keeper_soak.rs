//! The short form of `scripts/soak-keeper.sh`: attach/detach cycles from
//! clients that exit, are SIGKILLed mid-request or send garbage, then
//! clients at once incrementing counters; the keeper's descriptor count
//! must not grow, every hostile request is refused, no per-client update is
//! lost, and SIGTERM ends it with exit 0; then a local user's attacks
//! (connections held at the open-files limit and at the normal one,
//! gets never read) while root's `keeper list` must answer within a
//! second.

use std::process::Command;
use tcbpf_testkit::repo;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn keeper_load() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap();
    let bin = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("keeper_load");
    assert!(
        bin.exists(),
        "example keeper_load not built at {}",
        bin.display()
    );
    bin
}

#[test]
fn short_soak_keeps_the_keepers_descriptors_flat_and_loses_no_per_client_update() {
    tcbpf_testkit::require_root!();
    let out = Command::new(repo().join("scripts/soak-keeper.sh"))
        .args(["80", "8", "4", "3"])
        .env("TCBPF", TCBPF)
        .env("KEEPER_LOAD", keeper_load())
        .output()
        .expect("run scripts/soak-keeper.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("cycles: 80 (20 exited, 20 map references, 20 SIGKILLed, 20 hostile)"),
        "{text}"
    );
    assert!(
        text.contains("hostile burst: garbage 12 refused 10 abandoned 2 wrong 0"),
        "{text}"
    );
    assert!(text.contains("per-client keys: sum 32 (lost 0)"), "{text}");
    assert!(
        text.contains("shared counter by 'map add' (atomic in the kernel): 32 (lost 0)"),
        "{text}"
    );
    let end = text
        .lines()
        .find(|l| l.starts_with("end:"))
        .expect("end line");
    let fds: Vec<u32> = end
        .split("fds ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .take(2)
        .collect();
    assert!(fds[1] <= fds[0], "descriptors grew: {end}");
    assert!(text.contains("keeper exit status 0"), "{text}");
    // uid 65534's attacks: root answered during each one (the script
    // fails otherwise), and the keeper's descriptors came back.
    for attack in [
        "attack: 2000 connections held, open-files limit lowered to fds + 6",
        "attack: 2000 connections held",
        "attack: 40 clients sending gets they never read",
    ] {
        assert!(text.contains(attack), "{attack}\n{text}");
    }
    assert_eq!(text.matches("  during: fds").count(), 3, "{text}");
    assert!(text.trim_end().ends_with("PASS"), "{text}");
}

//! Writes survive an etcd leader election: a 3-member etcd on loopback
//! whose leader is SIGKILLed in the middle of a `sync commit`, and just
//! before a `sync put` and a `sync del`. The writes are retried until
//! `timeout` (they are idempotent) and succeed, whole.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::etcd::Etcd;
use support::{sync_ok, BIN};
use tcbpf_testkit::{s, TempDir};

/// Keys under `prefix` (etcd 3.4's etcdctl has no --count-only: the
/// range's `count` is the total whatever the limit; 0 is left out).
fn count(e: &Etcd, prefix: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&e.ctl(&[
        "get",
        prefix,
        "--prefix",
        "--keys-only",
        "--limit=1",
        "-w",
        "json",
    ]))
    .unwrap();
    v["count"].as_u64().unwrap_or(0)
}

#[test]
fn commit_put_and_del_complete_across_a_leader_kill() {
    let mut e = Etcd::cluster(3, None);
    let ep = e.endpoints();
    let dir = TempDir::new("elect");
    let p = "/t/elect";
    let n = 40_000u32;
    let file = dir.join("big.jsonl");
    let text: String = (0..n)
        .map(|k| format!("{{\"key\":{k},\"value\":1}}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();

    // The commit runs; the leader dies once its first entries are in.
    let commit = Command::new(BIN)
        .args([
            "-j",
            "commit",
            &ep,
            "prefix",
            p,
            "map",
            "m",
            "from",
            s(&file),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while count(&e, "/t/elect/gens/m/1/entries/") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the commit wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let leader = e.leader();
    e.members[leader].kill();
    let out = commit.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "commit across a leader kill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["generation"], 1);
    assert_eq!(
        count(&e, "/t/elect/gens/m/1/entries/"),
        u64::from(n),
        "every entry of the generation is in"
    );
    assert_eq!(
        e.ctl(&["get", "/t/elect/current/m", "--print-value-only"])
            .trim(),
        "1"
    );

    // The killed member back, then the new leader killed just before a
    // put and a del: both succeed on the survivors.
    e.members[leader].start();
    e.wait_ready();
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "m", "key", "1", "value", "1",
    ]);
    let leader = e.leader();
    e.members[leader].kill();
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "m", "key", "2", "value", "2",
    ]);
    e.members[leader].start();
    e.wait_ready();
    let leader = e.leader();
    e.members[leader].kill();
    sync_ok(&["del", &ep, "prefix", p, "map", "m", "key", "1"]);
    let left = e.ctl(&["get", "/t/elect/maps/m/", "--prefix", "--keys-only"]);
    assert_eq!(left.trim(), "/t/elect/maps/m/2");
}

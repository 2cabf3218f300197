//! Writes survive an etcd leader election: a 3-member etcd on loopback
//! whose leader is SIGKILLed in the middle of a `sync commit`, and just
//! before a `sync put` and a `sync del`. The writes are retried until
//! `timeout` (they are idempotent) and succeed, whole.

use crate::support;

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

/// `get` and `list` retry across a leader kill as `status` does: each
/// retry connects again, to the first endpoint that answers. The leader
/// is killed while a `list` of 20,000 entries (two pages) reads, and
/// right before a `get`, two rounds each: a retry on the first client,
/// whose channel could still lead to the dead member, failed with "tcp
/// connect error".
#[test]
fn get_and_list_answer_across_a_leader_kill() {
    let mut e = Etcd::cluster(3, None);
    let ep = e.endpoints();
    let dir = TempDir::new("elect-read");
    let p = "/t/elect-read";
    let n = 20_000u32;
    let file = dir.join("entries.jsonl");
    let text: String = (0..n)
        .map(|k| format!("{{\"key\":{k},\"value\":{}}}\n", k + 1))
        .collect();
    std::fs::write(&file, text).unwrap();
    sync_ok(&["put", &ep, "prefix", p, "map", "m", "from", s(&file)]);
    for round in 0..2 {
        let list = Command::new(BIN)
            .args(["-j", "list", &ep, "prefix", p, "map", "m"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + 40 * round));
        let leader = e.leader();
        e.members[leader].kill();
        let out = list.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: list across a leader kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed.as_array().map(Vec::len), Some(n as usize));
        let got = sync_ok(&["get", &ep, "prefix", p, "map", "m", "key", "7"]);
        assert_eq!(got.trim(), "8", "round {round}: get after a leader kill");
        e.members[leader].start();
        e.wait_ready();
        let leader = e.leader();
        e.members[leader].kill();
        let got = sync_ok(&["get", &ep, "prefix", p, "map", "m", "key", "9"]);
        assert_eq!(got.trim(), "10", "round {round}: get after a leader kill");
        e.members[leader].start();
        e.wait_ready();
    }
}

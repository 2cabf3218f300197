//! `tcbpf sync etcd` when things go wrong, against a real etcd and the
//! sync_block classifier's map: SIGKILL and restart, compaction past the
//! applied revision while the follower is cut off, drift repaired on
//! SIGHUP and by the periodic resync, a map write failure reported and
//! retried until the policy fits; values too large for one read and keys
//! that do not unescape rejected per key while the rest follows.

use crate::support;

use serde_json::Value;
use std::time::Duration;
use support::etcd::Etcd;
use support::host::{Host, SyncProc};
use support::sync_ok;
use tcbpf_testkit::{s, TempDir};

const LIMIT: Duration = Duration::from_secs(10);

fn put(ep: &str, p: &str, port: u16) -> i64 {
    let out = sync_ok(&[
        "-j",
        "put",
        ep,
        "prefix",
        p,
        "map",
        "blocked",
        "key",
        &port.to_string(),
        "value",
        "1",
    ]);
    serde_json::from_str::<Value>(&out).unwrap()["revision"]
        .as_i64()
        .unwrap()
}

fn del(ep: &str, p: &str, port: u16) {
    sync_ok(&[
        "del",
        ep,
        "prefix",
        p,
        "map",
        "blocked",
        "key",
        &port.to_string(),
    ]);
}

/// The node's report once `cond` holds (bounded).
fn report(ep: &str, p: &str, node: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let t0 = std::time::Instant::now();
    loop {
        let st: Value = serde_json::from_str(&sync_ok(&["-j", "status", ep, "prefix", p])).unwrap();
        if let Some(n) = st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
        {
            if cond(n) {
                return n.clone();
            }
            assert!(t0.elapsed() < LIMIT, "status of {node} never matched: {n}");
        }
        assert!(t0.elapsed() < LIMIT, "no status for {node}: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn follow(ep: &str, p: &str, host: &Host, node: &str, dir: &TempDir, extra: &[&str]) -> SyncProc {
    let pin = host.map_pin();
    let mut args = vec![
        "etcd",
        ep,
        "prefix",
        p,
        "pinned",
        s(&pin),
        "as",
        "blocked",
        "node",
        node,
        "status-ttl",
        "3",
    ];
    args.extend_from_slice(extra);
    SyncProc::start(
        &args,
        dir.join(format!("{node}-{}.log", tcbpf_testkit::next_id())),
    )
}

#[test]
fn sigkill_and_restart_converge_writing_only_what_changed() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let host = Host::new();
    let dir = TempDir::new("synckill");
    let p = "/t/kill";
    for port in 8000..8010 {
        put(&ep, p, port);
    }
    let mut sync = follow(&ep, p, &host, "k1", &dir, &[]);
    host.wait(LIMIT, "ten ports", |h| h.ports().len() == 10);
    sync.kill();
    put(&ep, p, 8010);
    put(&ep, p, 8011);
    put(&ep, p, 8012);
    del(&ep, p, 8000);
    del(&ep, p, 8001);
    let last = put(&ep, p, 8013);
    host.wait(Duration::from_millis(300), "nothing while stopped", |h| {
        h.ports().len() == 10
    });
    let _sync = follow(&ep, p, &host, "k1", &dir, &[]);
    let want: Vec<u16> = (8002..8014).collect();
    host.wait(LIMIT, "the policy after restart", |h| h.ports() == want);
    let n = report(&ep, p, "k1", |n| {
        n["revision"].as_i64() >= Some(last) && n["pid"] != sync_pid(&sync)
    });
    // Start-up diff-apply: 4 added, 2 removed, 8 left alone; nothing lost,
    // nothing written twice.
    assert_eq!(n["last_resync"]["why"], "start-up", "{n}");
    assert_eq!(n["last_resync"]["added"], 4, "{n}");
    assert_eq!(n["last_resync"]["removed"], 2, "{n}");
    assert_eq!(n["last_resync"]["unchanged"], 8, "{n}");
    assert_eq!(n["last_resync"]["changed"], 0, "{n}");
}

fn sync_pid(s: &SyncProc) -> Value {
    Value::from(s.child.as_ref().map_or(0, |c| c.id()))
}

#[test]
fn compaction_past_the_applied_revision_rereads_and_watches_again() {
    tcbpf_testkit::require_root!();
    let mut e = Etcd::start();
    let ep = e.endpoints();
    let host = Host::new();
    let dir = TempDir::new("synccompact");
    let p = "/t/compact";
    put(&ep, p, 9000);
    let sync = follow(&ep, p, &host, "c1", &dir, &[]);
    host.wait(LIMIT, "9000", |h| h.ports() == [9000]);
    report(&ep, p, "c1", |n| n["state"] == "following");
    // Cut the follower off: stop it, restart etcd (its connection dies),
    // change the policy, compact past its revision, let it go on.
    sync.signal(libc::SIGSTOP);
    e.members[0].kill();
    e.members[0].start();
    e.wait_ready();
    put(&ep, p, 9001);
    del(&ep, p, 9000);
    let last = put(&ep, p, 9002);
    e.compact_now();
    sync.signal(libc::SIGCONT);
    host.wait(LIMIT, "the policy after compaction", |h| {
        h.ports() == [9001, 9002]
    });
    let n = report(&ep, p, "c1", |n| {
        n["resyncs"] == 2 && n["revision"].as_i64() >= Some(last)
    });
    assert_eq!(n["last_resync"]["why"], "compaction", "{n}");
    assert!(
        n["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("compacted"),
        "{n}"
    );
    // And it follows again after the re-read.
    put(&ep, p, 9003);
    host.wait(LIMIT, "9003 after compaction", |h| h.blocks(9003));
}

#[test]
fn drift_is_repaired_on_sighup_and_by_the_periodic_resync() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let host = Host::new();
    let dir = TempDir::new("syncdrift");
    let p = "/t/drift";
    put(&ep, p, 9100);
    let sync = follow(&ep, p, &host, "d1", &dir, &[]);
    host.wait(LIMIT, "9100", |h| h.ports() == [9100]);
    report(&ep, p, "d1", |n| n["state"] == "following");
    // By hand, behind sync's back: the watch sees nothing in etcd.
    host.block_by_hand(9199);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(host.ports(), [9100, 9199], "drift stays until a resync");
    sync.signal(libc::SIGHUP);
    host.wait(LIMIT, "SIGHUP resync", |h| h.ports() == [9100]);
    let n = report(&ep, p, "d1", |n| n["drift_fixed"] == 1);
    assert_eq!(n["last_resync"]["why"], "SIGHUP", "{n}");
    drop(sync);

    let _sync = follow(&ep, p, &host, "d2", &dir, &["resync", "1"]);
    report(&ep, p, "d2", |n| n["state"] == "following");
    host.block_by_hand(9198);
    host.wait(Duration::from_secs(5), "periodic resync", |h| {
        h.ports() == [9100]
    });
    let n = report(&ep, p, "d2", |n| n["drift_fixed"].as_u64() >= Some(1));
    assert_eq!(n["last_resync"]["why"], "periodic resync", "{n}");
}

#[test]
fn a_map_write_failure_is_reported_and_retried_until_the_policy_fits() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("syncfull");
    let p = "/t/full";
    // A hash map of two entries (no BTF: keys and values as plain integers).
    let name = format!("sf{}", tcbpf_testkit::next_id());
    let map = tcbpf_testkit::hash_map(&name, 2, 1, 2);
    let id = tcbpf::sys::info::map_info(&map).unwrap().id.to_string();
    let _sync = SyncProc::start(
        &[
            "etcd",
            &ep,
            "prefix",
            p,
            "id",
            &id,
            "as",
            "blocked",
            "node",
            "f1",
            "status-ttl",
            "3",
        ],
        dir.join("f1.log"),
    );
    report(&ep, p, "f1", |n| n["state"] == "following");
    put(&ep, p, 1);
    put(&ep, p, 2);
    let third = put(&ep, p, 3);
    let n = report(&ep, p, "f1", |n| {
        n["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("E2BIG") || m.contains("full") || m.contains("No space"))
    });
    let msg = n["last_error"]["message"].as_str().unwrap();
    assert!(msg.contains("map blocked"), "{msg}");
    // While the write is retried the node does not claim to follow.
    assert_eq!(n["state"], "retrying", "{n}");
    // A failed retry (a full re-read) keeps it so.
    let n = report(&ep, p, "f1", |n| {
        n["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("resync (failed write)"))
    });
    assert_eq!(n["state"], "retrying", "still failing: {n}");
    assert!(
        n["revision"].as_i64().unwrap() < third,
        "the failed revision is not reported applied: {n}"
    );
    // Make room: the retry (a full re-read and diff-apply) then fits.
    del(&ep, p, 1);
    let n = report(&ep, p, "f1", |n| {
        n["maps"]["blocked"]["entries"] == 2 && n["revision"].as_i64() > Some(third)
    });
    assert_eq!(n["last_resync"]["why"], "failed write", "{n}");
    assert_eq!(n["state"], "following", "{n}");
    let keys: Vec<Vec<u8>> = tcbpf::maps::read_all(&map)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut ports: Vec<u16> = keys
        .iter()
        .map(|k| u16::from_ne_bytes([k[0], k[1]]))
        .collect();
    ports.sort();
    assert_eq!(ports, [2, 3]);
}

#[test]
fn a_key_spelled_two_ways_ends_with_the_value_written_last() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("syncspell");
    let p = "/t/spell";
    let name = format!("sp{}", tcbpf_testkit::next_id());
    let map = tcbpf_testkit::hash_map(&name, 2, 1, 4);
    let id = tcbpf::sys::info::map_info(&map).unwrap().id.to_string();
    // 7001 and [89,27] (its bytes) are one u16 key; 7001 is written last
    // but sorts first among the etcd keys.
    let bytes = format!("{:?}", 7001u16.to_ne_bytes()).replace(' ', "");
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "m", "key", &bytes, "value", "1",
    ]);
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "m", "key", "7001", "value", "2",
    ]);
    let _sync = SyncProc::start(
        &[
            "etcd",
            &ep,
            "prefix",
            p,
            "id",
            &id,
            "as",
            "m",
            "node",
            "s1",
            "status-ttl",
            "3",
        ],
        dir.join("s1.log"),
    );
    let n = report(&ep, p, "s1", |n| n["state"] == "following");
    assert_eq!(n["maps"]["m"]["rejected"], 0, "{n}");
    let mut v = [0u8; 1];
    tcbpf::sys::map::lookup(&map, &7001u16.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(v[0], 2, "the later write wins at start-up as in the stream");
    assert_eq!(tcbpf::maps::read_all(&map).unwrap().len(), 1);
}

#[test]
fn sigterm_during_the_start_up_apply_finishes_it_then_exits_0() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("syncterm");
    let p = "/t/term";
    let n = 30_000u32;
    let lines: String = (0..n)
        .map(|i| format!("{{\"key\":{i},\"value\":1}}\n"))
        .collect();
    std::fs::write(dir.join("policy"), lines).unwrap();
    sync_ok(&[
        "put",
        &ep,
        "prefix",
        p,
        "map",
        "m",
        "from",
        s(&dir.join("policy")),
    ]);
    let name = format!("tm{}", tcbpf_testkit::next_id());
    let map = tcbpf_testkit::hash_map(&name, 4, 1, 65536);
    let id = tcbpf::sys::info::map_info(&map).unwrap().id.to_string();
    let mut sync = SyncProc::start(
        &[
            "etcd",
            &ep,
            "prefix",
            p,
            "id",
            &id,
            "as",
            "m",
            "node",
            "t1",
            "status-ttl",
            "3",
        ],
        dir.join("t1.log"),
    );
    // The first report ("starting") is written once the signal handlers
    // are in place; the start-up read and apply of 30,000 entries follow.
    report(&ep, p, "t1", |_| true);
    let code = sync.terminate(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", sync.log_text());
    // Whatever it was doing, the apply it began was finished: all or none.
    let held = tcbpf::maps::read_all(&map).unwrap().len();
    eprintln!("held {held} of {n} after SIGTERM");
    assert!(
        held == n as usize || held == 0,
        "{held} of {n} entries: a half-applied policy"
    );
}

/// `etcdctl put KEY` with the value read from `value` (a file): raw key
/// bytes and values no command line can carry.
fn etcdctl_put(ep: &str, key: &[u8], value: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(ep)
        .arg("put")
        .arg(std::ffi::OsStr::from_bytes(key))
        .stdin(std::fs::File::open(value).unwrap())
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn large_values_and_bad_keys_are_rejected_per_key_and_the_rest_follows_also_after_a_restart() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let host = Host::new();
    let dir = TempDir::new("syncbig");
    let p = "/t/big";
    for port in 9000..9005 {
        put(&ep, p, port);
    }
    // Fourteen values of 1.4 MB (within etcd's 1.5 MiB request limit; three
    // were enough to pass gRPC's 4 MiB default in one read): 19.6 MB in
    // all, more than one read may take (16 MiB: the page shrinks), each
    // over the follower's 1 MiB bound.
    let big = dir.join("big");
    let mut text = b"1".to_vec();
    text.resize(1_400_000, b' ');
    std::fs::write(&big, &text).unwrap();
    for port in 7001..7015u16 {
        etcdctl_put(&ep, format!("{p}/maps/blocked/{port}").as_bytes(), &big);
    }
    // Keys that do not unescape: a bad %-escape, bytes that are not UTF-8.
    let one = dir.join("one");
    std::fs::write(&one, "1").unwrap();
    etcdctl_put(&ep, format!("{p}/maps/blocked/%zz").as_bytes(), &one);
    let mut raw = format!("{p}/maps/blocked/").into_bytes();
    raw.extend_from_slice(b"\xff\xfe");
    etcdctl_put(&ep, &raw, &one);

    let mut sync = follow(&ep, p, &host, "b1", &dir, &[]);
    let want: Vec<u16> = (9000..9005).collect();
    host.wait(LIMIT, "the small entries", |h| h.ports() == want);
    let n = report(&ep, p, "b1", |n| n["state"] == "following");
    let m = &n["maps"]["blocked"];
    assert_eq!(m["rejected"], 16, "fourteen values, two keys: {n}");
    assert_eq!(m["entries"], 5, "{n}");
    assert_eq!(n["last_resync"]["why"], "start-up", "{n}");

    // Watched: a large value and a bad key are rejected, the rest applies.
    etcdctl_put(&ep, format!("{p}/maps/blocked/7100").as_bytes(), &big);
    etcdctl_put(&ep, format!("{p}/maps/blocked/%4").as_bytes(), &one);
    let last = put(&ep, p, 9005);
    host.wait(LIMIT, "9005", |h| h.blocks(9005));
    let n = report(&ep, p, "b1", |n| n["revision"].as_i64() >= Some(last));
    assert_eq!(n["maps"]["blocked"]["rejected"], 18, "{n}");
    assert!(!host.blocks(7100), "a rejected value is not applied");

    // A restarted follower starts and applies the policy.
    sync.kill();
    del(&ep, p, 9000);
    let again = follow(&ep, p, &host, "b1", &dir, &[]);
    let want: Vec<u16> = (9001..9006).collect();
    host.wait(LIMIT, "the policy after restart", |h| h.ports() == want);
    let n = report(&ep, p, "b1", |n| {
        n["state"] == "following" && n["pid"] == sync_pid(&again)
    });
    let m = &n["maps"]["blocked"];
    assert_eq!(m["rejected"], 18, "fifteen values, three keys: {n}");
    let last = m["last_rejected"].as_str().unwrap();
    assert!(
        last.contains("over the bound of 1048576 bytes")
            || last.contains("%-escape")
            || last.contains("UTF-8"),
        "{last}"
    );
}

#[test]
fn a_value_too_large_to_read_alone_is_rejected_by_its_key_and_the_rest_follows() {
    tcbpf_testkit::require_root!();
    // An etcd that takes requests of 20 MiB: one value of 17 MiB passes
    // the follower's 16 MiB read limit by itself.
    let e = Etcd::start_with(&["--max-request-bytes", "20971520"]);
    let ep = e.endpoints();
    let host = Host::new();
    let dir = TempDir::new("synchuge");
    let p = "/t/huge";
    put(&ep, p, 9000);
    let line = format!("{{\"key\":7000,\"value\":\"{}\"}}\n", "a".repeat(17 << 20));
    std::fs::write(dir.join("huge"), line).unwrap();
    sync_ok(&[
        "put",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        s(&dir.join("huge")),
    ]);
    put(&ep, p, 9001);
    let _sync = follow(&ep, p, &host, "h1", &dir, &[]);
    host.wait(LIMIT, "9000 and 9001", |h| h.ports() == [9000, 9001]);
    let n = report(&ep, p, "h1", |n| n["state"] == "following");
    let m = &n["maps"]["blocked"];
    assert_eq!(m["rejected"], 1, "{n}");
    assert_eq!(
        m["last_rejected"],
        "key 7000: value too large to read (over 16777216 bytes; the bound is 1048576 bytes)",
        "{n}"
    );
}

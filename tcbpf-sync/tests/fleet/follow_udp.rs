//! `tcbpf sync etcd` for real: a real etcd, the sync_block classifier on a
//! veth pair between namespaces, and the sync process following the policy
//! into its map. A `put` of a blocked port makes real UDP to it dropped
//! within a bounded time; a `del` lets it through again. Start-up diff-apply
//! removes what the policy lacks; SIGTERM exits cleanly and revokes the
//! node's status.

use crate::support;

use serde_json::Value;
use std::time::Duration;
use support::etcd::Etcd;
use support::host::{Host, SyncProc};
use support::sync_ok;
use tcbpf_testkit::s;

const LIMIT: Duration = Duration::from_secs(5);

fn status(ep: &str, prefix: &str) -> Value {
    serde_json::from_str(&sync_ok(&["-j", "status", ep, "prefix", prefix])).unwrap()
}

fn node<'a>(st: &'a Value, name: &str) -> Option<&'a Value> {
    st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == name)
}

#[test]
fn put_drops_real_udp_to_the_port_and_del_lets_it_through() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let host = Host::new();
    let p = "/t/udp";
    // Policy before sync starts, and an entry in the map the policy lacks.
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "blocked", "key", "7001", "value", "1",
    ]);
    host.block_by_hand(7009);
    let dir = tcbpf_testkit::TempDir::new("syncudp");
    let pin = host.map_pin();
    let mut sync = SyncProc::start(
        &[
            "etcd",
            &ep,
            "prefix",
            p,
            "pinned",
            s(&pin),
            "as",
            "blocked",
            "node",
            "n1",
            "status-ttl",
            "3",
        ],
        dir.join("sync.log"),
    );
    host.wait(LIMIT, "start-up diff-apply", |h| h.ports() == [7001]);
    assert_eq!(
        host.pair.send_udp(7001, 3),
        0,
        "7001 is blocked from the start"
    );
    assert_eq!(host.pair.send_udp(7002, 3), 3, "7002 passes");

    let dropped = host.dropped();
    sync_ok(&[
        "put", &ep, "prefix", p, "map", "blocked", "key", "7002", "value", "1",
    ]);
    let took = host.wait(LIMIT, "put 7002 in the map", |h| h.blocks(7002));
    eprintln!("put → map: {took:?}");
    assert_eq!(
        host.pair.send_udp(7002, 5),
        0,
        "7002 is dropped after the put"
    );
    assert_eq!(host.dropped(), dropped + 5);

    sync_ok(&["del", &ep, "prefix", p, "map", "blocked", "key", "7002"]);
    host.wait(LIMIT, "del 7002 from the map", |h| !h.blocks(7002));
    assert_eq!(host.pair.send_udp(7002, 5), 5, "7002 passes after the del");
    assert_eq!(host.ports(), [7001]);

    // A policy entry that does not fit the map's key type: `sync put`
    // refuses it (the follower published its types), naming it.
    let err = support::sync_fails(
        2,
        &[
            "put", &ep, "prefix", p, "map", "blocked", "key", "70000", "value", "1",
        ],
    );
    assert!(err.contains("no follower can apply key 70000"), "{err}");
    // Written behind the writer's back, it is reported by the follower,
    // not applied, and does not stop the others.
    e.ctl(&["put", &format!("{p}/maps/blocked/70000"), "1"]);
    let put: Value = serde_json::from_str(&sync_ok(&[
        "-j", "put", &ep, "prefix", p, "map", "blocked", "key", "7003", "value", "1",
    ]))
    .unwrap();
    let rev = put["revision"].as_i64().unwrap();
    host.wait(LIMIT, "7003 after a bad key", |h| h.blocks(7003));

    // The node's status: revision, entries, the rejected key.
    let mut st = status(&ep, p);
    for _ in 0..100 {
        if node(&st, "n1").is_some_and(|n| n["revision"].as_i64() >= Some(rev)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        st = status(&ep, p);
    }
    let n = node(&st, "n1").unwrap_or_else(|| panic!("node n1 in {st}"));
    let m = &n["maps"]["blocked"];
    assert_eq!(m["entries"], 2, "{st}");
    assert_eq!(m["rejected"], 1, "{st}");
    assert!(
        m["last_rejected"]
            .as_str()
            .unwrap()
            .starts_with("key 70000: "),
        "{st}"
    );
    assert_eq!(n["pending"], 0, "{st}");
    assert_eq!(n["state"], "following");
    let text = sync_ok(&["status", &ep, "prefix", p]);
    assert!(text.contains("node n1 following pid "), "{text}");
    assert!(text.contains(" last_resync start-up@"), "{text}");
    assert!(text.contains("  map blocked id "), "{text}");

    // SIGTERM: exit 0, and the status goes with the lease.
    assert_eq!(
        sync.terminate(Duration::from_secs(5)),
        Some(0),
        "{}",
        sync.log_text()
    );
    let st = status(&ep, p);
    assert!(node(&st, "n1").is_none(), "status revoked on exit: {st}");
}

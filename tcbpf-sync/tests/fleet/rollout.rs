//! Staged rollout of a generation, against a real etcd and three
//! followers with maps of their own: a canary whose gate fails (it
//! refuses the generation) goes back to the generation published and the
//! other nodes never see the new one; a passing gate promotes to every
//! node; `rollback` publishes the generation before, skipping the one
//! rolled back; a gate on a health figure (a drop counter's rate, real
//! traffic) rolls back a canary whose drops rise.

use crate::support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::etcd::Etcd;
use support::host::{Host, SyncProc};
use support::{sync, sync_ok, BIN};
use tcbpf::load::{load_file, LoadedObject};
use tcbpf_testkit::{fixture, s, Bpffs, TempDir};

struct Node {
    child: Child,
    obj: LoadedObject,
    _fs: Bpffs,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn ports(&self) -> BTreeSet<u16> {
        let fd = &self.obj.map("sync_blocked").unwrap().fd;
        tcbpf::maps::read_all(fd)
            .unwrap()
            .into_iter()
            .map(|(k, _)| u16::from_ne_bytes([k[0], k[1]]))
            .collect()
    }
}

fn node(ep: &str, p: &str, name: &str, dir: &TempDir) -> Node {
    let fs = Bpffs::new();
    let obj = load_file(&fixture("sync_block.o"), &fs.options()).unwrap();
    let pin = fs.join("tc/globals/sync_blocked");
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(BIN)
        .args(["etcd", ep, "prefix", p, "pinned", s(&pin), "as", "blocked"])
        .args(["node", name, "status-ttl", "3"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Node {
        child,
        obj,
        _fs: fs,
    }
}

/// Each node's acknowledgement of `blocked`, once all `n` report one.
fn acks(ep: &str, p: &str, n: usize, ok: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    let t0 = Instant::now();
    loop {
        let st: Value = serde_json::from_str(&sync_ok(&["-j", "status", ep, "prefix", p])).unwrap();
        let acks: Vec<(String, Value)> = st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["node"].as_str().unwrap().to_string(),
                    n["maps"]["blocked"]["generation"].clone(),
                )
            })
            .collect();
        if acks.len() == n && acks.iter().all(|(_, a)| ok(a)) {
            return acks;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {st:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn file(dir: &TempDir, name: &str, ports: &[u32]) -> String {
    let path = dir.join(name);
    let text: String = ports
        .iter()
        .map(|p| format!("{{\"key\":{p},\"value\":1}}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    s(&path).to_string()
}

#[test]
fn a_failed_gate_rolls_the_canary_back_a_passing_one_promotes_and_rollback_skips_the_bad_generation(
) {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("rollout");
    let p = "/t/rollout";
    let nodes: Vec<Node> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| node(&ep, p, n, &dir))
        .collect();
    let one: Vec<u32> = (1000..1100).collect();
    sync_ok(&[
        "commit",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        &file(&dir, "1", &one),
    ]);
    acks(&ep, p, 3, |a| a["in_force"] == 1);

    // Generation 2 holds a key the u16 maps refuse: staged past the
    // writer's check by a node with wider keys, it fails the canary's gate.
    e.ctl(&[
        "put",
        "/t/rollout/types/blocked/wide",
        r#"{"key_size":4,"value_size":1,"cpus":null,"key_type":null,"value_type":null,"btf":null}"#,
    ]);
    let out = sync_ok(&[
        "commit",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        &file(&dir, "2", &[5000, 70000]),
        "stage",
    ]);
    assert!(out.contains("generation 2 staged"), "{out}");
    e.ctl(&["del", "/t/rollout/types/blocked/wide"]);
    let o = sync(&[
        "rollout", &ep, "prefix", p, "map", "blocked", "gen", "2", "nodes", "r1", "wait", "5",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("gate failed (node r1: generation 2 refused")
            && err.contains("back on generation 1 in"),
        "{err}"
    );
    let after = acks(&ep, p, 3, |a| a["in_force"] == 1);
    for (n, a) in &after {
        // Only the canary ever saw generation 2.
        assert_eq!(a["generation"], 1, "{n}: {a}");
        assert_eq!(a["result"], "ok", "{n}: {a}");
    }
    for n in &nodes {
        assert_eq!(n.ports(), one.iter().map(|&p| p as u16).collect());
    }
    let state: Value = serde_json::from_str(
        e.ctl(&["get", "/t/rollout/rollout/blocked", "--print-value-only"])
            .trim(),
    )
    .unwrap();
    assert_eq!(state["state"], "rolled back", "{state}");
    assert_eq!(state["canaries"], serde_json::json!(["r1"]));
    let text = sync_ok(&["status", &ep, "prefix", p]);
    assert!(
        text.contains("map blocked rollout of generation 2 from 1: rolled back (canaries r1): node r1: generation 2 refused"),
        "{text}"
    );
    assert!(e
        .ctl(&[
            "get",
            "/t/rollout/current/blocked/",
            "--prefix",
            "--keys-only"
        ])
        .trim()
        .is_empty());
    assert_eq!(
        e.ctl(&["get", "/t/rollout/current/blocked", "--print-value-only"])
            .trim(),
        "1"
    );

    // Generation 3 passes the gate on its canary and reaches every node.
    let three: Vec<u32> = (3000..3050).collect();
    sync_ok(&[
        "commit",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        &file(&dir, "3", &three),
        "stage",
    ]);
    let st: Value = serde_json::from_str(&sync_ok(&[
        "-j", "rollout", &ep, "prefix", p, "map", "blocked", "gen", "3", "canary", "34%", "wait",
        "10",
    ]))
    .unwrap();
    assert_eq!(st["state"], "promoted", "{st}");
    assert_eq!(
        st["canaries"].as_array().unwrap().len(),
        2,
        "34% of 3 is 2 nodes: {st}"
    );
    acks(&ep, p, 3, |a| a["in_force"] == 3 && a["result"] == "ok");
    for n in &nodes {
        assert_eq!(n.ports(), three.iter().map(|&p| p as u16).collect());
    }

    // rollback: generation 1, not the rolled-back 2.
    let out = sync_ok(&["rollback", &ep, "prefix", p, "map", "blocked"]);
    assert_eq!(out.trim(), "map blocked generation 1 published (was 3)");
    acks(&ep, p, 3, |a| a["in_force"] == 1);
    for n in &nodes {
        assert_eq!(n.ports(), one.iter().map(|&p| p as u16).collect());
    }
}

#[test]
fn a_rollout_completes_across_an_etcd_leader_kill() {
    tcbpf_testkit::require_root!();
    let mut e = Etcd::cluster(3, None);
    let ep = e.endpoints();
    let dir = TempDir::new("rollout-elect");
    let p = "/t/rollout-elect";
    let nodes: Vec<Node> = ["e1", "e2", "e3"]
        .iter()
        .map(|n| node(&ep, p, n, &dir))
        .collect();
    let one: Vec<u32> = (1000..1100).collect();
    sync_ok(&[
        "commit",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        &file(&dir, "1", &one),
    ]);
    acks(&ep, p, 3, |a| a["in_force"] == 1);
    let two: Vec<u32> = (2000..2100).collect();
    sync_ok(&[
        "commit",
        &ep,
        "prefix",
        p,
        "map",
        "blocked",
        "from",
        &file(&dir, "2", &two),
        "stage",
    ]);
    // The rollout starts; the leader dies while its canary applies.
    let rollout = Command::new(BIN)
        .args([
            "-j", "rollout", &ep, "prefix", p, "map", "blocked", "gen", "2",
        ])
        .args(["nodes", "e1", "wait", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let leader = e.leader();
    e.members[leader].kill();
    let out = rollout.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rollout across a leader kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["state"], "promoted", "{st}");
    acks(&ep, p, 3, |a| a["in_force"] == 2 && a["result"] == "ok");
    for n in &nodes {
        assert_eq!(n.ports(), two.iter().map(|&p| p as u16).collect());
    }
}

/// A checker: UDP to `port` on a host's `v1` every 5 ms, from the
/// host's other namespace, until dropped (bounded: 3 minutes).
struct Checker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Checker {
    fn start(host: &Host, port: u16) -> Checker {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (ns, flag) = (host.pair.a.name.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            tcbpf::tc::netns::enter(&ns).expect("enter the checker's netns");
            let s = std::net::UdpSocket::bind((tcbpf_testkit::ADDR_A, 0)).unwrap();
            let to = format!("{}:{port}", tcbpf_testkit::ADDR_B);
            let t0 = Instant::now();
            let mut sent = 0;
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(180) {
                let _ = s.send_to(b"check", &to);
                sent += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            sent
        });
        Checker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The gate on a health figure, with real traffic: three hosts (a veth
/// pair each, the sync_block classifier, its drop counter published as
/// the figure `drops`) and a checker sending UDP to port 7000 on each.
/// Generation 2 blocks the checker's port: the canary's drop rate rises,
/// the gate fails naming node, figure and value, the canary goes back to
/// generation 1 and the other hosts never drop a packet of the checker.
/// Generation 3, harmless, passes a 2 s window gated on the classifier's
/// run count (the figure `runs`) and reaches every host.
#[test]
fn a_health_gate_rolls_back_a_canary_whose_drop_rate_rises_and_promotes_a_harmless_generation() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("gate");
    let p = "/t/gate";
    let hosts: Vec<Host> = (0..3).map(|_| Host::new()).collect();
    let _followers: Vec<SyncProc> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (map, stats) = (h.map_pin(), h.fs.join("tc/globals/sync_udp_stats"));
            let prog = h.fs.join("prog");
            SyncProc::start(
                &[
                    "etcd",
                    &ep,
                    "prefix",
                    p,
                    "pinned",
                    s(&map),
                    "as",
                    "blocked",
                    "node",
                    &format!("g{}", i + 1),
                    "status-ttl",
                    "3",
                    "health",
                    "drops",
                    "pinned",
                    s(&stats),
                    "key",
                    "1",
                    "health",
                    "runs",
                    "prog",
                    "pinned",
                    s(&prog),
                ],
                dir.join(format!("g{}.log", i + 1)),
            )
        })
        .collect();
    // A figure that cannot be read is refused at start-up (exit 2).
    let (map, stats) = (
        hosts[0].map_pin(),
        hosts[0].fs.join("tc/globals/sync_udp_stats"),
    );
    for (bad, why) in [
        (
            &["key", "1", "member", "packets"][..],
            "has no integer member 'packets'",
        ),
        (&["key", "\"one\""], "health drops: map pinned"),
    ] {
        let mut args = vec![
            "etcd",
            &ep,
            "prefix",
            p,
            "pinned",
            s(&map),
            "health",
            "drops",
            "pinned",
            s(&stats),
        ];
        args.extend_from_slice(bad);
        let o = sync(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    let _checkers: Vec<Checker> = hosts.iter().map(|h| Checker::start(h, 7000)).collect();
    let commit = |name: &str, ports: &[u32], stage: bool| {
        let f = file(&dir, name, ports);
        let mut args = vec!["commit", &ep, "prefix", p, "map", "blocked", "from", &f];
        if stage {
            args.push("stage");
        }
        sync_ok(&args);
    };
    commit("1", &[100], false);
    acks(&ep, p, 3, |a| a["in_force"] == 1);
    // Every node publishes its figure: the checker's packets pass.
    let st: Value = serde_json::from_str(&sync_ok(&["-j", "status", &ep, "prefix", p])).unwrap();
    for n in st["nodes"].as_array().unwrap() {
        assert!(n["health"]["drops"]["value"].is_i64(), "{n}");
        assert!(n["health"]["runs"]["value"].is_i64(), "{n}");
    }
    let text = sync_ok(&["status", &ep, "prefix", p]);
    assert!(
        text.contains("  health drops value 0 rate ") && text.contains("  health runs value "),
        "{text}"
    );

    // Generation 2 blocks the checker's port.
    commit("2", &[100, 7000], true);
    let t0 = Instant::now();
    let o = sync(&[
        "rollout", &ep, "prefix", p, "map", "blocked", "gen", "2", "nodes", "g1", "gate", "drops",
        "rate", "<", "50", "window", "2", "wait", "10",
    ]);
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("gate failed (node g1: health drops rate ")
            && err.contains("/s, not < 50)")
            && err.contains("canaries g1 back on generation 1 in"),
        "{err}"
    );
    let state: Value = serde_json::from_str(
        e.ctl(&["get", "/t/gate/rollout/blocked", "--print-value-only"])
            .trim(),
    )
    .unwrap();
    assert_eq!(state["state"], "rolled back", "{state}");
    assert_eq!(state["gate"], "drops rate < 50 window 2", "{state}");
    let back_ms = state["rolled_back_in_ns"].as_u64().unwrap() / 1_000_000;
    eprintln!(
        "canary failure: rollout began → exit {took:?}; gate failed → canary back on G-1: {back_ms} ms"
    );
    assert!(took < Duration::from_secs(10), "target < 10 s: {took:?}");
    let after = acks(&ep, p, 3, |a| a["in_force"] == 1);
    for (n, a) in &after {
        if n != "g1" {
            assert_eq!(a["generation"], 1, "{n} never saw generation 2: {a}");
        }
    }
    assert!(hosts[0].dropped() > 0, "the canary dropped the checker");
    for h in &hosts[1..] {
        assert_eq!(h.dropped(), 0, "the other hosts never blocked the checker");
    }
    // Back on generation 1, the canary drops no more.
    let d = hosts[0].dropped();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hosts[0].dropped(), d, "the canary still drops");
    assert!(!hosts[0].blocks(7000));

    // Generation 3 is harmless: the gate (the classifier's run count keeps
    // rising with the checker's packets) holds for its window, promoted.
    commit("3", &[100, 200], true);
    let t0 = Instant::now();
    let st: Value = serde_json::from_str(&sync_ok(&[
        "-j", "rollout", &ep, "prefix", p, "map", "blocked", "gen", "3", "nodes", "g1", "gate",
        "runs", "rate", ">", "50", "window", "2",
    ]))
    .unwrap();
    assert_eq!(st["state"], "promoted", "{st}");
    assert_eq!(st["gate"], "runs rate > 50 window 2", "{st}");
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "the window was waited out"
    );
    acks(&ep, p, 3, |a| a["in_force"] == 3 && a["result"] == "ok");
    for h in &hosts {
        assert!(h.blocks(200) && !h.blocks(7000));
    }
    for h in &hosts[1..] {
        assert_eq!(h.dropped(), 0, "the checker passes everywhere");
    }
}

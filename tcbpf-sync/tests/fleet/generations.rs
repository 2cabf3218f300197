//! `tcbpf sync commit` and followers applying generations, against a real
//! etcd and real kernel maps: each follower is a process with maps of its
//! own (its own bpffs, its own loaded object). A generation reaches every
//! follower whole (its acknowledgement carries the checksum the commit
//! wrote, and the map holds exactly its entries), a generation that does
//! not fit a map changes nothing, and a map-in-map target gets it by one
//! swap of its slot; 100,000 entries reach 20 followers whole.

use crate::support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::etcd::Etcd;
use support::host::SyncProc;
use support::{sync_fails, sync_ok};
use tcbpf::load::{load_file, LoadedObject};
use tcbpf::maps::generation as gen;
use tcbpf::sys;
use tcbpf_testkit::{fixture, s, Bpffs, TempDir};

/// A follower: an object loaded into a bpffs of its own, and a
/// `tcbpf sync etcd` process following one of its maps.
struct Node {
    // Dropped in this order: the process, then the maps, then the bpffs.
    proc: Option<SyncProc>,
    obj: LoadedObject,
    _fs: Bpffs,
    args: Vec<String>,
    log: PathBuf,
}

impl Node {
    fn new(
        object: &str,
        map: &str,
        name: &str,
        ep: &str,
        prefix: &str,
        node: &str,
        dir: &TempDir,
    ) -> Node {
        let fs = Bpffs::new();
        let obj = load_file(&fixture(object), &fs.options()).expect("load fixture");
        let pin = fs.join(format!("tc/globals/{map}"));
        // The last node logs with -v.
        let verbose: &[&str] = if node == "g3" { &["-v"] } else { &[] };
        let words = [
            "etcd",
            ep,
            "prefix",
            prefix,
            "pinned",
            s(&pin),
            "as",
            name,
            "node",
            node,
            "status-ttl",
            "3",
        ];
        let args: Vec<String> = verbose
            .iter()
            .chain(words.iter())
            .map(|a| a.to_string())
            .collect();
        let mut n = Node {
            proc: None,
            obj,
            _fs: fs,
            args,
            log: dir.join(format!("{node}.log")),
        };
        n.start();
        n
    }

    fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.proc = Some(SyncProc::start(&args, self.log.clone()));
    }

    /// The u16 keys of `sync_blocked`.
    fn ports(&self) -> BTreeSet<u16> {
        let fd = &self.obj.map("sync_blocked").unwrap().fd;
        tcbpf::maps::read_all(fd)
            .unwrap()
            .into_iter()
            .map(|(k, _)| u16::from_ne_bytes([k[0], k[1]]))
            .collect()
    }

    /// The generation and u32 keys of the inner map in slot 0 of `policy`.
    fn inner(&self) -> (u32, BTreeSet<u32>) {
        let outer = &self.obj.map("policy").unwrap().fd;
        let f = gen::in_force(outer, 0).unwrap().unwrap();
        let keys = tcbpf::maps::read_all(&f.map)
            .unwrap()
            .into_iter()
            .map(|(k, _)| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]))
            .filter(|&k| k != u32::MAX)
            .collect();
        (f.generation, keys)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn status(ep: &str, prefix: &str) -> Value {
    serde_json::from_str(&sync_ok(&["-j", "status", ep, "prefix", prefix])).unwrap()
}

/// The acknowledgement of `map` by `node`, if it has one.
fn ack(st: &Value, node: &str, map: &str) -> Option<Value> {
    st["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node"] == node)
        .map(|n| n["maps"][map]["generation"].clone())
        .filter(Value::is_object)
}

/// Waits (bounded) until every node's acknowledgement of `map` passes `ok`.
fn wait_acks(
    ep: &str,
    prefix: &str,
    nodes: &[&str],
    map: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = Instant::now();
    loop {
        let st = status(ep, prefix);
        if nodes
            .iter()
            .all(|n| ack(&st, n, map).is_some_and(|a| ok(&a)))
        {
            return st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}: {st:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_ports(dir: &TempDir, name: &str, ports: impl Iterator<Item = u32>) -> String {
    let path = dir.join(name);
    let text: String = ports
        .map(|p| format!("{{\"key\":{p},\"value\":1}}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    s(&path).to_string()
}

fn commit(ep: &str, prefix: &str, map: &str, file: &str) -> Value {
    serde_json::from_str(&sync_ok(&[
        "-j", "commit", ep, "prefix", prefix, "map", map, "from", file,
    ]))
    .unwrap()
}

#[test]
fn commit_reaches_every_follower_as_whole_generations_and_a_bad_one_changes_nothing() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("gens");
    let p = "/t/gens";
    let names = ["g1", "g2", "g3"];
    let nodes: Vec<Node> = names
        .iter()
        .map(|n| Node::new("sync_block.o", "sync_blocked", "blocked", &ep, p, n, &dir))
        .collect();
    // A stray entry the first generation does not hold goes.
    sys::map::update(
        &nodes[0].obj.map("sync_blocked").unwrap().fd,
        &9u16.to_ne_bytes(),
        &[1],
        0,
    )
    .unwrap();

    // Generation 1: 3,000 ports, more than one transaction can hold.
    let file = write_ports(&dir, "a.jsonl", 1000..4000);
    let c1 = commit(&ep, p, "blocked", &file);
    assert_eq!(c1["generation"], 1);
    assert_eq!(c1["entries"], 3000);
    assert!(c1["transactions"].as_u64().unwrap() > 3000 / 128, "{c1}");
    // The layout: the record, then the pointer.
    let rec: Value = serde_json::from_str(
        e.ctl(&["get", "/t/gens/gens/blocked/1/record", "--print-value-only"])
            .trim(),
    )
    .unwrap();
    assert_eq!(rec["checksum"], c1["checksum"]);
    assert_eq!(rec["entries"], 3000);
    assert!(rec["author"].as_str().unwrap().contains('@'), "{rec}");
    assert_eq!(
        e.ctl(&["get", "/t/gens/current/blocked", "--print-value-only"])
            .trim(),
        "1"
    );
    let st = wait_acks(&ep, p, &names, "blocked", "generation 1", |a| {
        a["in_force"] == 1 && a["result"] == "ok"
    });
    let want: BTreeSet<u16> = (1000..4000).collect();
    for (n, node) in names.iter().zip(&nodes) {
        let a = ack(&st, n, "blocked").unwrap();
        assert_eq!(a["checksum"], c1["checksum"], "{n}: {a}");
        assert_eq!(a["entries"], 3000, "{n}: {a}");
        assert_eq!(a["behind"], false, "{n}: {a}");
        assert_eq!(node.ports(), want, "{n}");
        assert!(
            node.log_text()
                .contains("map blocked generation 1 applied in"),
            "{n}: {}",
            node.log_text()
        );
    }

    // The log: one line per event; -v adds the details.
    for (n, node) in names.iter().zip(&nodes) {
        let log = node.log_text();
        assert!(
            log.contains("tcbpf sync: connected to etcd 127.0.0.1:"),
            "{n}: {log}"
        );
        assert!(
            log.contains("tcbpf sync: resync (start-up) at revision "),
            "{n}: {log}"
        );
        assert!(
            log.lines().all(|l| l.starts_with("tcbpf sync: ")),
            "{n}: {log}"
        );
        assert_eq!(
            log.contains("resync (generation)"),
            *n == "g3",
            "{n}: {log}"
        );
    }

    // Generation 2 replaces it whole: old ports gone, new ones in.
    let file = write_ports(&dir, "b.jsonl", 3500..5000);
    let c2 = commit(&ep, p, "blocked", &file);
    assert_eq!(c2["generation"], 2);
    let st = wait_acks(&ep, p, &names, "blocked", "generation 2", |a| {
        a["in_force"] == 2
    });
    let want: BTreeSet<u16> = (3500..5000).collect();
    for (n, node) in names.iter().zip(&nodes) {
        assert_eq!(ack(&st, n, "blocked").unwrap()["checksum"], c2["checksum"]);
        assert_eq!(node.ports(), want, "{n}");
    }

    // Every follower published its map's types: a key no u16 map takes is
    // refused by the writer (exit 2), nothing written, by commit and put.
    let types = e.ctl(&["get", "/t/gens/types/blocked/", "--prefix", "--keys-only"]);
    assert_eq!(
        types.split_whitespace().collect::<Vec<_>>(),
        [
            "/t/gens/types/blocked/g1",
            "/t/gens/types/blocked/g2",
            "/t/gens/types/blocked/g3"
        ]
    );
    let file = write_ports(&dir, "c.jsonl", [1u32, 2, 70000].into_iter());
    let err = sync_fails(
        2,
        &["commit", &ep, "prefix", p, "map", "blocked", "from", &file],
    );
    assert!(
        err.contains("no follower can apply key 70000") && err.contains("node g1"),
        "{err}"
    );
    assert!(e
        .ctl(&["get", "/t/gens/gens/blocked/3", "--prefix", "--keys-only"])
        .trim()
        .is_empty());
    let err = sync_fails(
        2,
        &[
            "put", &ep, "prefix", p, "map", "blocked", "key", "70000", "value", "1",
        ],
    );
    assert!(err.contains("no follower can apply key 70000"), "{err}");
    assert!(e
        .ctl(&["get", "/t/gens/maps/", "--prefix", "--keys-only"])
        .trim()
        .is_empty());

    // A node with wider keys makes it one that only some followers refuse:
    // written, with a warning naming them; each u16 node refuses the whole
    // generation, writes nothing, and says so; generation 2 stays in force.
    e.ctl(&[
        "put",
        "/t/gens/types/blocked/wide",
        r#"{"key_size":4,"value_size":1,"cpus":null,"key_type":null,"value_type":null,"btf":null}"#,
    ]);
    let o = support::sync(&[
        "-j", "commit", &ep, "prefix", p, "map", "blocked", "from", &file,
    ]);
    let warn = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{warn}");
    assert!(
        warn.contains("node g1, node g2, node g3 will refuse key 70000"),
        "{warn}"
    );
    let c3: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c3["generation"], 3);
    let st = wait_acks(&ep, p, &names, "blocked", "generation 3 refused", |a| {
        a["generation"] == 3
    });
    for (n, node) in names.iter().zip(&nodes) {
        let a = ack(&st, n, "blocked").unwrap();
        let result = a["result"].as_str().unwrap();
        assert!(
            result.contains("refused") && result.contains("key 70000"),
            "{n}: {a}"
        );
        assert_eq!(a["in_force"], 2, "{n}: {a}");
        assert_eq!(a["behind"], true, "{n}: {a}");
        assert_eq!(node.ports(), want, "{n}");
    }
    let text = sync_ok(&["status", &ep, "prefix", p]);
    assert!(
        text.contains("map blocked generation 3 published"),
        "{text}"
    );
    assert!(text.contains("BEHIND"), "{text}");

    e.ctl(&["del", "/t/gens/types/blocked/wide"]);
    // A bad line writes nothing (exit 2), and the generation is not taken.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"key\":1,\"value\":1}\n{\"key\":2}\n").unwrap();
    let err = sync_fails(
        2,
        &[
            "commit",
            &ep,
            "prefix",
            p,
            "map",
            "blocked",
            "from",
            s(&bad),
        ],
    );
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        e.ctl(&["get", "/t/gens/current/blocked", "--print-value-only"])
            .trim(),
        "3"
    );
    assert!(e
        .ctl(&["get", "/t/gens/gens/blocked/4", "--prefix", "--keys-only"])
        .trim()
        .is_empty());
    drop(nodes);
}

#[test]
fn a_map_in_map_follower_swaps_whole_generations_and_survives_sigkill_mid_apply() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("gens-mim");
    let p = "/t/gens-mim";
    let names = ["m1", "m2"];
    let mut nodes: Vec<Node> = names
        .iter()
        .map(|n| Node::new("policy_gen.o", "policy", "policy", &ep, p, n, &dir))
        .collect();
    let file = write_ports(&dir, "a.jsonl", 1000..2000);
    let c1 = commit(&ep, p, "policy", &file);
    let st = wait_acks(&ep, p, &names, "policy", "generation 1", |a| {
        a["in_force"] == 1
    });
    for (n, node) in names.iter().zip(&nodes) {
        assert_eq!(ack(&st, n, "policy").unwrap()["checksum"], c1["checksum"]);
        // The inner map in force carries the fleet's generation number.
        assert_eq!(node.inner(), (1, (1000..2000).collect()), "{n}");
    }

    // A large generation; node m2 is SIGKILLed while it applies it.
    let big = 100_000u32;
    let file = write_ports(&dir, "big.jsonl", 10_000..10_000 + big);
    let c2 = commit(&ep, p, "policy", &file);
    // While it reads or builds the 100,000 entries (or just after).
    std::thread::sleep(Duration::from_millis(40));
    nodes[1].proc.as_mut().unwrap().kill();
    // Whole: the old generation or the new one, never a mix.
    let (g, keys) = nodes[1].inner();
    match g {
        1 => assert_eq!(keys, (1000..2000).collect()),
        2 => assert_eq!(keys.len(), big as usize),
        other => panic!("generation {other} in force after SIGKILL"),
    }
    nodes[1].start();
    let st = wait_acks(&ep, p, &names, "policy", "generation 2", |a| {
        a["in_force"] == 2
    });
    for (n, node) in names.iter().zip(&nodes) {
        assert_eq!(ack(&st, n, "policy").unwrap()["checksum"], c2["checksum"]);
        let (g, keys) = node.inner();
        assert_eq!((g, keys.len()), (2, big as usize), "{n}");
        assert_eq!(keys.first(), Some(&10_000));
    }
    // The next commit finds generation 2 the newest although listing its
    // 100,000 keys would pass gRPC's 4 MiB message limit.
    let c3 = commit(&ep, p, "policy", &write_ports(&dir, "c.jsonl", 7..9));
    assert_eq!(c3["generation"], 3);
    wait_acks(&ep, p, &names, "policy", "generation 3", |a| {
        a["in_force"] == 3
    });
    for node in &nodes {
        assert_eq!(node.inner(), (3, [7, 8].into()));
    }
    drop(nodes);
}

#[test]
fn a_plain_map_follower_sigkilled_mid_apply_comes_back_with_the_new_generation_whole() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("gens-kill");
    let p = "/t/gens-kill";
    let names = ["k1", "k2"];
    let mut nodes: Vec<Node> = names
        .iter()
        .map(|n| Node::new("sync_block.o", "sync_blocked", "blocked", &ep, p, n, &dir))
        .collect();
    let c1 = commit(&ep, p, "blocked", &write_ports(&dir, "a.jsonl", 1..1001));
    wait_acks(&ep, p, &names, "blocked", "generation 1", |a| {
        a["in_force"] == 1
    });
    // 60,000 ports; k2 is SIGKILLed while it reads or writes them: its
    // map may hold a mix then, and its report said generation 1 until the
    // last write (a plain map is diff-applied).
    let c2 = commit(
        &ep,
        p,
        "blocked",
        &write_ports(&dir, "b.jsonl", 2000..62000),
    );
    std::thread::sleep(Duration::from_millis(30));
    nodes[1].proc.as_mut().unwrap().kill();
    assert_ne!(c1["checksum"], c2["checksum"]);
    nodes[1].start();
    let st = wait_acks(&ep, p, &names, "blocked", "generation 2", |a| {
        a["in_force"] == 2 && a["result"] == "ok"
    });
    let want: BTreeSet<u16> = (2000..62000).collect();
    for (n, node) in names.iter().zip(&nodes) {
        assert_eq!(
            ack(&st, n, "blocked").unwrap()["checksum"],
            c2["checksum"],
            "{n}"
        );
        assert_eq!(node.ports(), want, "{n}");
    }
    drop(nodes);
}

/// The issue's fleet proof: a 3-member etcd on loopback and 20 followers
/// (processes, each with a map-in-map of its own); `sync commit` of a
/// 100,000-entry generation reaches all 20 as a whole generation. Each
/// acknowledgement carries the commit's checksum and count, each
/// follower's slot ends holding exactly the generation's keys, and a
/// watcher that reads every follower's slot while the generation spreads
/// finds only whole generations: every inner map it sees holds all the
/// entries of the generation it carries (1,000 or 100,000), never a mix.
/// `TCBPF_FLEET_ENTRIES` changes the size (the test's form is the full one).
#[test]
fn a_100000_entry_generation_reaches_20_followers_whole() {
    tcbpf_testkit::require_root!();
    let big: u32 = std::env::var("TCBPF_FLEET_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let e = Etcd::cluster(3, None);
    let ep = e.endpoints();
    let dir = TempDir::new("gens-fleet");
    let p = "/t/gens-fleet";
    let names: Vec<String> = (1..=20).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let nodes: Vec<Node> = refs
        .iter()
        .map(|n| Node::new("policy_gen.o", "policy", "policy", &ep, p, n, &dir))
        .collect();
    let c1 = commit(&ep, p, "policy", &write_ports(&dir, "a.jsonl", 0..1000));
    wait_acks(&ep, p, &refs, "policy", "generation 1", |a| {
        a["in_force"] == 1
    });
    assert_eq!(c1["generation"], 1);

    // The watcher: each inner map it meets in a slot, counted once.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen: std::collections::BTreeMap<u32, (usize, u32, usize)> = Default::default();
            let t0 = Instant::now();
            // A last pass after the stop: every follower's final inner map
            // is met even when the acks came in within one pass.
            let mut last = false;
            while !last && t0.elapsed() < Duration::from_secs(300) {
                last = stop.load(std::sync::atomic::Ordering::Relaxed);
                for (i, node) in nodes.iter().enumerate() {
                    let outer = &node.obj.map("policy").unwrap().fd;
                    let f = gen::in_force(outer, 0).unwrap().unwrap();
                    seen.entry(f.info.id).or_insert_with(|| {
                        let n = tcbpf::maps::read_all(&f.map).unwrap().len() - 1;
                        (i, f.generation, n)
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        let file = write_ports(&dir, "big.jsonl", 500..500 + big);
        let t0 = Instant::now();
        let c2 = commit(&ep, p, "policy", &file);
        let committed = t0.elapsed();
        // Bounded: 240 s (a debug build on a shared 2-core machine).
        let st = loop {
            let st = status(&ep, p);
            if refs
                .iter()
                .all(|n| ack(&st, n, "policy").is_some_and(|a| a["in_force"] == 2))
            {
                break st;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(240),
                "not every follower on 2: {st:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let acked = t0.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{big} entries to 20 followers: commit {committed:?}, commit → every follower \
             acknowledged {acked:?}"
        );
        assert_eq!(c2["generation"], 2);
        assert_eq!(c2["entries"], big);
        for n in &refs {
            let a = ack(&st, n, "policy").unwrap();
            assert_eq!(a["result"], "ok", "{n}: {a}");
            assert_eq!(a["checksum"], c2["checksum"], "{n}: {a}");
            assert_eq!(a["entries"], big, "{n}: {a}");
        }
        watcher.join().unwrap()
    });
    for (id, (i, g, n)) in &seen {
        let whole = match g {
            1 => 1000,
            2 => big as usize,
            _ => 0,
        };
        assert_eq!(
            *n,
            whole,
            "follower f{}: inner map {id} of generation {g}",
            i + 1
        );
    }
    let on_2: BTreeSet<usize> = seen
        .values()
        .filter(|(_, g, _)| *g == 2)
        .map(|(i, _, _)| *i)
        .collect();
    assert_eq!(
        on_2.len(),
        20,
        "every follower seen on generation 2: {seen:?}"
    );
    for (n, node) in refs.iter().zip(&nodes) {
        let (g, keys) = node.inner();
        assert_eq!((g, keys.len()), (2, big as usize), "{n}");
        assert_eq!(
            (keys.first(), keys.last()),
            (Some(&500), Some(&(500 + big - 1))),
            "{n}"
        );
    }
    drop(nodes);
}

/// A map-in-map follower whose slot starts empty, with an array inner map
/// (`bpf/policy_array.o`): the first generation is built from the inner
/// definition in the program's BTF, the next like the array in force;
/// each carries its number at the array's last index.
#[test]
fn a_follower_fills_an_empty_slot_with_array_generations() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("gens-array");
    let p = "/t/gens-array";
    let node = Node::new(
        "policy_array.o",
        "policy_array",
        "policy",
        &ep,
        p,
        "a1",
        &dir,
    );
    let outer = &node.obj.map("policy_array").unwrap().fd;
    assert!(
        gen::in_force(outer, 0).unwrap().is_none(),
        "slot 0 starts empty"
    );
    let flags = |f: &gen::InForce| -> BTreeSet<u32> {
        (0..4095u32)
            .filter(|i| {
                let mut v = [0u8; 4];
                sys::map::lookup(&f.map, &i.to_ne_bytes(), &mut v, 0).unwrap();
                u32::from_ne_bytes(v) != 0
            })
            .collect()
    };
    for (g, ports) in [(1u32, 100..110u32), (2, 200..203)] {
        let c = commit(
            &ep,
            p,
            "policy",
            &write_ports(&dir, &format!("{g}.jsonl"), ports.clone()),
        );
        let st = wait_acks(&ep, p, &["a1"], "policy", "an array generation", |a| {
            a["in_force"] == g
        });
        let a = ack(&st, "a1", "policy").unwrap();
        assert_eq!(
            (&a["result"], &a["checksum"]),
            (&"ok".into(), &c["checksum"]),
            "{a}"
        );
        let f = gen::in_force(outer, 0).unwrap().unwrap();
        assert_eq!(
            (f.info.type_name(), f.info.max_entries, f.generation),
            ("array".into(), 4096, g)
        );
        assert_eq!(flags(&f), ports.collect(), "generation {g}");
    }
    // The reserved index is refused by the follower, which keeps 2.
    let c = commit(
        &ep,
        p,
        "policy",
        &write_ports(&dir, "3.jsonl", [7u32, 4095].into_iter()),
    );
    let st = wait_acks(&ep, p, &["a1"], "policy", "generation 3 refused", |a| {
        a["generation"] == 3
    });
    let a = ack(&st, "a1", "policy").unwrap();
    assert!(
        a["result"].as_str().unwrap().contains("index 4095"),
        "{a} {c}"
    );
    assert_eq!(a["in_force"], 2, "{a}");
    drop(node);
}

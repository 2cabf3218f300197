//! `map commit`: a whole policy swapped through a map-in-map slot as a
//! numbered generation, against the real kernel and real traffic.
//! `bpf/policy_gen.o` drops UDP to the ports its inner map names and
//! counts every packet by (generation seen, port / 1000, dropped) in
//! `policy_stats`, so each packet's fate can be checked against the
//! policy of the one generation that classified it.
//!
//! Run as root.

use crate::e2e_support;

use e2e_support::*;
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A veth pair with `policy_gen.o` on `v1` ingress (in `b`) and a bpffs
/// holding its pins.
struct Setup {
    net: VethPair,
    fs: Bpffs,
    dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let net = VethPair::new();
        let fs = Bpffs::new();
        let obj = object("policy_gen.o");
        ok(tcbpf(
            &format!(
                "-n {} filter add dev v1 ingress bpf da obj {obj} sec classifier",
                net.b.name
            ),
            &fs.path,
        ));
        // Neighbour resolution before any count matters.
        net.send_udp(9, 2);
        let dir = TempDir::new("commit");
        std::fs::write(dir.join("a.txt"), policy_lines(1000..2000)).unwrap();
        std::fs::write(dir.join("b.txt"), policy_lines(2000..3000)).unwrap();
        let json: String = (1000..2000)
            .map(|p| format!("{{\"key\":{p},\"value\":1}}\n"))
            .collect();
        std::fs::write(dir.join("a.json"), json).unwrap();
        Setup { net, fs, dir }
    }

    fn outer(&self) -> PathBuf {
        self.fs.join("tc/globals/policy")
    }

    fn kept_dir(&self) -> PathBuf {
        self.fs.join("tc/globals/policy_generations/0")
    }

    /// `tcbpf WORDS` with this bpffs; `{P}` in `line` is the outer pin and
    /// `{D}` the temp dir.
    fn cmd(&self, line: &str) -> std::process::Command {
        let line = line
            .replace("{P}", s(&self.outer()))
            .replace("{D}", s(&self.dir.0));
        tcbpf(&line, &self.fs.path)
    }

    fn commit_json(&self, line: &str) -> serde_json::Value {
        let out = ok(self.cmd(line));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The (map id, generation) `map show -j` reports for slot 0.
    fn shown(&self) -> (u64, u64) {
        let v: serde_json::Value =
            serde_json::from_str(&ok(self.cmd("-j map show pinned {P}"))).unwrap();
        let slot = &v["slots"][0];
        assert_eq!(slot["slot"], 0, "{v}");
        (
            slot["map_id"].as_u64().unwrap(),
            slot["generation"].as_u64().unwrap(),
        )
    }

    /// `policy_stats`: (generation, port / 1000, dropped) → packets.
    fn stats(&self) -> BTreeMap<(u32, u16, bool), u64> {
        let m = tcbpf::sys::obj::get_pinned_map(&self.fs.join("tc/globals/policy_stats"), 0)
            .expect("policy_stats pin");
        tcbpf::maps::read_all(&m)
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                let generation = u32::from_ne_bytes(k[0..4].try_into().unwrap());
                let bucket = u16::from_ne_bytes(k[4..6].try_into().unwrap());
                let dropped = u16::from_ne_bytes(k[6..8].try_into().unwrap()) != 0;
                let n = u64::from_ne_bytes(v[0..8].try_into().unwrap());
                ((generation, bucket, dropped), n)
            })
            .collect()
    }
}

/// `PORT 1` for every port in `ports`.
fn policy_lines(ports: std::ops::Range<u32>) -> String {
    ports.map(|p| format!("{p} 1\n")).collect()
}

fn map_alive(id: u32) -> bool {
    tcbpf::sys::obj::map_by_id(id, tcbpf::sys::obj::open::RDONLY).is_ok()
}

/// Waits (bounded) for the map `id` to be freed.
fn released(id: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if !map_alive(id) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Sends one datagram from `a` to `b`'s `port`; true if `b` received it.
fn passes(net: &VethPair, port: u16) -> bool {
    net.send_udp(port, 1) == 1
}

/// What a run of policy changes under traffic gave.
#[derive(Debug)]
struct Verdicts {
    sent: u64,
    counted: u64,
    mismatches: u64,
    generations_seen: usize,
}

/// Sends UDP to ports 500–3499 from `a` while `change(i)` runs for each
/// `i` in `0..changes` and returns (generation, the bucket port / 1000
/// its policy drops); then checks every counted packet's fate against the
/// policy of the generation that classified it.
fn under_traffic(t: &Setup, changes: u32, mut change: impl FnMut(u32) -> (u32, u16)) -> Verdicts {
    let before = t.stats();
    let stop = AtomicBool::new(false);
    let mut drops_bucket: BTreeMap<u32, u16> = BTreeMap::new();
    drops_bucket.insert(0, u16::MAX);
    let sent = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            tcbpf::tc::netns::enter(&t.net.a.name).expect("enter netns a");
            let sock = UdpSocket::bind((ADDR_A, 0)).expect("bind sender");
            let to_b: std::net::Ipv4Addr = ADDR_B.parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut sent = 0u64;
            'run: while Instant::now() < deadline {
                for port in 500u16..3500 {
                    if stop.load(Ordering::Relaxed) {
                        break 'run;
                    }
                    let to: SocketAddr = (to_b, port).into();
                    sock.send_to(b"policy", to).expect("send");
                    sent += 1;
                    if sent % 16 == 0 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            }
            sent
        });
        for i in 0..changes {
            let (g, bucket) = change(i);
            drops_bucket.insert(g, bucket);
        }
        // Let packets in flight land before the count.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("sender")
    });
    std::thread::sleep(Duration::from_millis(200));
    let after = t.stats();
    let mut v = Verdicts {
        sent,
        counted: 0,
        mismatches: 0,
        generations_seen: 0,
    };
    let mut per_generation: BTreeMap<u32, u64> = BTreeMap::new();
    for (&(g, bucket, dropped), &n) in &after {
        let n = n - before.get(&(g, bucket, dropped)).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        v.counted += n;
        *per_generation.entry(g).or_default() += n;
        let want = *drops_bucket
            .get(&g)
            .unwrap_or_else(|| panic!("packets counted under unknown generation {g}"));
        if dropped != (bucket == want) {
            v.mismatches += n;
        }
    }
    v.generations_seen = per_generation.len();
    eprintln!("{v:?}");
    v
}

const CHANGES: u32 = 200;

#[test]
fn commits_under_traffic_classify_every_packet_by_exactly_one_generation() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    let v = under_traffic(&t, CHANGES, |i| {
        let (file, bucket) = if i % 2 == 0 { ("a", 1) } else { ("b", 2) };
        let v = t.commit_json(&format!(
            "-j map commit pinned {{P}} key u32 value u32 from {{D}}/{file}.txt"
        ));
        assert_eq!(v["entries"], 1000, "{v}");
        let g = v["generation"].as_u64().unwrap() as u32;
        assert_eq!(g, i + 1, "{v}");
        (g, bucket)
    });
    assert_eq!(v.mismatches, 0, "{v:?}");
    assert_eq!(
        v.counted, v.sent,
        "every packet classified by one generation"
    );
    // Traffic really ran across the commits, not around them.
    assert!(v.generations_seen as u32 > CHANGES / 4, "{v:?}");
}

/// The control: the same check on the same traffic catches what the
/// commit avoids. `map load … replace` of each policy (with its generation
/// entry) into the inner map in force changes it entry by entry, and
/// packets classified meanwhile see a mix of two generations.
#[test]
fn entry_by_entry_replace_under_traffic_is_caught_mixing_generations() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    let (inner, _) = t.shown();
    let v = under_traffic(&t, CHANGES, |i| {
        let g = i + 1;
        let (ports, bucket) = if i % 2 == 0 {
            (1000..2000, 1)
        } else {
            (2000..3000, 2)
        };
        let file = t.dir.join("replace.txt");
        std::fs::write(&file, format!("{}4294967295 {g}\n", policy_lines(ports))).unwrap();
        ok(t.cmd(&format!(
            "map load id {inner} key u32 value u32 from {} replace",
            s(&file)
        )));
        (g, bucket)
    });
    assert_eq!(v.counted, v.sent, "{v:?}");
    assert!(v.mismatches > 0, "the check saw no mix: {v:?}");
}

#[test]
fn a_bad_line_exits_2_and_changes_nothing() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    let v = t.commit_json("-j map commit pinned {P} key u32 value u32 from {D}/a.txt");
    assert_eq!(v["generation"], 1);
    let (id, generation) = t.shown();
    assert_eq!((id, generation), (v["map_id"].as_u64().unwrap(), 1));

    let bad = t.dir.join("bad.txt");
    std::fs::write(&bad, "2000 1\n2001 1\n2002 99999999999\n2003 1\n").unwrap();
    let (code, err) = fails(t.cmd(&format!(
        "map commit pinned {{P}} key u32 value u32 from {}",
        s(&bad)
    )));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 3"), "{err}");
    std::fs::write(
        &bad,
        "{\"key\":2000,\"value\":1}\n{\"key\":2001,\"value\":-1}\n",
    )
    .unwrap();
    let (code, err) = fails(t.cmd(&format!("map commit pinned {{P}} json from {}", s(&bad))));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(&bad, "2000 1\n4294967295 7\n").unwrap();
    let (code, err) = fails(t.cmd(&format!(
        "map commit pinned {{P}} key u32 value u32 from {}",
        s(&bad)
    )));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reserved for the generation"), "{err}");
    let (code, err) = fails(t.cmd("map commit pinned {P} key u32 value u16 from {D}/b.txt"));
    assert_eq!(code, 2, "{err}");

    // plan: checked, printed, nothing created.
    let p = t.commit_json("-j map commit pinned {P} key u32 value u32 from {D}/b.txt plan");
    assert_eq!(
        (
            p["generation"].clone(),
            p["replaces"].clone(),
            p["entries"].clone()
        ),
        (2.into(), 1.into(), 1000.into()),
        "{p}"
    );
    assert_eq!(p["replaces_map_id"].as_u64(), Some(id));
    assert_eq!(p["inner"]["type"], "hash");
    assert_eq!(p["inner"]["flags"], 1, "BPF_F_NO_PREALLOC copied");
    let out = ok(t.cmd("map commit pinned {P} key u32 value u32 from {D}/b.txt plan"));
    assert!(
        out.starts_with("plan: generation 2 at slot 0 (1000 entries in a new hash map"),
        "{out}"
    );

    // Nothing changed: the same inner map, the same generation, the same
    // verdicts, and no kept directory.
    assert_eq!(t.shown(), (id, 1));
    assert!(!passes(&t.net, 1500));
    assert!(passes(&t.net, 2500));
    assert!(!t.kept_dir().exists());
}

#[test]
fn previous_restores_kept_generations_and_unkept_ones_are_released() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    let (gen0_id, _) = t.shown();
    // Without keep, the replaced inner map (generation 0) is freed.
    let a = t.commit_json("-j map commit pinned {P} key u32 value u32 from {D}/a.txt");
    assert_eq!(
        (a["generation"].clone(), a["replaced"].clone()),
        (1.into(), 0.into())
    );
    assert!(
        released(gen0_id as u32),
        "generation 0's map {gen0_id} is still alive"
    );
    assert!(!passes(&t.net, 1500));

    let b = t.commit_json("-j map commit pinned {P} key u32 value u32 from {D}/b.txt keep 2");
    assert_eq!(b["generation"], 2);
    assert_eq!(b["kept"], serde_json::json!([1]));
    let a2 = t.commit_json("-j map commit pinned {P} json from {D}/a.json keep 2");
    assert_eq!(a2["generation"], 3);
    assert_eq!(a2["kept"], serde_json::json!([2, 1]));
    assert!(passes(&t.net, 2500) && !passes(&t.net, 1500));
    let a2_id = a2["map_id"].as_u64().unwrap() as u32;

    // previous: generation 2 (B) again, the very map committed as 2.
    let p = t.commit_json("-j map commit pinned {P} previous");
    assert_eq!(
        (p["generation"].clone(), p["replaced"].clone()),
        (2.into(), 3.into())
    );
    assert_eq!(p["map_id"], b["map_id"]);
    assert_eq!(p["kept"], serde_json::json!([3, 1]));
    assert_eq!(t.shown(), (b["map_id"].as_u64().unwrap(), 2));
    assert!(!passes(&t.net, 2500) && passes(&t.net, 1500));
    assert!(map_alive(a2_id), "the kept generation 3 stays");

    let p = t.commit_json("-j map commit pinned {P} previous");
    assert_eq!(p["generation"], 1);
    assert!(!passes(&t.net, 1500) && passes(&t.net, 2500));
    // Nothing older than 1 is kept: exit 1, nothing changed.
    let (code, err) = fails(t.cmd("map commit pinned {P} previous"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no generation older than 1"), "{err}");
    assert_eq!(t.shown().1, 1);

    // The next commit numbers past every kept one.
    let n = t.commit_json("-j map commit pinned {P} key u32 value u32 from {D}/b.txt keep 1");
    assert_eq!(n["generation"], 4);
    assert_eq!(n["kept"], serde_json::json!([3]));
    let kept: Vec<String> = std::fs::read_dir(t.kept_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept, vec!["3".to_string()]);

    // keep and previous need the outer map's pin.
    let outer_id = {
        let v: serde_json::Value =
            serde_json::from_str(&ok(t.cmd("-j map show pinned {P}"))).unwrap();
        v["id"].as_u64().unwrap()
    };
    let (code, err) = fails(t.cmd(&format!("map commit id {outer_id} previous")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pinned PATH"), "{err}");
    // Text output.
    let out = ok(t.cmd(&format!(
        "map commit id {outer_id} key u32 value u32 from {{D}}/a.txt"
    )));
    assert!(
        out.starts_with("generation 5 in force at slot 0 (1000 entries, map id "),
        "{out}"
    );
}

#[test]
fn commit_words_are_checked_before_any_map_is_opened() {
    // No root needed: the grammar fails before the map is looked up.
    for (line, want) in [
        (
            "map commit id 1",
            "expected 'key TYPES value TYPES', 'json' or 'previous'",
        ),
        (
            "map commit id 1 previous json",
            "'previous' takes no entries",
        ),
        (
            "map commit id 1 json key u32 value u32",
            "expected 'key TYPES value TYPES', 'json' or 'previous'",
        ),
        ("map commit id 1 slot x json", "slot number"),
        ("map commit id 1 json keep", "number of generations"),
        ("map commit id 1 json frob", "frob"),
        (
            "map commit id 1 key u32 value u32 partial",
            "'partial' goes with 'json'",
        ),
    ] {
        let (code, err) = fails(tcbpf(line, std::path::Path::new("/nonexistent")));
        assert_eq!(code, 2, "{line}: {err}");
        assert!(err.contains(want), "{line}: {err}");
    }
}

/// The number of entries of the inner map in force and its generation.
fn in_force_entries(t: &Setup) -> (u32, usize, u64) {
    let (id, generation) = t.shown();
    let m = tcbpf::sys::obj::map_by_id(id as u32, tcbpf::sys::obj::open::RDONLY).unwrap();
    (
        id as u32,
        tcbpf::maps::read_all(&m).unwrap().len(),
        generation,
    )
}

#[test]
fn a_commit_killed_at_any_point_leaves_one_whole_generation_in_force() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    const N: u32 = 200_000;
    let big = t.dir.join("big.txt");
    std::fs::write(&big, policy_lines(10_000..10_000 + N)).unwrap();
    let commit = || {
        let mut c = t.cmd(&format!(
            "map commit pinned {{P}} key u32 value u32 from {} keep 8",
            s(&big)
        ));
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    // How long a whole commit takes here, to spread the kills over it.
    let t0 = Instant::now();
    assert!(commit().status().unwrap().success());
    let whole = t0.elapsed();
    let (mut id, entries, mut generation) = in_force_entries(&t);
    assert_eq!((entries, generation), (N as usize + 1, 1));
    let mut swapped = 0;
    for step in 0..12u32 {
        let mut child = commit().spawn().unwrap();
        std::thread::sleep(whole * step / 10);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let (now_id, now_entries, now_generation) = in_force_entries(&t);
        if now_id == id {
            // The swap had not happened: the same map, the same generation.
            assert_eq!(now_generation, generation, "step {step}");
        } else {
            // It had: a whole new generation, numbered one past the last.
            assert_eq!(now_generation, generation + 1, "step {step} ({status:?})");
            swapped += 1;
        }
        assert_eq!(
            now_entries,
            N as usize + 1,
            "step {step}: a partial map is in force"
        );
        (id, generation) = (now_id, now_generation);
    }
    eprintln!("12 kills over {whole:?}: {swapped} after the swap");
    // The kept generations are whole too, and previous still works.
    let p = t.commit_json("-j map commit pinned {P} previous");
    assert_eq!(p["generation"].as_u64().unwrap(), generation - 1);
}

#[test]
fn a_key_given_twice_ends_with_its_last_value_in_a_large_commit() {
    tcbpf_testkit::require_root!();
    let t = Setup::new();
    // Across UPDATE_BATCH chunks: the later write wins.
    let mut lines = String::from("5 1\n");
    lines.push_str(&policy_lines(100_000..200_000));
    lines.push_str("5 2\n100007 9\n");
    let file = t.dir.join("twice.txt");
    std::fs::write(&file, lines).unwrap();
    let v = t.commit_json(&format!(
        "-j map commit pinned {{P}} key u32 value u32 from {}",
        s(&file)
    ));
    assert_eq!(v["entries"], 100_001, "distinct keys");
    let m = tcbpf::sys::obj::map_by_id(v["map_id"].as_u64().unwrap() as u32, 0).unwrap();
    let value = |k: u32| {
        let mut out = [0u8; 4];
        tcbpf::sys::map::lookup(&m, &k.to_ne_bytes(), &mut out, 0).unwrap();
        u32::from_ne_bytes(out)
    };
    assert_eq!((value(5), value(100_007), value(150_000)), (2, 9, 1));
    assert_eq!(value(u32::MAX), 1, "the generation entry");
    assert_eq!(tcbpf::maps::read_all(&m).unwrap().len(), 100_002);
}

/// An array inner map and an empty slot (`bpf/policy_array.o`): its
/// outer map starts with slot 0 empty, so the first commit takes the
/// inner map's definition (an array of 4,096 u32 flags, BTF-typed) from
/// the BTF of the program using the outer map; the generation sits at the
/// array's last index, which the classifier reads. Real UDP across a veth
/// is dropped by the policy of each generation; an index at or past the
/// reserved one is refused with nothing changed; `previous` restores the
/// array generation kept.
#[test]
fn commit_fills_an_empty_slot_from_the_programs_btf_and_swaps_array_inner_maps() {
    require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("commit-array");
    let obj = object("policy_array.o");
    ok(tcbpf(
        &format!(
            "-n {} filter add dev v1 ingress bpf da obj {obj} sec classifier",
            net.b.name
        ),
        &fs.path,
    ));
    let outer = fs.join("tc/globals/policy_array");
    let stats = fs.join("tc/globals/policy_array_stats");
    let o = tcbpf::sys::obj::get_pinned_map(&outer, 0).unwrap();
    assert!(
        tcbpf::maps::generation::in_force(&o, 0).unwrap().is_none(),
        "slot 0 starts empty"
    );
    let write = |name: &str, ports: std::ops::Range<u32>| {
        let text: String = ports
            .map(|p| format!("{{\"key\":{p},\"value\":1}}\n"))
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        s(&path).to_string()
    };
    let commit = |words: &str| {
        let line = format!("-j map commit pinned {} {words}", s(&outer));
        let out = ok(tcbpf(&line, &fs.path));
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };

    let a = write("a.json", 1000..1010);
    let v = commit(&format!("json from {a}"));
    assert_eq!(
        (&v["generation"], &v["replaced"], &v["entries"]),
        (&1.into(), &0.into(), &10.into()),
        "{v}"
    );
    let f = tcbpf::maps::generation::in_force(&o, 0).unwrap().unwrap();
    assert_eq!(f.info.type_name(), "array");
    assert_eq!((f.info.max_entries, f.generation), (4096, 1));
    assert_ne!(f.info.btf_id, 0, "typed by the program's BTF");
    assert_eq!(net.send_udp(1005, 3), 0, "generation 1 drops 1005");
    assert_eq!(net.send_udp(2005, 3), 3, "and lets 2005 through");
    assert!(
        pinned_u64(&stats, 1) >= 6,
        "the classifier read generation 1"
    );

    // The next generation is built like the array in force, kept on request.
    let b = write("b.json", 2000..2010);
    let v = commit(&format!("json from {b} keep 2"));
    assert_eq!((&v["generation"], &v["replaced"]), (&2.into(), &1.into()));
    assert_eq!(net.send_udp(1005, 3), 3);
    assert_eq!(net.send_udp(2005, 3), 0);
    assert!(
        pinned_u64(&stats, 2) >= 6,
        "the classifier read generation 2"
    );

    // The reserved index and one past the array: refused, nothing changed.
    for (bad, why) in [
        ("{\"key\":4095,\"value\":1}\n", "index 4095"),
        ("{\"key\":5000,\"value\":1}\n", "5000"),
    ] {
        let path = dir.join("bad.json");
        std::fs::write(&path, bad).unwrap();
        let (code, err) = fails(tcbpf(
            &format!("map commit pinned {} json from {}", s(&outer), s(&path)),
            &fs.path,
        ));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(why), "{bad}: {err}");
    }
    assert_eq!(
        tcbpf::maps::generation::in_force(&o, 0)
            .unwrap()
            .unwrap()
            .generation,
        2
    );

    // previous: generation 1, the array kept when 2 was committed.
    let v = commit("previous");
    assert_eq!((&v["generation"], &v["replaced"]), (&1.into(), &2.into()));
    assert_eq!(net.send_udp(1005, 3), 0);
    assert_eq!(net.send_udp(2005, 3), 3);
}

//! `filter upgrade` end to end: the classifier of `bpf/upgrade_*.c` on a
//! veth's egress, planned (text and `-j`, nothing changed), refused (exit
//! 2 naming the map and member, nothing changed) and upgraded with its
//! counts carried into the new value layout, checked with the real `tc`
//! and real UDP traffic. The usage text is docs/upgrade.md's.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn filter_prog(net: &VethPair) -> u32 {
    prog_id_in(&tc(&net.a, "filter show dev v0 egress"))
}

/// The `packets` of key 17 (UDP) in the map pinned at `pin`.
fn udp_packets(pin: &std::path::Path) -> u64 {
    let m = tcbpf::sys::obj::get_pinned_map(pin, tcbpf::sys::obj::open::RDONLY).unwrap();
    let size = tcbpf::sys::info::map_info(&m).unwrap().value_size as usize;
    let mut v = vec![0u8; size];
    tcbpf::sys::map::lookup(&m, &17u32.to_ne_bytes(), &mut v, 0).unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// Attaches `obj` (a file of `bpf/`) at v0's egress, pref 1 handle 1, in
/// namespace a, with `extra` words after it.
fn attach(net: &VethPair, fs: &Bpffs, obj: &str, extra: &str) {
    let a = &net.a.name;
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 egress pref 1 handle 1 bpf da obj {} {extra}",
            object(obj)
        ),
        &fs.path,
    ));
}

#[test]
fn plan_refusal_and_upgrade_carry_the_counts_into_the_new_layout() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    attach(&net, &fs, "upgrade_v1.o", "");
    assert_eq!(net.send_udp(7400, 10), 10);
    assert_eq!(udp_packets(&pin), 10);
    let v1 = filter_prog(&net);
    let base = format!("-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj");

    // plan: text and JSON, nothing changes.
    let text = ok(tcbpf(
        &format!("{base} {} plan", object("upgrade_v2.o")),
        &fs.path,
    ));
    assert!(
        text.contains("  map counters: migrate (sum), ") && text.contains("; added drops"),
        "{text}"
    );
    assert!(text.contains("  map sizes: fresh (new map)"), "{text}");
    let json: Value = serde_json::from_str(&ok(tcbpf(
        &format!("-j {base} {} plan", object("upgrade_v2.o")),
        &fs.path,
    )))
    .unwrap();
    let counters = &json["maps"][0];
    assert_eq!(counters["name"], "counters");
    assert_eq!(counters["action"], "migrate");
    assert_eq!(counters["mode"], "sum");
    assert_eq!(counters["added"], serde_json::json!(["drops"]));
    assert_eq!(json["old_prog"]["id"], v1);
    assert_eq!(json["new_prog"], Value::Null);
    assert_eq!(filter_prog(&net), v1, "plan changes nothing");

    // A member turned into a struct: exit 2, naming map and member.
    let (code, err) = fails(tcbpf(
        &format!("{base} {}", object("upgrade_refused.o")),
        &fs.path,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("map 'counters'") && err.contains("member 'bytes'"),
        "{err}"
    );
    assert_eq!(filter_prog(&net), v1);
    // … unless the map starts fresh.
    let (code, err) = fails(tcbpf(
        &format!("{base} {} map nosuch fresh", object("upgrade_refused.o")),
        &fs.path,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("map 'nosuch' is not in"), "{err}");

    // The upgrade: the counts follow into {packets, bytes, drops}.
    let out = ok(tcbpf(
        &format!("{base} {}", object("upgrade_v2.o")),
        &fs.path,
    ));
    assert!(
        out.starts_with(&format!(
            "upgraded dev v0 egress pref 1 handle 0x1: program {v1} (upg_cls) -> upgrade_v2.o:[classifier]"
        )),
        "{out}"
    );
    let shown = tc(&net.a, "filter show dev v0 egress");
    assert!(shown.contains("upgrade_v2.o:[classifier]"), "{shown}");
    assert_ne!(filter_prog(&net), v1);
    assert_eq!(udp_packets(&pin), 10);
    assert_eq!(net.send_udp(7400, 5), 5);
    assert_eq!(udp_packets(&pin), 15);
    let info = tcbpf::sys::info::map_info(
        tcbpf::sys::obj::get_pinned_map(&pin, tcbpf::sys::obj::open::RDONLY).unwrap(),
    )
    .unwrap();
    assert_eq!(info.value_size, 24, "the pin names the new map");
}

#[test]
fn a_rerun_of_a_finished_upgrade_has_nothing_to_do() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    attach(&net, &fs, "upgrade_v1.o", "");
    let v1 = filter_prog(&net);
    let base = format!("-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj");
    // The same maps but other code: an upgrade (every map reused).
    let out = ok(tcbpf(
        &format!("{base} {}", object("upgrade_v1_fix.o")),
        &fs.path,
    ));
    assert!(out.starts_with("upgraded "), "{out}");
    assert!(out.contains("  map counters: reuse"), "{out}");
    let fixed = filter_prog(&net);
    assert_ne!(fixed, v1, "{out}");
    assert_eq!(net.send_udp(7450, 4), 4);
    // The same build again: nothing to do, nothing changes.
    let out = ok(tcbpf(
        &format!("{base} {}", object("upgrade_v1_fix.o")),
        &fs.path,
    ));
    assert!(
        out.starts_with(&format!(
            "nothing to do: dev v0 egress pref 1 handle 0x1 runs program {fixed} (upg_cls), the same build as "
        )),
        "{out}"
    );
    let json: Value = serde_json::from_str(&ok(tcbpf(
        &format!("-j {base} {}", object("upgrade_v1_fix.o")),
        &fs.path,
    )))
    .unwrap();
    assert_eq!(json["nothing_to_do"], true, "{json}");
    assert_eq!(json["new_prog"], fixed, "{json}");
    assert_eq!(filter_prog(&net), fixed, "the same program runs");
    assert_eq!(udp_packets(&pin), 4);
    // Back to v1: other code again, an upgrade.
    let out = ok(tcbpf(
        &format!("-j {base} {}", object("upgrade_v1.o")),
        &fs.path,
    ));
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["nothing_to_do"], false, "{json}");
    assert_ne!(filter_prog(&net), fixed);
    assert_eq!(udp_packets(&pin), 4);
}

#[test]
fn an_upgrade_leaves_no_pin_in_the_old_objects_namespace() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    attach(&net, &fs, "upgrade_ons_v1.o", "");
    let before = pins(&fs.join("tc"));
    assert_eq!(before.len(), 1, "{before:?}");
    let old_pin = fs.join("tc").join(&before[0]);
    let map_id = pinned_id(&old_pin);
    let out = ok(tcbpf(
        &format!(
            "-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj {}",
            object("upgrade_ons_v2.o")
        ),
        &fs.path,
    ));
    let after = pins(&fs.join("tc"));
    assert_eq!(
        after.len(),
        1,
        "one pin, in the new object's namespace: {after:?}\n{out}"
    );
    assert_ne!(after, before, "{out}");
    let new_pin = fs.join("tc").join(&after[0]);
    assert_eq!(pinned_id(&new_pin), map_id, "the map is reused");
    assert!(map_ids_of(filter_prog(&net)).contains(&map_id));
    let old_dir = old_pin.parent().unwrap();
    assert!(!old_dir.exists(), "{} stays", old_dir.display());
    // Every packet out of v0 counts (ARP too): v2 in slot 1, v1 no more.
    let v1_count = pinned_u64(&new_pin, 0);
    assert_eq!(net.send_udp(7460, 3), 3);
    assert!(pinned_u64(&new_pin, 1) >= 3, "v2 counts in slot 1");
    assert_eq!(pinned_u64(&new_pin, 0), v1_count, "v1 runs no more");
}

#[test]
fn upgrade_usage_is_in_its_docs_page() {
    let (code, out, _) = run_bin(TCBPF, &["filter", "upgrade", "help"]);
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(repo().join("docs/upgrade.md")).unwrap();
    for line in out.lines().take(4) {
        let line = line.trim_start().trim_start_matches("Usage: ");
        assert!(page.contains(line), "docs/upgrade.md lacks: {line}");
    }
}

/// The map ids the program at the hook uses.
fn map_ids_of(prog: u32) -> Vec<u32> {
    let fd = tcbpf::sys::obj::prog_by_id(prog).unwrap();
    tcbpf::sys::info::prog_info(&fd).unwrap().map_ids
}

fn pinned_id(pin: &std::path::Path) -> u32 {
    let m = tcbpf::sys::obj::get_pinned_map(pin, tcbpf::sys::obj::open::RDONLY).unwrap();
    tcbpf::sys::info::map_info(&m).unwrap().id
}

/// The pair with a permanent neighbour entry for b, so no datagram waits
/// (or is dropped) in ARP resolution before it reaches the egress hook.
fn pair() -> VethPair {
    let pair = VethPair::new();
    pair.b
        .ip(&["link", "set", "v1", "address", "02:00:00:77:00:02"]);
    pair.a.ip(&[
        "neigh",
        "replace",
        ADDR_B,
        "lladdr",
        "02:00:00:77:00:02",
        "dev",
        "v0",
        "nud",
        "permanent",
    ]);
    pair
}

/// Sends UDP datagrams from a to b until `stop` (two minutes at most),
/// counting those sent (each has passed v0's egress hook when `send_to`
/// returns).
fn sender(net: &VethPair, stop: &AtomicBool, sent: &AtomicU64) {
    net.a.run(|| {
        let s = std::net::UdpSocket::bind((ADDR_A, 0)).unwrap();
        let to: std::net::SocketAddr = format!("{ADDR_B}:7").parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            if s.send_to(b"upgrade", to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    })
}

/// Sets the flag when dropped: a failing assertion stops the sender too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `line` pausing at each of `points`: at every one but the last it
/// sends 20 datagrams (counted in `sent`; at `copied:counters` they land
/// between the copy and the swap, for the reconciliation to carry) and
/// lets it go on; at the last it SIGKILLs it. False when it ended before.
fn kill_at(
    net: &VethPair,
    line: &str,
    mnt: &std::path::Path,
    points: &[&str],
    sent: &AtomicU64,
) -> bool {
    use std::io::{BufRead, Write};
    let mut child = tcbpf(line, mnt)
        .env(tcbpf::upgrade::checkpoint::PAUSE_AT, points.join(","))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut go_on = child.stdin.take().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut reached = 0;
    let mut text = String::new();
    while reached < points.len() && err.read_line(&mut text).unwrap_or(0) > 0 {
        if text.trim_end() == format!("tcbpf: upgrade paused at {}", points[reached]) {
            reached += 1;
            if reached < points.len() {
                assert_eq!(net.send_udp(7550, 20), 20);
                sent.fetch_add(20, Ordering::Relaxed);
                go_on.write_all(b"\n").unwrap();
            }
        }
        text.clear();
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    reached == points.len()
}

/// The SIGKILL cases: the points to kill at, one run each (the later ones
/// kill the rerun that recovers an interrupted upgrade too).
const KILLS: [&[&str]; 20] = [
    &["swapped"],
    &["found"],
    &["loaded"],
    &["copied:counters"],
    &["txn-preparing"],
    &["txn:counters"],
    &["pinned:counters"],
    &["txn-ready"],
    &["renamed:counters"],
    &["waited"],
    &["reconciling:counters"],
    &["reconciled:counters"],
    &["finished"],
    &["txn-ready", "recover-aborted"],
    &["swapped", "recover-renamed:counters"],
    &["swapped", "recover-waited"],
    &["swapped", "recover-reconciling:counters"],
    &["swapped", "recover-reconciled:counters"],
    &["renamed:counters", "recover-finished"],
    &["reconciling:counters", "recover-reconciled:counters"],
];

#[test]
fn sigkill_at_20_points_under_traffic_then_rerun_counts_every_datagram() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    let txns = fs.join("tcbpf/upgrade");
    attach(&net, &fs, "upgrade_v1.o", "");
    let base = format!("-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj");
    let sent = AtomicU64::new(0);
    let mut states = std::collections::BTreeMap::new();
    let builds = ["upgrade_v2.o", "upgrade_v1.o"];
    for (i, points) in KILLS.iter().enumerate() {
        let target = object(builds[i % 2]);
        let line = format!("{base} {target}");
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let traffic = s.spawn(|| sender(&net, &stop, &sent));
            let _stop = StopOnDrop(&stop);
            while sent.load(Ordering::Relaxed) < 100 * (i as u64 + 1) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let before = filter_prog(&net);
            let before_maps = map_ids_of(before);
            for (run, point) in points.iter().enumerate() {
                // The first run lets datagrams in between copy and swap.
                let pauses: &[&str] = match *point {
                    "found" | "loaded" | "copied:counters" => &[point],
                    _ if run == 0 => &["copied:counters", point],
                    _ => &[point],
                };
                assert!(
                    kill_at(&net, &line, &fs.path, pauses, &sent),
                    "case {i}: the upgrade never paused at {pauses:?}"
                );
                // Old program, old maps, old pins; or the new program
                // with the new maps behind the pins, or a transaction
                // directory that says the renames and the reconciliation
                // are still to do.
                let now = filter_prog(&net);
                let pinned = pinned_id(&pin);
                let state = if now == before {
                    assert!(
                        before_maps.contains(&pinned),
                        "case {i} ({point}): old program, foreign pin"
                    );
                    "old"
                } else if map_ids_of(now).contains(&pinned) {
                    "new"
                } else {
                    assert!(
                        tree(&txns)
                            .iter()
                            .any(|p| !p.contains('/') && !p.ends_with("__preparing")),
                        "case {i} ({point}): new program, old pin, no transaction: {:?}",
                        tree(&fs.path)
                    );
                    // plan shows the waiting transaction and changes nothing.
                    let shown = ok(tcbpf(&format!("{line} plan"), &fs.path));
                    assert!(
                        shown.contains("an upgrade was killed around its swap"),
                        "{shown}"
                    );
                    assert_eq!(filter_prog(&net), now);
                    "new, renames pending in the transaction"
                };
                *states.entry(format!("{point}: {state}")).or_insert(0) += 1;
            }
            // Rerunning the same upgrade completes it.
            let out = ok(tcbpf(&line, &fs.path));
            let after = filter_prog(&net);
            assert_ne!(after, before, "case {i}: {out}");
            assert!(
                map_ids_of(after).contains(&pinned_id(&pin)),
                "case {i}: after the rerun the pin names the running program's map: {out}"
            );
            assert_eq!(
                pins(&fs.join("tc/globals")),
                vec!["counters".to_string()],
                "case {i}: {out}"
            );
            assert_eq!(tree(&txns), Vec::<String>::new(), "case {i}: {out}");
            stop.store(true, Ordering::Relaxed);
            traffic.join().unwrap();
        });
        let sent = sent.load(Ordering::Relaxed);
        assert_eq!(udp_packets(&pin), sent, "case {i} {points:?}: counts");
    }
    eprintln!(
        "{} datagrams, states after SIGKILL: {states:?}",
        sent.load(Ordering::Relaxed)
    );
}

/// The generation of set `name` in the keeper at `sock`, once it is
/// `want` (5 s at most).
fn wait_generation(sock: &str, name: &str, want: u64) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        last = serde_json::from_str(&ok(tcbpf_cmd(&["-j", "keeper", "list", sock]))).unwrap();
        let set = last["sets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned();
        if let Some(set) = set {
            if set["generation"] == want {
                return set;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("set {name} never reached generation {want}: {last}");
}

#[test]
fn a_keeper_set_is_replaced_by_the_upgrade_with_a_new_generation() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("upgrade-keeper");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let sock = k.sock.to_str().unwrap().to_string();
    let import = k.import.to_str().unwrap().to_string();
    let a = &net.a.name;
    attach(&net, &fs, "upgrade_v1.o", &format!("export {import}"));
    let v1_set = wait_generation(&sock, "upgrade_v1.o", 1);
    assert_eq!(v1_set["maps"][0]["bytes_value"], 16, "{v1_set}");
    assert_eq!(net.send_udp(7600, 12), 12);
    ok(tcbpf(
        &format!(
            "-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj {} export {import}",
            object("upgrade_v2.o")
        ),
        &fs.path,
    ));
    let v2_set = wait_generation(&sock, "upgrade_v1.o", 2);
    let counters = v2_set["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "counters")
        .unwrap()
        .clone();
    assert_eq!(counters["bytes_value"], 24, "the new layout: {v2_set}");
    let text = ok(tcbpf_cmd(&["keeper", "list", &sock]));
    assert!(text.contains("generation 2"), "{text}");
    // A client re-attaching gets the new map with the carried-over counts.
    assert_eq!(net.send_udp(7600, 3), 3);
    let got: Value = serde_json::from_str(&ok(tcbpf_cmd(&[
        "-j",
        "map",
        "lookup",
        "keeper",
        &sock,
        "upgrade_v1.o/counters",
        "key",
        "17",
    ])))
    .unwrap();
    assert_eq!(got["value"]["packets"], 15, "{got}");
    assert_eq!(got["value"]["drops"], 0, "{got}");
}

#[test]
fn tcx_link_upgrade_from_the_command_line() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let link = fs.join("upg-link");
    let pin = fs.join("tc/globals/counters");
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 tcx egress bpf obj {} link {}",
            object("upgrade_v1.o"),
            link.display()
        ),
        &fs.path,
    ));
    assert_eq!(net.send_udp(7700, 4), 4);
    let (_, before) = tcbpf::attach::tcx::open_pinned(&link).unwrap();
    let out = ok(tcbpf(
        &format!(
            "-n {a} filter upgrade dev v0 tcx egress link {} bpf obj {}",
            link.display(),
            object("upgrade_v3.o")
        ),
        &fs.path,
    ));
    assert!(out.contains(&format!("link {}", before.id)), "{out}");
    let (_, after) = tcbpf::attach::tcx::open_pinned(&link).unwrap();
    assert_eq!(after.id, before.id, "the same link");
    assert_ne!(after.prog_id, before.prog_id, "a new program behind it");
    assert_eq!(net.send_udp(7700, 2), 2);
    assert_eq!(udp_packets(&pin), 6);
    ok(tcbpf(
        &format!(
            "-n {a} filter del dev v0 tcx egress link {}",
            link.display()
        ),
        &fs.path,
    ));
}

/// A v1 → v2 upgrade of v0's egress filter (pref 1 handle 1) SIGKILLed
/// right after its swap, under UDP traffic (20 datagrams between its copy
/// and its swap, for the reconciliation to carry): the hook runs v2, the
/// pin still names v1's map, the transaction directory waits. Returns
/// v2's program id; `sent` counts every datagram.
fn killed_after_swap(net: &VethPair, fs: &Bpffs, sent: &AtomicU64) -> u32 {
    let a = &net.a.name;
    let hook = "egress pref 1 handle 1";
    let add = format!("-n {a} filter add dev v0 {hook} bpf da obj");
    let upgrade = format!("-n {a} filter upgrade dev v0 {hook} bpf obj");
    kill_after_swap(net, fs, sent, (&add, &upgrade), &|| filter_prog(net))
}

/// [`killed_after_swap`] with these `filter add` and `filter upgrade`
/// lines (the object's path appended to each) and the program at the
/// hook from `running`.
fn kill_after_swap(
    net: &VethPair,
    fs: &Bpffs,
    sent: &AtomicU64,
    (add, upgrade): (&str, &str),
    running: &dyn Fn() -> u32,
) -> u32 {
    ok(tcbpf(
        &format!("{add} {}", object("upgrade_v1.o")),
        &fs.path,
    ));
    let v1 = running();
    let line = format!("{upgrade} {}", object("upgrade_v2.o"));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let traffic = s.spawn(|| sender(net, &stop, sent));
        let _stop = StopOnDrop(&stop);
        while sent.load(Ordering::Relaxed) < 200 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            kill_at(net, &line, &fs.path, &["copied:counters", "swapped"], sent),
            "the upgrade never paused at swapped"
        );
        stop.store(true, Ordering::Relaxed);
        traffic.join().unwrap();
    });
    let v2 = running();
    assert_ne!(
        v2, v1,
        "killed after its swap, the hook runs the new program"
    );
    let pin = fs.join("tc/globals/counters");
    assert!(map_ids_of(v1).contains(&pinned_id(&pin)));
    let waiting = tree(&fs.join("tcbpf/upgrade"));
    assert!(
        waiting
            .iter()
            .any(|p| !p.contains('/') && !p.ends_with("__preparing")),
        "{waiting:?}"
    );
    v2
}

#[test]
fn filter_del_after_a_killed_upgrade_completes_it_first() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    let sent = AtomicU64::new(0);
    let v2 = killed_after_swap(&net, &fs, &sent);
    // filter show says a transaction waits (stderr: stdout is tc's).
    let shown = output(tcbpf(
        &format!("-n {a} filter show dev v0 egress"),
        &fs.path,
    ));
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown
            .stderr
            .contains("an upgrade was killed around its swap"),
        "{}",
        shown.stderr
    );
    // The new program counts into its own map meanwhile.
    assert_eq!(net.send_udp(7551, 30), 30);
    sent.fetch_add(30, Ordering::Relaxed);
    let v2_maps = map_ids_of(v2);
    let del = output(tcbpf(
        &format!("-n {a} filter del dev v0 egress pref 1 handle 1"),
        &fs.path,
    ));
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert!(
        del.stderr
            .contains("finished an upgrade killed after its swap"),
        "{}",
        del.stderr
    );
    assert_eq!(tc(&net.a, "filter show dev v0 egress").trim(), "");
    assert_eq!(tree(&fs.join("tcbpf/upgrade")), Vec::<String>::new());
    assert_eq!(pins(&fs.join("tc/globals")), vec!["counters".to_string()]);
    // The pin names v2's map, reconciled: every datagram sent counted.
    assert!(v2_maps.contains(&pinned_id(&pin)));
    assert_eq!(udp_packets(&pin), sent.load(Ordering::Relaxed));
}

#[test]
fn filter_replace_after_a_killed_upgrade_completes_it_first() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    let sent = AtomicU64::new(0);
    let v2 = killed_after_swap(&net, &fs, &sent);
    let replace = output(tcbpf(
        &format!(
            "-n {a} filter replace dev v0 egress pref 1 handle 1 bpf da obj {}",
            object("upgrade_v2.o")
        ),
        &fs.path,
    ));
    assert_eq!(replace.code, 0, "{}", replace.stderr);
    assert!(
        replace
            .stderr
            .contains("finished an upgrade killed after its swap"),
        "{}",
        replace.stderr
    );
    let now = filter_prog(&net);
    assert_ne!(now, v2, "the replaced program runs");
    assert!(map_ids_of(now).contains(&pinned_id(&pin)));
    assert_eq!(tree(&fs.join("tcbpf/upgrade")), Vec::<String>::new());
    assert_eq!(pins(&fs.join("tc/globals")), vec!["counters".to_string()]);
    // The new program counts on from the carried, reconciled counts.
    assert_eq!(net.send_udp(7552, 30), 30);
    sent.fetch_add(30, Ordering::Relaxed);
    assert_eq!(udp_packets(&pin), sent.load(Ordering::Relaxed));
}

#[test]
fn a_transaction_that_cannot_be_completed_stops_filter_del() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let sent = AtomicU64::new(0);
    let v2 = killed_after_swap(&net, &fs, &sent);
    let txns = fs.join("tcbpf/upgrade");
    let dir = std::fs::read_dir(&txns)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    // The record of the new program lost: which program runs cannot be
    // told any more.
    std::fs::remove_file(dir.join("prog-new")).unwrap();
    let before = tree(&txns);
    let (code, err) = fails(tcbpf(
        &format!("-n {a} filter del dev v0 egress pref 1 handle 1"),
        &fs.path,
    ));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains("remove"), "{err}");
    assert_eq!(filter_prog(&net), v2, "the filter stays");
    assert_eq!(tree(&txns), before, "the transaction stays");
}

#[test]
fn chain_apply_after_a_killed_tcx_upgrade_completes_it_first() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let link = fs.join("upg-link");
    let pin = fs.join("tc/globals/counters");
    let sent = AtomicU64::new(0);
    let add = format!(
        "-n {a} filter add dev v0 tcx egress link {} bpf obj",
        link.display()
    );
    let upgrade = format!(
        "-n {a} filter upgrade dev v0 tcx egress link {} bpf obj",
        link.display()
    );
    let at_link = || tcbpf::attach::tcx::open_pinned(&link).unwrap().1.prog_id;
    let v2 = kill_after_swap(&net, &fs, &sent, (&add, &upgrade), &at_link);
    let shown = output(tcbpf(
        &format!("-n {a} filter show dev v0 tcx egress"),
        &fs.path,
    ));
    assert!(
        shown
            .stderr
            .contains("an upgrade was killed around its swap"),
        "{}",
        shown.stderr
    );
    // A chain of v2 after the upgraded link: its program takes the pinned
    // counters, which must be v2's map with the reconciled counts.
    let dir = TempDir::new("chain-txn");
    let file = dir.join("chain");
    std::fs::write(&file, format!("obj {}\n", object("upgrade_v2.o"))).unwrap();
    let applied = output(tcbpf(
        &format!("-n {a} chain apply dev v0 tcx egress {}", file.display()),
        &fs.path,
    ));
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        applied
            .stderr
            .contains("finished an upgrade killed after its swap"),
        "{}",
        applied.stderr
    );
    assert_eq!(at_link(), v2, "the upgraded link keeps its program");
    assert!(map_ids_of(v2).contains(&pinned_id(&pin)));
    assert_eq!(tree(&fs.join("tcbpf/upgrade")), Vec::<String>::new());
    assert_eq!(udp_packets(&pin), sent.load(Ordering::Relaxed));
    ok(tcbpf(
        &format!("-n {a} filter del dev v0 tcx egress"),
        &fs.path,
    ));
}

#[test]
fn qdisc_del_after_a_killed_upgrade_completes_it_first() {
    tcbpf_testkit::require_root!();
    let net = pair();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    let sent = AtomicU64::new(0);
    let v2 = killed_after_swap(&net, &fs, &sent);
    let v2_maps = map_ids_of(v2);
    let del = output(tcbpf(&format!("-n {a} qdisc del dev v0 clsact"), &fs.path));
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert!(
        del.stderr
            .contains("finished an upgrade killed after its swap"),
        "{}",
        del.stderr
    );
    assert!(!tc(&net.a, "qdisc show dev v0").contains("clsact"));
    assert_eq!(tree(&fs.join("tcbpf/upgrade")), Vec::<String>::new());
    assert_eq!(pins(&fs.join("tc/globals")), vec!["counters".to_string()]);
    assert!(v2_maps.contains(&pinned_id(&pin)));
    assert_eq!(udp_packets(&pin), sent.load(Ordering::Relaxed));
}

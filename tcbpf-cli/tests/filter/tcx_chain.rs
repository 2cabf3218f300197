//! Several programs on one tcx hook, in a declared order: `filter add … tcx
//! DIR [ head | tail | before … | after … ] [ revision N ]`, `filter replace
//! … tcx DIR link PATH`, and `filter show … tcx` with the revision. Real
//! traffic over a veth pair between two namespaces; the programs are the
//! functions of chain.o's one section, picked with `program NAME`: each
//! counts the UDP packets it sees and appends its number to the packet's
//! mark, which the last one to run leaves in its `order` map. Run as root.

use std::process::Command;
use tcbpf::sys;
use tcbpf_testkit::*;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");
const PORT: u16 = 7333;

fn tcbpf(line: &str, fs: &Bpffs) -> Command {
    tcbpf_testkit::tcbpf(TCBPF, line.split_whitespace(), Some(&fs.path))
}

/// `filter add dev v1 tcx ingress WHERE bpf obj chain.o sec tc program FUNC [link PIN]`.
fn add(net: &VethPair, fs: &Bpffs, where_: &str, func: &str, link: Option<&str>) -> Command {
    let link = link.map(|l| format!(" link {l}")).unwrap_or_default();
    tcbpf(
        &format!(
            "-n {} filter add dev v1 tcx ingress {where_} bpf obj {} sec tc program {func}{link}",
            net.b.name,
            s(&fixture("chain.o"))
        ),
        fs,
    )
}

/// The hook's programs in run order (name, prog id) and its revision.
fn shown(net: &VethPair, fs: &Bpffs) -> (Vec<(String, u32)>, u64) {
    let out = ok(tcbpf(
        &format!("-j -n {} filter show dev v1 tcx ingress", net.b.name),
        fs,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = v.as_array().unwrap();
    let progs = list
        .iter()
        .map(|e| {
            (
                e["prog"]["name"].as_str().unwrap().to_string(),
                e["prog"]["id"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    let revision = list.first().map_or(0, |e| e["revision"].as_u64().unwrap());
    (progs, revision)
}

/// The u64 at `key` of map `name` of program `prog`.
fn map_u64(prog: &sys::ProgFd, name: &str, key: u32) -> u64 {
    for id in sys::info::prog_info(prog).unwrap().map_ids {
        let m = sys::obj::map_by_id(id, 0).unwrap();
        if sys::info::map_info(&m).unwrap().name == name {
            let mut v = [0u8; 8];
            sys::map::lookup(&m, &key.to_ne_bytes(), &mut v, 0).unwrap();
            return u64::from_ne_bytes(v);
        }
    }
    panic!("no map {name}")
}

fn prog(id: u32) -> sys::ProgFd {
    sys::obj::prog_by_id(id).unwrap()
}

/// tcN's count (hits[N]) and its `order` value, for the program `id`.
fn hits_and_order(id: u32, n: u32) -> (u64, u64) {
    let p = prog(id);
    (map_u64(&p, "hits", n), map_u64(&p, "order", 0))
}

#[test]
fn tcx_next_goes_on_and_tcx_pass_ends_the_chain() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    for f in ["tc1", "tc2", "tc4", "tc5"] {
        ok(add(&net, &fs, "", f, None));
    }
    let (progs, _) = shown(&net, &fs);
    let names: Vec<&str> = progs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["tc1", "tc2", "tc4", "tc5"]);
    assert_eq!(net.send_udp(PORT, 10), 10, "TCX_PASS lets the packets in");
    assert_eq!(hits_and_order(progs[0].1, 1).0, 10);
    assert_eq!(hits_and_order(progs[1].1, 2).0, 10);
    assert_eq!(
        hits_and_order(progs[2].1, 4),
        (10, 124),
        "tc1, tc2, tc4 in that order"
    );
    assert_eq!(
        hits_and_order(progs[3].1, 5).0,
        0,
        "nothing runs after TCX_PASS"
    );
}

#[test]
fn programs_run_in_the_order_head_tail_before_and_after_put_them() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let (l1, l2) = (fs.arg("l1"), fs.arg("l2"));
    ok(add(&net, &fs, "", "tc1", Some(&l1)));
    ok(add(&net, &fs, "tail", "tc2", Some(&l2)));
    ok(add(&net, &fs, &format!("before link {l1}"), "tc3", None));
    let (progs, _) = shown(&net, &fs);
    let names = |p: &[(String, u32)]| p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&progs), ["tc3", "tc1", "tc2"]);
    assert_eq!(net.send_udp(PORT, 7), 7);
    let tc2 = progs[2].1;
    assert_eq!(hits_and_order(tc2, 2), (7, 312), "tc3, then tc1, then tc2");

    // After a program named by id, and at the head.
    let tc1 = progs[1].1;
    ok(add(&net, &fs, &format!("after id {tc1}"), "tc5", None));
    ok(add(&net, &fs, "head", "tc1", None));
    let (progs, _) = shown(&net, &fs);
    assert_eq!(names(&progs), ["tc1", "tc3", "tc1", "tc5", "tc2"]);
    assert_eq!(net.send_udp(PORT, 5), 5);
    assert_eq!(hits_and_order(tc2, 2), (12, 13152));

    // Before a pinned program; an anchor not on the hook is refused.
    let pin = fs.arg("tc/p5");
    ok(tcbpf(
        &format!(
            "obj load {} sec tc program tc5 bpffs {} pin {pin}",
            s(&fixture("chain.o")),
            fs.as_str()
        ),
        &fs,
    ));
    let (code, err) = fails(add(&net, &fs, "before pinned m:p5", "tc4", None));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not on this hook"), "{err}");
    ok(add(&net, &fs, &format!("before id {tc2}"), "tc4", None));
    let (progs, _) = shown(&net, &fs);
    assert_eq!(names(&progs), ["tc1", "tc3", "tc1", "tc5", "tc4", "tc2"]);
    assert_eq!(net.send_udp(PORT, 4), 4);
    assert_eq!(hits_and_order(progs[4].1, 4), (4, 13154));
    assert_eq!(
        hits_and_order(tc2, 2).0,
        12,
        "tc2 is behind tc4's TCX_PASS now"
    );
}

#[test]
fn two_concurrent_attaches_at_one_revision_one_wins_one_is_told_the_revision() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    ok(add(&net, &fs, "", "tc1", None));
    let (_, rev) = shown(&net, &fs);
    assert!(rev > 0);
    let children: Vec<_> = ["tc2", "tc3"]
        .iter()
        .map(|f| {
            add(&net, &fs, &format!("revision {rev}"), f, None)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won: Vec<_> = results.iter().filter(|r| r.status.success()).collect();
    let lost: Vec<_> = results.iter().filter(|r| !r.status.success()).collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "{results:?}");
    assert_eq!(lost[0].status.code(), Some(4));
    let err = String::from_utf8_lossy(&lost[0].stderr);
    assert!(
        err.contains(&format!("its revision is now {}, not {rev}", rev + 1)),
        "{err}"
    );
    let (progs, now) = shown(&net, &fs);
    assert_eq!(progs.len(), 2, "the loser attached nothing");
    assert_eq!(now, rev + 1);
    // The loser's pins and directories: none left besides the winner's link.
    let links = std::fs::read_dir(fs.join("tc/links")).unwrap().count();
    assert_eq!(links, 2);
}

#[test]
fn replace_under_continuous_traffic_loses_no_packet() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let link = fs.arg("swap");
    ok(add(&net, &fs, "", "tc1", Some(&link)));
    let (progs, _) = shown(&net, &fs);
    let old = prog(progs[0].1); // kept open to read its counts after the swap
                                // 2000 datagrams, one every 0.5 ms, drained as they come; the swap
                                // lands in the middle.
    const SENT: usize = 2000;
    let rx = net.b.run(|| {
        let s = std::net::UdpSocket::bind((ADDR_B, PORT)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(1000)))
            .unwrap();
        s
    });
    let received = std::thread::scope(|sc| {
        let receiver = sc.spawn(|| {
            let (mut got, mut buf) = (0usize, [0u8; 64]);
            while rx.recv_from(&mut buf).is_ok() {
                got += 1;
            }
            got
        });
        sc.spawn(|| {
            net.a.run(|| {
                let tx = std::net::UdpSocket::bind((ADDR_A, 0)).unwrap();
                for i in 0..SENT {
                    tx.send_to(format!("p{i}").as_bytes(), (ADDR_B, PORT))
                        .unwrap();
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = ok(tcbpf(
            &format!(
                "-j -n {} filter replace dev v1 tcx ingress link {link} bpf obj {} sec tc program tc2",
                net.b.name,
                s(&fixture("chain.o"))
            ),
            &fs,
        ));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["old_prog_id"], progs[0].1);
        receiver.join().unwrap()
    });
    assert_eq!(received, SENT);
    let (now, _) = shown(&net, &fs);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].0, "tc2", "the link now runs tc2");
    let before = map_u64(&old, "hits", 1);
    let after = hits_and_order(now[0].1, 2).0;
    assert!(before > 0 && after > 0, "both ran: {before} + {after}");
    assert_eq!(
        before + after,
        SENT as u64,
        "every packet met exactly one of them"
    );
}

/// `chain apply dev v1 tcx ingress FILE` with FILE holding `lines`; -j output.
fn apply(net: &VethPair, fs: &Bpffs, dir: &TempDir, lines: &[&str]) -> serde_json::Value {
    let file = dir.join("hook.chain");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = ok(tcbpf(
        &format!(
            "-j -n {} chain apply dev v1 tcx ingress {}",
            net.b.name,
            s(&file)
        ),
        fs,
    ));
    serde_json::from_str(&out).unwrap()
}

fn chain_line(func: &str) -> String {
    format!("obj {} sec tc program {func}", s(&fixture("chain.o")))
}

#[test]
fn chain_apply_orders_the_hook_loads_each_object_once_and_changes_only_what_differs() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("chain");
    // Someone else's program, first on the hook: it stays throughout.
    ok(add(&net, &fs, "", "tc5", None));
    let names = |p: &[(String, u32)]| p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let (l1, l2, l3) = (chain_line("tc1"), chain_line("tc2"), chain_line("tc3"));

    let v = apply(&net, &fs, &dir, &["# three from one object", &l1, &l2, &l3]);
    assert_eq!(v["attached"].as_array().unwrap().len(), 3);
    let (progs, rev) = shown(&net, &fs);
    assert_eq!(names(&progs), ["tc5", "tc1", "tc2", "tc3"]);
    assert_eq!(v["revision"], rev);
    // One load: the three programs use the same maps.
    let maps = |id: u32| sys::info::prog_info(prog(id)).unwrap().map_ids;
    assert_eq!(maps(progs[1].1), maps(progs[2].1));
    assert_eq!(maps(progs[1].1), maps(progs[3].1));
    assert_ne!(maps(progs[0].1), maps(progs[1].1));
    assert_eq!(net.send_udp(PORT, 6), 6);
    let tc3 = prog(progs[3].1);
    assert_eq!(
        map_u64(&tc3, "order", 0),
        5123,
        "tc5, then the chain in order"
    );
    for n in 1..=3 {
        assert_eq!(map_u64(&tc3, "hits", n), 6, "shared hits[{n}]");
    }

    // The same file again: nothing to do, the revision stays.
    let v = apply(&net, &fs, &dir, &[&l1, &l2, &l3]);
    assert_eq!(v["kept"].as_array().unwrap().len(), 3);
    assert_eq!(v["attached"].as_array().unwrap().len(), 0);
    assert_eq!(v["revision"], rev);

    // tc2 leaves: the others keep their links.
    let v = apply(&net, &fs, &dir, &[&l1, &l3]);
    assert_eq!(v["detached"].as_array().unwrap().len(), 1);
    assert_eq!(v["attached"].as_array().unwrap().len(), 0);
    let (progs, _) = shown(&net, &fs);
    assert_eq!(names(&progs), ["tc5", "tc1", "tc3"]);
    assert_eq!(net.send_udp(PORT, 2), 2);
    assert_eq!(map_u64(&tc3, "order", 0), 513);

    // Reordered: one object, so all of it is loaded and attached anew.
    let v = apply(&net, &fs, &dir, &[&l3, &l1]);
    assert_eq!(v["attached"].as_array().unwrap().len(), 2);
    assert_eq!(v["detached"].as_array().unwrap().len(), 2);
    let (progs, _) = shown(&net, &fs);
    assert_eq!(names(&progs), ["tc5", "tc3", "tc1"]);
    assert_eq!(net.send_udp(PORT, 3), 3);
    let tc1 = prog(progs[2].1);
    assert_eq!(map_u64(&tc1, "order", 0), 531);
    assert_eq!(map_u64(&tc1, "hits", 3), 3, "the new pair shares its maps");
    let pins = std::fs::read_dir(fs.join("tc/chains/v1-ingress"))
        .unwrap()
        .count();
    assert_eq!(pins, 2, "one pin per chain link");
    let text = ok(tcbpf(
        &format!("-n {} filter show dev v1 tcx ingress", net.b.name),
        &fs,
    ));
    assert!(text.contains("/tc/chains/v1-ingress/"), "{text}");
}

#[test]
fn chain_apply_that_fails_leaves_the_hook_as_it_was() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("chain-fail");
    // A program pinned and already on the hook: listing it again must fail
    // (the kernel takes a program once per hook), after tc1 went in.
    ok(tcbpf(
        &format!(
            "obj load {} sec tc program tc4 bpffs {} pin {}",
            s(&fixture("chain.o")),
            fs.as_str(),
            fs.arg("tc/p4")
        ),
        &fs,
    ));
    ok(tcbpf(
        &format!(
            "-n {} filter add dev v1 tcx ingress bpf pinned m:p4",
            net.b.name
        ),
        &fs,
    ));
    let before = shown(&net, &fs);
    let file = dir.join("bad.chain");
    std::fs::write(&file, format!("{}\npinned m:p4\n", chain_line("tc1"))).unwrap();
    let (code, err) = fails(tcbpf(
        &format!(
            "-n {} chain apply dev v1 tcx ingress {}",
            net.b.name,
            s(&file)
        ),
        &fs,
    ));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("already attached"), "{err}");
    assert!(err.contains("the hook is as it was"), "{err}");
    let after = shown(&net, &fs);
    assert_eq!(after.0, before.0, "same programs, same order");
    assert_eq!(
        std::fs::read_dir(fs.join("tc/chains/v1-ingress"))
            .unwrap()
            .count(),
        0,
        "no pin left"
    );
    // A bad line is refused before anything is touched.
    std::fs::write(&file, "obj x.o\nbogus\n").unwrap();
    let (code, err) = fails(tcbpf(
        &format!(
            "-n {} chain apply dev v1 tcx ingress {}",
            net.b.name,
            s(&file)
        ),
        &fs,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2: 'bogus'"), "{err}");
}

#[test]
fn chain_apply_retries_while_others_change_the_hook_and_ends_in_order() {
    tcbpf_testkit::require_root!();
    use std::sync::atomic::{AtomicBool, Ordering};
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("chain-churn");
    let ifindex = net.b.run(|| {
        let sock = tcbpf::tc::Socket::open().unwrap();
        tcbpf::tc::device::ifindex(&sock, "v1").unwrap()
    });
    // Someone else keeps attaching and detaching programs (TCX_NEXT) on
    // the hook, every 40 ms, while tcbpf applies chains (each tcx change
    // waits for an RCU grace period, so a busier hook would outrun any
    // compare-and-swap attach).
    let foreign: Vec<sys::ProgFd> = (0..16).map(|_| constant_prog(-1)).collect();
    let stop = AtomicBool::new(false);
    /// Stops the churn when the applies end, also by a failed assertion.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let (l1, l2, l3) = (chain_line("tc1"), chain_line("tc2"), chain_line("tc3"));
    let mut retries = 0;
    std::thread::scope(|sc| {
        sc.spawn(|| {
            net.b.run(|| {
                use std::os::fd::AsFd;
                let mut held = std::collections::VecDeque::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if held.len() == 8 {
                        held.pop_front(); // dropping the link detaches it
                    }
                    let p = &foreign[i % foreign.len()];
                    if let Ok(l) = tcbpf::attach::tcx::attach(
                        ifindex,
                        tcbpf::attach::tcx::Direction::Ingress,
                        p.as_fd(),
                    ) {
                        held.push_back(l);
                    }
                    i += 1;
                    std::thread::sleep(std::time::Duration::from_millis(40));
                }
            })
        });
        let _stop = Stop(&stop);
        for round in 0..20 {
            let lines = if round % 2 == 0 {
                [&l1, &l2, &l3]
            } else {
                [&l3, &l2, &l1]
            };
            let v = apply(&net, &fs, &dir, &[lines[0], lines[1], lines[2]]);
            retries += v["retries"].as_u64().unwrap();
            let (progs, _) = shown(&net, &fs);
            let ours: Vec<&str> = progs
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| n.starts_with("tc"))
                .filter(|n| *n != "tc_const")
                .collect();
            let want = if round % 2 == 0 {
                ["tc1", "tc2", "tc3"]
            } else {
                ["tc3", "tc2", "tc1"]
            };
            assert_eq!(ours, want, "round {round}: {progs:?}");
        }
    });
    eprintln!("retries over 20 applies: {retries}");
    assert!(retries > 0, "the churn never made an apply retry");
}

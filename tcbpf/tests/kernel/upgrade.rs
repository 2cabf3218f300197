//! Live upgrade against the real kernel: the classifier of `bpf/upgrade_*.c`
//! on a veth's egress (cls_bpf or tcx), upgraded between its builds while
//! a sender pushes UDP datagrams through it. The packet counters summed
//! at the end equal the datagrams sent (no update lost across a swap, no
//! packet through an empty hook); refused and failing upgrades leave the
//! program at the hook, the maps and the pins as they were.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tcbpf::attach::cls_bpf as filter;
use tcbpf::attach::tcx::Direction;
use tcbpf::attach::{attach, AttachTarget, Hook as AttachHook};
use tcbpf::load::{load_file, LoadedObject};
use tcbpf::sys::{self, info, map as sysmap};
use tcbpf::tc::{device, Socket, TcHandle};
use tcbpf::upgrade::plan::{Action, Mode};
use tcbpf::upgrade::{self, Hook, Request, Step};
use tcbpf_testkit::*;

const UDP: u32 = 17;
const MAC_B: &str = "02:00:00:77:00:02";

/// The pair with a permanent neighbour entry for b, so no datagram waits
/// (or is dropped) in ARP resolution before it reaches the egress hook.
fn pair() -> VethPair {
    let pair = VethPair::new();
    pair.b.ip(&["link", "set", "v1", "address", MAC_B]);
    pair.a.ip(&[
        "neigh",
        "replace",
        ADDR_B,
        "lladdr",
        MAC_B,
        "dev",
        "v0",
        "nud",
        "permanent",
    ]);
    pair
}

fn ifindex() -> u32 {
    device::ifindex(&Socket::open().unwrap(), "v0").unwrap()
}

/// Loads `name` and attaches it as a da filter at egress pref 1 handle 1.
fn attach_filter(fs: &Bpffs, name: &str) -> LoadedObject {
    let obj = load_file(&fixture(name), &fs.options()).unwrap();
    let target = AttachTarget {
        pref: 1,
        handle: 1,
        direct_action: true,
        ..AttachTarget::new(ifindex(), AttachHook::Parent(TcHandle::EGRESS))
    };
    attach(
        &target,
        obj.main_program().fd.as_fd().into(),
        &obj.filter_name(),
    )
    .unwrap();
    obj
}

fn request(fs: &Bpffs, hook: Hook, name: &str) -> Request {
    Request {
        ifindex: ifindex(),
        hook,
        object: fixture(name),
        load: fs.options(),
        modes: Vec::new(),
    }
}

fn filter_hook() -> Hook {
    Hook::Filter {
        parent: TcHandle::EGRESS,
        pref: 1,
        handle: 1,
    }
}

/// The program id of the filter at egress pref 1 handle 1.
fn filter_prog() -> u32 {
    let sel = filter::FilterSelector {
        ifindex: ifindex(),
        parent: TcHandle::EGRESS,
        pref: 1,
        protocol: None,
        handle: 0,
        chain: None,
    };
    let found: Vec<u32> = filter::list(&Socket::open().unwrap(), &sel)
        .unwrap()
        .into_iter()
        .filter_map(|f| f.bpf.and_then(|b| b.prog_id))
        .collect();
    assert_eq!(found.len(), 1, "one filter at pref 1: {found:?}");
    found[0]
}

fn counters_pin(fs: &Bpffs) -> PathBuf {
    fs.join("tc/globals/counters")
}

fn pinned_id(path: &Path) -> u32 {
    let m = sys::obj::get_pinned_map(path, sys::obj::open::RDONLY).unwrap();
    info::map_info(&m).unwrap().id
}

/// packets of key `key` in the map pinned at `path`.
fn packets(path: &Path, key: u32) -> u64 {
    let m = sys::obj::get_pinned_map(path, sys::obj::open::RDONLY).unwrap();
    let size = info::map_info(&m).unwrap().value_size as usize;
    let mut v = vec![0u8; size];
    match sysmap::lookup(&m, &key.to_ne_bytes(), &mut v, 0) {
        Ok(()) => u64::from_ne_bytes(v[..8].try_into().unwrap()),
        Err(e) if e.errno() == Some(libc::ENOENT) => 0,
        Err(e) => panic!("lookup: {e}"),
    }
}

/// Sets the flag when dropped: a failing assertion stops the sender too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends UDP datagrams from a to b until `stop` (two minutes at most),
/// counting those sent.
fn sender(pair: &VethPair, stop: &AtomicBool, sent: &AtomicU64) {
    pair.a.run(|| {
        let s = std::net::UdpSocket::bind((ADDR_A, 0)).unwrap();
        let to = format!("{ADDR_B}:7")
            .parse::<std::net::SocketAddr>()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            if s.send_to(b"upgrade", to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// The files a directory holds (temporary pins must not stay behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn cycles() -> usize {
    std::env::var("TCBPF_UPGRADE_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

#[test]
fn upgrade_cycles_under_traffic_lose_no_count() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let builds = ["upgrade_v2.o", "upgrade_v3.o", "upgrade_v1.o"];
    let n = cycles();
    let mut waits = Vec::new();
    std::thread::scope(|s| {
        let _v1 = pair.a.run(|| attach_filter(&fs, "upgrade_v1.o"));
        let traffic = s.spawn(|| sender(&pair, &stop, &sent));
        let _stop = StopOnDrop(&stop);
        // Each upgrade must happen with datagrams in flight.
        let mut last = 0;
        for i in 0..n * builds.len() {
            for _ in 0..2000 {
                if sent.load(Ordering::Relaxed) >= last + 200 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            last = sent.load(Ordering::Relaxed);
            let build = builds[i % builds.len()];
            let outcome = pair.a.run(|| {
                let req = request(&fs, filter_hook(), build);
                let prepared = upgrade::prepare(&req).unwrap();
                let out = prepared.execute(&req).unwrap();
                assert_eq!(Some(filter_prog()), out.report.new_prog, "{build}");
                out
            });
            let object = outcome.object.as_ref().unwrap();
            let counters_id = info::map_info(&object.map("counters").unwrap().fd)
                .unwrap()
                .id;
            assert_eq!(pinned_id(&counters_pin(&fs)), counters_id, "{build}");
            assert!(
                outcome
                    .report
                    .notes
                    .iter()
                    .all(|n| !n.contains("reconciling:") && !n.contains("waiting")),
                "{:?}",
                outcome.report.notes
            );
            waits.push(outcome.report.wait.unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        traffic.join().unwrap();
    });
    let sent = sent.load(Ordering::Relaxed);
    let counted = packets(&counters_pin(&fs), UDP);
    eprintln!(
        "{} upgrades, {sent} datagrams sent, {counted} counted; longest wait for the old program {:?}",
        n * builds.len(),
        waits.iter().max().unwrap()
    );
    assert!(sent > 0);
    assert_eq!(counted, sent, "every datagram counted exactly once");
    assert_eq!(
        listing(&fs.join("tc/globals")),
        vec!["counters".to_string()],
        "no temporary pin left"
    );
    assert!(
        listing(&fs.join("tcbpf/upgrade")).is_empty(),
        "no transaction left"
    );
}

#[test]
fn tcx_link_upgrade_keeps_the_link_and_the_counts() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    let link_pin = fs.join("link");
    let _v1 = pair.a.run(|| {
        let obj = load_file(&fixture("upgrade_v1.o"), &fs.options()).unwrap();
        let target = AttachTarget::new(ifindex(), AttachHook::Tcx(Direction::Egress));
        let (link, _) = attach(&target, obj.main_program().fd.as_fd().into(), "")
            .unwrap()
            .into_link()
            .unwrap();
        sys::obj::pin(&link, &link_pin).unwrap();
        obj
    });
    assert_eq!(pair.send_udp(7100, 20), 20);
    let hook = Hook::Tcx {
        direction: Direction::Egress,
        link: Some(link_pin.clone()),
    };
    let out = pair.a.run(|| {
        let req = request(&fs, hook.clone(), "upgrade_v2.o");
        upgrade::prepare(&req).unwrap().execute(&req).unwrap()
    });
    let (link, info) = tcbpf::attach::tcx::open_pinned(&link_pin).unwrap();
    drop(link);
    assert_eq!(Some(info.prog_id), out.report.new_prog);
    assert_eq!(packets(&counters_pin(&fs), UDP), 20);
    assert_eq!(pair.send_udp(7100, 5), 5);
    assert_eq!(packets(&counters_pin(&fs), UDP), 25);
    let _ = std::fs::remove_file(&link_pin);
}

#[test]
fn plan_for_each_pair_shows_the_expected_decisions() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    pair.a.run(|| {
        let mut held = attach_filter(&fs, "upgrade_v1.o");
        let plan = |name: &str| {
            upgrade::prepare(&request(&fs, filter_hook(), name))
                .unwrap()
                .report()
        };
        let r = plan("upgrade_v2.o");
        let counters = &r.maps.iter().find(|m| m.plan.name == "counters").unwrap();
        let Action::Migrate(m) = &counters.plan.action else {
            panic!("{r:?}")
        };
        assert_eq!(m.mode, Mode::Sum);
        assert_eq!(m.changes.added, vec!["drops"]);
        let sizes = &r.maps.iter().find(|m| m.plan.name == "sizes").unwrap();
        assert_eq!(sizes.plan.action, Action::Fresh("new map".into()));

        let refused = plan("upgrade_refused.o");
        let (map, why) = refused.refusal().unwrap();
        assert_eq!(map, "counters");
        assert!(why.contains("member 'bytes'"), "{why}");

        // v2 → v3 and v3 → v1, each from a running build.
        for (from, to) in [
            ("upgrade_v2.o", "upgrade_v3.o"),
            ("upgrade_v3.o", "upgrade_v1.o"),
        ] {
            let req = request(&fs, filter_hook(), from);
            let out = upgrade::prepare(&req).unwrap().execute(&req).unwrap();
            held = out.object.unwrap();
            let r = plan(to);
            let c = r.maps.iter().find(|m| m.plan.name == "counters").unwrap();
            let Action::Migrate(m) = &c.plan.action else {
                panic!("{r:?}")
            };
            if to == "upgrade_v3.o" {
                assert_eq!(m.changes.widened, vec!["drops: __u32 → __u64"]);
                assert_eq!(m.definition, vec!["max_entries 256 → 1024"]);
                let s = r.maps.iter().find(|m| m.plan.name == "sizes").unwrap();
                assert_eq!(s.plan.action, Action::Reuse);
            } else {
                assert_eq!(m.changes.dropped, vec!["drops"]);
                assert_eq!(m.definition, vec!["max_entries 1024 → 256"]);
                assert_eq!(r.dropped, vec!["sizes".to_string()]);
            }
        }
        drop(held);
    });
}

/// Runs an upgrade that must fail at `step`, and checks that the hook's
/// program, the pin and the counts are as before.
fn fails_and_changes_nothing(fs: &Bpffs, pair: &VethPair, build: &str, step: Step, map: &str) {
    let before = pair.a.run(filter_prog);
    let pin_before = pinned_id(&counters_pin(fs));
    let listing_before = listing(&fs.join("tc/globals"));
    let err = pair.a.run(|| {
        let req = request(fs, filter_hook(), build);
        match upgrade::prepare(&req).and_then(|p| p.execute(&req)) {
            Ok(out) => panic!("{build}: upgraded: {:?}", out.report),
            Err(e) => e,
        }
    });
    assert_eq!(err.step, step, "{err}");
    assert!(err.to_string().contains(map), "{err}");
    assert_eq!(
        pair.a.run(filter_prog),
        before,
        "{build}: program at the hook"
    );
    assert_eq!(pinned_id(&counters_pin(fs)), pin_before, "{build}: pin");
    assert_eq!(listing(&fs.join("tc/globals")), listing_before);
    assert!(
        listing(&fs.join("tcbpf/upgrade")).is_empty(),
        "{build}: transaction left"
    );
    let counted = packets(&counters_pin(fs), UDP);
    assert_eq!(pair.send_udp(7200, 3), 3);
    assert_eq!(
        packets(&counters_pin(fs), UDP),
        counted + 3,
        "{build}: old program counts"
    );
}

#[test]
fn refused_and_failing_upgrades_leave_everything_as_it_was() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    let _v1 = pair.a.run(|| attach_filter(&fs, "upgrade_v1.o"));
    assert_eq!(pair.send_udp(7200, 4), 4);
    fails_and_changes_nothing(
        &fs,
        &pair,
        "upgrade_refused.o",
        Step::Plan,
        "member 'bytes'",
    );
    fails_and_changes_nothing(&fs, &pair, "upgrade_unverifiable.o", Step::Load, "upg_cls");
    fails_and_changes_nothing(&fs, &pair, "upgrade_badmap.o", Step::Load, "sizes");
    // Three keys do not fit in a map of two.
    let m = sys::obj::get_pinned_map(&counters_pin(&fs), sys::obj::open::RDWR).unwrap();
    for key in [1u32, 2] {
        sysmap::update(&m, &key.to_ne_bytes(), &[0u8; 16], 0).unwrap();
    }
    fails_and_changes_nothing(&fs, &pair, "upgrade_tiny.o", Step::Copy, "counters");
    // A pin in the way: another map pinned where the new counters go
    // (the running program's counters are not pinned there).
    let prog = pair.a.run(filter_prog);
    let counters_fd = sys::obj::get_pinned_map(&counters_pin(&fs), sys::obj::open::RDWR).unwrap();
    std::fs::remove_file(counters_pin(&fs)).unwrap();
    let other = hash_map("other", 4, 8, 4);
    sys::obj::pin(&other, &counters_pin(&fs)).unwrap();
    let other_id = info::map_info(&other).unwrap().id;
    let listing_before = listing(&fs.join("tc/globals"));
    let err = pair.a.run(|| {
        let req = request(&fs, filter_hook(), "upgrade_v2.o");
        match upgrade::prepare(&req).and_then(|p| p.execute(&req)) {
            Ok(out) => panic!("upgraded: {:?}", out.report),
            Err(e) => e,
        }
    });
    assert_eq!(err.step, Step::Pin, "{err}");
    assert!(err.to_string().contains("a pin in the way"), "{err}");
    assert_eq!(pair.a.run(filter_prog), prog);
    assert_eq!(pinned_id(&counters_pin(&fs)), other_id);
    assert_eq!(listing(&fs.join("tc/globals")), listing_before);
    assert!(
        listing(&fs.join("tcbpf/upgrade")).is_empty(),
        "transaction left"
    );
    drop(counters_fd);
}

/// The kernel fact the reconciliation rests on: once the map-in-map update
/// of `wait_for_old_programs` returns, a program swapped out before it
/// writes nothing more. 50 swaps under traffic, each old program's counter
/// read right after the wait and again 50 ms later.
#[test]
fn a_swapped_out_program_writes_nothing_after_the_wait() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let mut held = pair.a.run(|| attach_filter(&fs, "upgrade_v1.o"));
    std::thread::scope(|s| {
        let traffic = s.spawn(|| sender(&pair, &stop, &sent));
        let _stop = StopOnDrop(&stop);
        for i in 0..50 {
            // A fresh copy of v1 with a map of its own (no pins).
            let mut opts = fs.options();
            opts.defer_pins = true;
            let next = load_file(&fixture("upgrade_v1.o"), &opts).unwrap();
            let old_counters = pair.a.run(|| {
                let target = AttachTarget {
                    pref: 1,
                    handle: 1,
                    direct_action: true,
                    mode: filter::Mode::Replace,
                    ..AttachTarget::new(ifindex(), AttachHook::Parent(TcHandle::EGRESS))
                };
                attach(&target, next.main_program().fd.as_fd().into(), "v1").unwrap();
                upgrade::wait_for_old_programs().unwrap();
                std::mem::replace(&mut held, next)
            });
            let m = &old_counters.map("counters").unwrap().fd;
            let read = || {
                let mut v = [0u8; 16];
                match sysmap::lookup(m, &UDP.to_ne_bytes(), &mut v, 0) {
                    Ok(()) => u64::from_ne_bytes(v[..8].try_into().unwrap()),
                    Err(_) => 0,
                }
            };
            let at_wait = read();
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(read(), at_wait, "swap {i}: the old program still counted");
        }
        stop.store(true, Ordering::Relaxed);
        traffic.join().unwrap();
    });
    assert!(sent.load(Ordering::Relaxed) > 0);
}

/// Two upgrades of one bpffs do not run at once: the second waits for the
/// lock on `<bpffs>/tcbpf/upgrade` (here held by the test), then finds
/// what runs again and goes on.
#[test]
fn an_upgrade_waits_while_another_holds_the_lock() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = pair();
    let _v1 = pair.a.run(|| attach_filter(&fs, "upgrade_v1.o"));
    let v1 = pair.a.run(filter_prog);
    std::fs::create_dir_all(fs.join("tcbpf/upgrade")).unwrap();
    let lock = sys::fs::try_lock_dir(&fs.join("tcbpf/upgrade"))
        .unwrap()
        .unwrap();
    std::thread::scope(|s| {
        let upgrade = s.spawn(|| {
            pair.a.run(|| {
                let req = request(&fs, filter_hook(), "upgrade_v2.o");
                upgrade::prepare(&req).unwrap().execute(&req).unwrap()
            })
        });
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(pair.a.run(filter_prog), v1, "upgraded under the lock");
        drop(lock);
        let out = upgrade.join().unwrap();
        assert_eq!(out.report.new_prog, Some(pair.a.run(filter_prog)));
        assert_ne!(out.report.new_prog, Some(v1));
    });
}

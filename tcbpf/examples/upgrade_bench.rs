//! `scripts/bench-upgrade.sh`: one live upgrade of a classifier whose
//! 1,000,000-entry hash gained a value member (`bpf/upgrade_big_v1.c` →
//! `upgrade_big_v2.c`), timed whole (find, plan, load, copy with
//! conversion, swap, wait, reconcile, pins) beside a raw LOOKUP_BATCH +
//! UPDATE_BATCH copy of the same entries into a map of the same
//! definition, in one run. Also: the time the hook ran with no program
//! (from packets sent vs counted while UDP flows during the upgrade).
//!
//! Runs in a network namespace and bpffs of its own (testkit guards),
//! needs root. Benchmark support only.
//!
//! ```text
//! upgrade_bench [ENTRIES]      default 1000000
//! ```

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tcbpf::abi::MapType;
use tcbpf::attach::{attach, AttachTarget, Hook as AttachHook};
use tcbpf::load::load_file;
use tcbpf::sys::{info, map};
use tcbpf::tc::{device, Socket, TcHandle};
use tcbpf::upgrade::{self, Hook, Request};
use tcbpf_testkit::{fixture, Bpffs, VethPair, ADDR_A, ADDR_B};

const CHUNK: usize = 1 << 16;

/// Stops the sender when dropped, also when a step panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn main() {
    if let Some(why) = tcbpf_testkit::missing_privilege() {
        eprintln!("upgrade_bench: needs root ({why})");
        std::process::exit(3);
    }
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let fs = Bpffs::new();
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
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    let v1 = pair.a.run(|| {
        let obj = load_file(&fixture("upgrade_big_v1.o"), &fs.options()).unwrap();
        let target = AttachTarget {
            pref: 1,
            handle: 1,
            direct_action: true,
            ..AttachTarget::new(ifindex, AttachHook::Parent(TcHandle::EGRESS))
        };
        attach(
            &target,
            obj.main_program().fd.as_fd().into(),
            &obj.filter_name(),
        )
        .unwrap();
        obj
    });
    // Fill: keys 1000.. (UDP's key 17 stays the classifier's), {k, 3k}.
    let counters = &v1.map("counters").unwrap().fd;
    let sizes = map::ElemSizes::of(counters).unwrap();
    let mut start = 1000u32;
    while start < 1000 + n {
        let end = (1000 + n).min(start + CHUNK as u32);
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for k in start..end {
            keys.extend_from_slice(&k.to_ne_bytes());
            values.extend_from_slice(&u64::from(k).to_ne_bytes());
            values.extend_from_slice(&(u64::from(k) * 3).to_ne_bytes());
        }
        map::update_batch(counters, &sizes, &keys, &values, map::update::ANY).unwrap();
        start = end;
    }

    // Both, in one run, with UDP flowing through the hook all along.
    let old_info = info::map_info(counters).unwrap();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (raw, copied, whole, report) = std::thread::scope(|s| {
        let traffic = s.spawn(|| {
            pair.a.run(|| {
                let sock = std::net::UdpSocket::bind((ADDR_A, 0)).unwrap();
                let to: std::net::SocketAddr = format!("{ADDR_B}:9").parse().unwrap();
                let deadline = Instant::now() + Duration::from_secs(300);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if sock.send_to(b"bench", to).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        });
        let _stop = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_millis(100));
        // The raw copy: LOOKUP_BATCH everything, UPDATE_BATCH into a twin.
        let twin = map::create(&map::MapCreate {
            map_type: MapType::Hash as u32,
            key_size: 4,
            value_size: old_info.value_size,
            max_entries: old_info.max_entries,
            name: "raw_twin",
            ..Default::default()
        })
        .unwrap();
        let raw_start = Instant::now();
        let mut keys = vec![0u8; CHUNK * sizes.key()];
        let mut values = vec![0u8; CHUNK * sizes.value()];
        let mut cursor = map::BatchCursor::new(&sizes);
        let mut copied = 0usize;
        while !cursor.is_done() {
            let got =
                map::lookup_batch(counters, &sizes, &mut cursor, &mut keys, &mut values).unwrap();
            map::update_batch(
                &twin,
                &sizes,
                &keys[..got * sizes.key()],
                &values[..got * sizes.value()],
                map::update::ANY,
            )
            .unwrap();
            copied += got;
        }
        let raw = raw_start.elapsed();
        drop(twin);
        let out = pair.a.run(|| {
            let req = Request {
                ifindex,
                hook: Hook::Filter {
                    parent: TcHandle::EGRESS,
                    pref: 1,
                    handle: 1,
                },
                object: fixture("upgrade_big_v2.o"),
                load: fs.options(),
                modes: Vec::new(),
            };
            let t = Instant::now();
            let out = upgrade::prepare(&req).unwrap().execute(&req).unwrap();
            (t.elapsed(), out)
        });
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        traffic.join().unwrap();
        (raw, copied, out.0, out.1)
    });
    let out_obj = report.object.as_ref().unwrap();
    let new_counters = &out_obj.map("counters").unwrap().fd;
    let mut v = vec![0u8; 24];
    map::lookup(new_counters, &17u32.to_ne_bytes(), &mut v, 0).unwrap();
    let counted = u64::from_ne_bytes(v[..8].try_into().unwrap());
    let sent = sent.load(Ordering::Relaxed);
    let entries = report.report.maps[0].entries.unwrap_or(0);
    let rate = |d: Duration| entries as f64 / d.as_secs_f64() / 1e6;
    println!("entries                      {entries} (raw copy moved {copied})");
    println!(
        "raw LOOKUP_BATCH+UPDATE_BATCH {:>8.1} ms   {:.2} M entries/s",
        raw.as_secs_f64() * 1e3,
        rate(raw)
    );
    println!(
        "whole upgrade                {:>8.1} ms   {:.2} M entries/s   ({:.2}x the raw copy's speed)",
        whole.as_secs_f64() * 1e3,
        rate(whole),
        raw.as_secs_f64() / whole.as_secs_f64()
    );
    println!(
        "  of which waiting for the old program {:.1} ms",
        report.report.wait.unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "UDP during both              {sent} sent, {counted} counted: {} uncounted (a packet through an empty hook would be one)",
        sent as i64 - counted as i64
    );
}

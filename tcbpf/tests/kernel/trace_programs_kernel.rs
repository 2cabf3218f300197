//! `bpf/dump.c`'s tracing programs through the real verifier and on real
//! packets, on kernels that refuse BPF trampolines too: the same object is
//! loaded by the library's loader as `tp_btf` programs instead of fentry
//! and fexit — dump_entry on the `net_dev_queue` tracepoint (its first
//! argument is the `struct sk_buff *`, as for fentry on a tc program) and
//! dump_exit on `net_dev_xmit` (`skb`, then the int result, as fexit's
//! `skb, ret`). Everything but the trampoline is what `tcbpf dump` runs:
//! CO-RE reads of the skb, the packet copy, the `.bss` configuration, the
//! maps shared by two loads, the pcap filter spliced into `dump_filter()`
//! and checked by the verifier, the verdict filter, the ring buffer and the
//! kernel's counts.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;
use tcbpf::events::{EventReader, Record};
use tcbpf::sys::{info, link, map};
use tcbpf::tc::{classic, device, Socket};
use tcbpf::trace::classic::translate;
use tcbpf::trace::Event;
use tcbpf_testkit::tracepoints::TracepointDump;
use tcbpf_testkit::*;

fn classic_of(expr: &str) -> Vec<classic::ClassicInsn> {
    let out = Command::new("tcpdump")
        .args(["-ddd", expr])
        .output()
        .expect("tcpdump");
    assert!(out.status.success());
    classic::parse_bytecode(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

#[test]
fn dump_programs_pass_the_verifier_and_record_real_packets_through_the_filter() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    // A port of this run: other tests' packets never match.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let body = translate(&classic_of(&format!("udp dst port {port}"))).unwrap();
    // snaplen 40: records keep 40 bytes, the filter still sees 256; only
    // verdict 0 (NETDEV_TX_OK here) is kept.
    let traced = TracepointDump::attach(ifindex, 40, Some(body), Some(0));
    pair.a.run(|| {
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        for (to_port, n) in [(port, 20), (port + 1, 5)] {
            let to: SocketAddr = format!("{ADDR_B}:{to_port}").parse().unwrap();
            for i in 0..n {
                s.send_to(format!("dump test {i:02}").as_bytes(), to)
                    .unwrap();
            }
        }
    });
    let ring = traced.ring();
    let mut reader = EventReader::open(ring, &info::map_info(ring).unwrap(), 0).unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        reader
            .poll(Some(Duration::from_millis(100)), |r| {
                if let Record::Sample { data, .. } = r {
                    let e = Event::parse(data).expect("a whole record");
                    got.push((
                        e.ifindex,
                        e.ingress,
                        e.verdict,
                        e.data.len(),
                        e.len,
                        u16::from_be_bytes([e.data[36], e.data[37]]),
                        e.data[23],
                    ));
                }
                true
            })
            .unwrap();
        if got.len() >= 20 {
            break;
        }
    }
    // 14 Ethernet + 20 IP + 8 UDP + "dump test NN" (12 bytes).
    let want = (ifindex, false, 0, 40, 54, port, 17);
    assert_eq!(got.len(), 20, "{got:?}");
    assert!(got.iter().all(|g| *g == want), "{got:?} vs {want:?}");
    // The kernel wrote exactly those: its counts, summed over CPUs.
    let cpus = tcbpf::sys::possible_cpus().unwrap();
    let mut v = vec![0u8; 40 * cpus];
    map::lookup(traced.counters(), &0u32.to_ne_bytes(), &mut v, 0).unwrap();
    let field = |n: usize| -> u64 {
        v.chunks_exact(40)
            .map(|c| u64::from_ne_bytes(c[n * 8..n * 8 + 8].try_into().unwrap()))
            .sum()
    };
    assert_eq!(field(3), 20, "written");
    assert_eq!(field(4), 0, "lost");
    assert!(
        field(1) >= 5,
        "the 5 datagrams to port+1 are refused by the filter"
    );
    let ids: Vec<u32> = traced
        .links
        .iter()
        .map(|l| link::link_info(l).unwrap().id)
        .collect();
    drop(reader);
    drop(traced);
    for id in ids {
        assert!(
            tcbpf::sys::obj::link_by_id(id).is_err(),
            "link {id} still there"
        );
    }
}

fn send(pair: &VethPair, port: u16, n: usize) {
    pair.a.run(|| {
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        let to: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
        for i in 0..n {
            s.send_to(format!("dump test {i:02}").as_bytes(), to)
                .unwrap();
        }
    });
}

/// A reader that does not keep up: the one-page ring fills, the programs
/// count each record they could not write, and what was written plus what
/// was lost is exactly what matched.
#[test]
fn a_full_ring_counts_every_lost_record() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    let port = 20000 + (std::process::id() % 20000) as u16 + 2;
    let body = translate(&classic_of(&format!("udp dst port {port}"))).unwrap();
    let traced = TracepointDump::attach_with_ring(ifindex, 128, Some(body), None, Some(4096));
    // Nobody reads while 500 datagrams pass: 4096 bytes hold about 40.
    send(&pair, port, 500);
    let [_, _, _, written, lost] = traced.counts();
    assert_eq!(written + lost, 500, "written {written} lost {lost}");
    assert!(lost > 0 && written > 0, "written {written} lost {lost}");
    let ring = traced.ring();
    let mut reader = EventReader::open(ring, &info::map_info(ring).unwrap(), 0).unwrap();
    let mut read = 0u64;
    reader
        .poll(Some(Duration::from_millis(200)), |r| {
            if let Record::Sample { .. } = r {
                read += 1;
            }
            true
        })
        .unwrap();
    assert_eq!(read, written, "every record written is read");
}

/// `verdict`: records with another return value are counted as skipped
/// and not written.
#[test]
fn another_verdict_is_skipped_and_counted() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    let port = 20000 + (std::process::id() % 20000) as u16 + 3;
    let body = translate(&classic_of(&format!("udp dst port {port}"))).unwrap();
    // net_dev_xmit reports NETDEV_TX_OK (0) for these: keep only 5.
    let traced = TracepointDump::attach(ifindex, 128, Some(body), Some(5));
    send(&pair, port, 30);
    let [_, _, skipped, written, lost] = traced.counts();
    assert_eq!((skipped, written, lost), (30, 0, 0));
}

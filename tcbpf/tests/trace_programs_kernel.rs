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
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tcbpf::abi::AttachType;
use tcbpf::elf::{MapOrigin, ObjectSpec};
use tcbpf::events::{EventReader, Record};
use tcbpf::load::{self, LoadOptions, ObjectIdentity, TraceTarget};
use tcbpf::sys::{info, link, map, MapFd};
use tcbpf::tc::{classic, device, Socket};
use tcbpf::trace::classic::translate;
use tcbpf::trace::Event;
use tcbpf_testkit::*;

const DUMP_O: &[u8] = include_bytes!("../../bpf/dump.o");

/// The id of typedef `name` in the kernel's BTF, as bpftool lists it
/// (`[ID] TYPEDEF 'name' type_id=…`).
fn vmlinux_typedef(name: &str) -> u32 {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .expect("bpftool");
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("] TYPEDEF '{name}' ");
    text.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no typedef {name} in vmlinux BTF"))
}

fn classic_of(expr: &str) -> Vec<classic::ClassicInsn> {
    let out = Command::new("tcpdump")
        .args(["-ddd", expr])
        .output()
        .expect("tcpdump");
    assert!(out.status.success());
    classic::parse_bytecode(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

/// `struct dump_config` (bpf/dump.c).
fn config(ifindex: u32, snaplen: u32) -> Vec<u8> {
    // target, ifindex, direction (any), snaplen, filter_snap, filter on,
    // verdict_on, verdict 0 (NETDEV_TX_OK here)
    [0, ifindex, 0, snaplen, 256, 1, 1, 0]
        .iter()
        .flat_map(|w: &u32| w.to_ne_bytes())
        .collect()
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
    let object = DUMP_O.to_vec();
    let mut spec = ObjectSpec::parse("dump.o", &object).unwrap();
    let body = translate(&classic_of(&format!("udp dst port {port}"))).unwrap();
    for p in spec.programs.iter_mut() {
        match p.name.as_str() {
            "dump_entry" => {
                p.section = "tp_btf/net_dev_queue".into();
                p.replace_last_function("dump_filter", body.clone())
                    .unwrap();
            }
            "dump_exit" => p.section = "tp_btf/net_dev_xmit".into(),
            _ => {}
        }
    }
    let bss = spec
        .maps
        .iter()
        .position(|m| m.origin == MapOrigin::GlobalData && m.name.ends_with(".bss"))
        .unwrap();
    // snaplen 40: records keep 40 bytes, the filter still sees 256.
    spec.maps[bss].data = Some(config(ifindex, 40));
    let identity = ObjectIdentity {
        path: "dump.o".into(),
        sha1_hex: String::new(),
        dev: 0,
        ino: 0,
    };
    let load_one = |program: &str, tp: &str, shared: Vec<(String, Arc<MapFd>)>| {
        load::load_spec(
            &spec,
            &identity,
            &LoadOptions {
                program: Some(program.into()),
                trace_target: Some(TraceTarget {
                    prog: None,
                    func_type_id: vmlinux_typedef(tp),
                }),
                shared_maps: shared,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{program}: {e}"))
    };
    let entry = load_one("dump_entry", "btf_trace_net_dev_queue", Vec::new());
    let shared: Vec<(String, Arc<MapFd>)> = ["dump_events", "dump_stash", "dump_counters"]
        .iter()
        .map(|n| {
            let m = entry.map(n).unwrap();
            (n.to_string(), Arc::new(m.fd.try_clone().unwrap()))
        })
        .collect();
    let exit = load_one("dump_exit", "btf_trace_net_dev_xmit", shared.clone());
    let links: Vec<_> = [&entry, &exit]
        .iter()
        .map(|o| {
            link::create(&link::LinkCreate {
                prog: o.main_program().fd.as_fd(),
                target_ifindex: 0,
                attach_type: AttachType::TraceRawTp as u32,
                flags: 0,
                relative: 0,
                expected_revision: 0,
            })
            .unwrap()
        })
        .collect();
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
    let ring = &shared[0].1;
    let mut reader = EventReader::open(ring, &info::map_info(ring.as_ref()).unwrap(), 0).unwrap();
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
    map::lookup(shared[2].1.as_fd(), &0u32.to_ne_bytes(), &mut v, 0).unwrap();
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
    let ids: Vec<u32> = links
        .iter()
        .map(|l| link::link_info(l).unwrap().id)
        .collect();
    drop(links);
    for id in ids {
        assert!(
            tcbpf::sys::obj::link_by_id(id).is_err(),
            "link {id} still there"
        );
    }
}

//! The in-kernel packet filter of `dump`: libpcap's classic BPF (as
//! `tcpdump -ddd` prints it) translated by `trace::classic::translate`,
//! then verified and run by the real kernel. A classifier copies the packet
//! into a `struct dump_event` laid out as `bpf/dump.c` has it and calls the
//! translated body as a subprogram, exactly as `dump_entry` calls
//! `dump_filter`; BPF_PROG_TEST_RUN returns the filter's answer.

use std::os::fd::AsRawFd;
use std::process::Command;
use tcbpf::abi::{Insn, MapType, ProgType};
use tcbpf::sys::{map, prog, MapFd, ProgFd};
use tcbpf::tc::classic;
use tcbpf::trace::classic::{translate, EVENT_DATA_OFF, SNAP_MAX};

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn classic_of(expr: &str) -> Vec<classic::ClassicInsn> {
    let out = Command::new("tcpdump")
        .args(["-ddd", expr])
        .output()
        .expect("tcpdump (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    classic::parse_bytecode(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

/// A classifier returning `dump_filter(event)` for the packet.
fn harness(event: &MapFd, body: &[Insn]) -> ProgFd {
    let mut p = vec![
        insn(0xbf, 6, 1, 0, 0),                 // r6 = skb
        insn(0x62, 10, 0, -4, 0),               // *(u32*)(r10-4) = 0
        insn(0x18, 1, 1, 0, event.as_raw_fd()), // r1 = map
        insn(0, 0, 0, 0, 0),
        insn(0xbf, 2, 10, 0, 0),                    // r2 = r10
        insn(0x07, 2, 0, 0, -4),                    // r2 += -4
        insn(0x85, 0, 0, 0, 1),                     // map_lookup_elem
        insn(0x15, 0, 0, 14, 0),                    // if r0 == 0 goto out
        insn(0xbf, 7, 0, 0, 0),                     // r7 = value
        insn(0x61, 8, 6, 0, 0),                     // r8 = skb->len
        insn(0x63, 7, 8, 12, 0),                    // ev->len = r8
        insn(0xa5, 8, 0, 1, 256),                   // if r8 < 256 goto +1
        insn(0xb7, 8, 0, 0, 256),                   // r8 = 256
        insn(0x15, 8, 0, 8, 0),                     // if r8 == 0 goto out
        insn(0x63, 7, 8, 16, 0),                    // ev->caplen = r8
        insn(0xbf, 1, 6, 0, 0),                     // r1 = skb
        insn(0xb7, 2, 0, 0, 0),                     // r2 = 0
        insn(0xbf, 3, 7, 0, 0),                     // r3 = ev
        insn(0x07, 3, 0, 0, EVENT_DATA_OFF as i32), // r3 += data
        insn(0xbf, 4, 8, 0, 0),                     // r4 = caplen
        insn(0x85, 0, 0, 0, 26),                    // skb_load_bytes
        insn(0x55, 0, 0, 1, 0),                     // if r0 != 0 goto out
        insn(0x05, 0, 0, 2, 0),                     // goto call
        insn(0xb7, 0, 0, 0, 0),                     // out: r0 = 0
        insn(0x95, 0, 0, 0, 0),                     // exit
        insn(0xbf, 1, 7, 0, 0),                     // call: r1 = ev
        insn(0x85, 0, 1, 0, 1),                     // call the subprogram
        insn(0x95, 0, 0, 0, 0),                     // exit (r0 = its answer)
    ];
    p.extend_from_slice(body);
    prog::load(&prog::ProgLoad {
        prog_type: ProgType::SchedCls as u32,
        insns: &p,
        license: "GPL",
        name: "filter_harness",
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("the kernel refused the translated filter: {e}\n{}", e.log))
    .fd
}

fn event_map() -> MapFd {
    map::create(&map::MapCreate {
        map_type: MapType::Array as u32,
        key_size: 4,
        value_size: EVENT_DATA_OFF as u32 + SNAP_MAX,
        max_entries: 1,
        name: "dump_event",
        ..Default::default()
    })
    .unwrap()
}

/// An Ethernet/IPv4 frame: `proto` with `ihl` words of header, the
/// transport header's first bytes being the ports.
fn frame(proto: u8, ihl: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0xaa; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let hl = usize::from(ihl) * 4;
    let mut ip = vec![0u8; hl];
    ip[0] = 0x40 | ihl;
    let total = (hl + 8 + 32) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 40, 0, 0]);
    f.extend_from_slice(&[0x55; 32]);
    f
}

fn matches(p: &ProgFd, packet: &[u8]) -> bool {
    prog::test_run(p, packet).unwrap().retval != 0
}

#[test]
fn pcap_filters_run_in_the_kernel_as_tcpdump_means_them() {
    tcbpf_testkit::require_root!();
    let ev = event_map();
    let udp_port = harness(&ev, &translate(&classic_of("udp port 4242")).unwrap());
    assert!(matches(&udp_port, &frame(17, 5, 5353, 4242)));
    assert!(matches(&udp_port, &frame(17, 5, 4242, 9)));
    // IP options: the port is found through X (ldxb 4*([14]&0xf), ldh [x+16]).
    assert!(matches(&udp_port, &frame(17, 7, 5353, 4242)));
    assert!(!matches(&udp_port, &frame(17, 5, 5353, 4243)));
    assert!(!matches(&udp_port, &frame(6, 5, 5353, 4242)));
    let tcp_syn = harness(&ev, &translate(&classic_of("tcp and dst port 80")).unwrap());
    assert!(matches(&tcp_syn, &frame(6, 5, 40000, 80)));
    assert!(!matches(&tcp_syn, &frame(6, 5, 80, 40000)));
    let host = harness(
        &ev,
        &translate(&classic_of("src host 10.0.0.2 and greater 60")).unwrap(),
    );
    assert!(matches(&host, &frame(1, 5, 0, 0)));
    let short = &frame(1, 5, 0, 0)[..50];
    assert!(
        !matches(&host, short),
        "'greater 60' refuses a 50-byte packet"
    );
    // A load past the captured bytes ends the filter with 0, as in the kernel's
    // classic interpreter: byte 300 is past the 256 bytes captured here.
    let far = harness(&ev, &translate(&classic_of("ether[300] = 0")).unwrap());
    let mut big = frame(17, 5, 1, 2);
    big.resize(400, 0);
    assert!(!matches(&far, &big));
}

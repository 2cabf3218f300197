//! Loading the CO-RE classifier (built against vmlinux.h) into the running
//! kernel: relocations resolved against /sys/kernel/btf/vmlinux, verdicts
//! and counters checked with BPF_PROG_TEST_RUN on crafted frames, the
//! in-kernel CO-RE facts cross-checked with the kernel's BTF, and a target
//! BTF lacking a needed type refused with a message naming the relocation.

use crate::load_common;

use load_common::*;
use tcbpf::btf::{Btf, BtfKind};
use tcbpf::load::{load_file, LoadError, LoadOptions};
use tcbpf::sys;

const OK: u32 = 0;
const SHOT: u32 = 2;

/// An Ethernet/IPv4/UDP frame to `port`, with `opts` 32-bit words of IP options.
fn udp_packet(port: u16, opts: usize) -> Vec<u8> {
    let mut p = ipv4_packet(17);
    let ip_len = 20 + 4 * opts;
    p[14] = 0x40 | (ip_len / 4) as u8;
    p.splice(34..34, std::iter::repeat(1u8).take(4 * opts));
    let udp = 14 + ip_len;
    p[udp..udp + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[udp + 2..udp + 4].copy_from_slice(&port.to_be_bytes());
    p[udp + 4..udp + 6].copy_from_slice(&8u16.to_be_bytes());
    p
}

fn options(dir: &TempDir) -> LoadOptions {
    LoadOptions {
        bpffs: dir.0.join("no-bpffs-needed"),
        pinning_db: dir.0.join("no-pinning-db"),
        verbose: true,
        ..LoadOptions::default()
    }
}

#[test]
fn core_classifier_loads_relocated_and_drops_blocked_udp_ports() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("core-load");
    let obj = load_file(&fixture("core_classifier"), &options(&dir)).unwrap();
    let resolutions: Vec<&String> = obj
        .notes
        .iter()
        .filter(|n| n.starts_with("CO-RE:"))
        .collect();
    assert_eq!(resolutions.len(), 25, "{:#?}", obj.notes);
    assert!(resolutions
        .iter()
        .any(|n| n.contains("struct iphdr.protocol") && n.contains("9 -> 9")));
    let prog = &obj.main_program().fd;
    let counters = &obj.map("counters").unwrap().fd;
    let blocked = &obj.map("blocked_ports").unwrap().fd;

    assert_eq!(run(prog, &udp_packet(53, 0)), OK);
    sys::map::update(blocked, &5353u16.to_ne_bytes(), &[1], 0).unwrap();
    assert_eq!(run(prog, &udp_packet(5353, 0)), SHOT);
    assert_eq!(
        run(prog, &udp_packet(5353, 2)),
        SHOT,
        "UDP found after IP options (ihl bitfield)"
    );
    assert_eq!(run(prog, &udp_packet(5354, 2)), OK);
    assert_eq!(run(prog, &ipv4_packet(6)), OK);
    assert_eq!(run(prog, &arp_packet()), OK);
    let count = |i| lookup_u64(counters, i).unwrap();
    assert_eq!(
        [count(0), count(1), count(2), count(3)],
        [6, 5, 4, 2],
        "packets ipv4 udp dropped"
    );

    // What the relocations made of the program's questions, in the kernel.
    let vmlinux = Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap();
    let iphdr = vmlinux.find_by_name_kind("iphdr", BtfKind::Struct).unwrap();
    let skb = vmlinux
        .find_by_name_kind("__sk_buff", BtfKind::Struct)
        .unwrap();
    let data_off = vmlinux.member(skb, "data").unwrap().unwrap().bit_offset / 8;
    let facts = &obj.map("core_facts").unwrap().fd;
    let fact = |i| lookup_u64(facts, i).unwrap();
    assert_eq!(
        fact(0),
        vmlinux.resolve_size(iphdr).unwrap() as u64,
        "sizeof(struct iphdr)"
    );
    assert_eq!(fact(1), data_off as u64, "offsetof(struct __sk_buff, data)");
    assert_eq!(fact(2), 1, "__sk_buff.hwtstamp exists");
    assert_eq!(fact(3), 0, "__sk_buff___future.not_yet_invented does not");
    assert_eq!(fact(4), 7, "BPF_REDIRECT");
    assert_eq!(fact(5), iphdr as u64, "kernel type id of struct iphdr");
    assert_eq!(fact(6), 0, "the poisoned read stayed dead code");
}

#[test]
fn a_target_btf_without_a_needed_type_fails_naming_the_relocation() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("core-missing");
    let mut vmlinux = Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap();
    let iphdr = vmlinux.find_by_name_kind("iphdr", BtfKind::Struct).unwrap();
    let renamed = vmlinux.add_string("iphdr_renamed");
    vmlinux.ty_mut(iphdr).unwrap().name_off = renamed;
    let path = dir.0.join("vmlinux-without-iphdr");
    std::fs::write(&path, vmlinux.to_bytes()).unwrap();
    let opts = LoadOptions {
        target_btf: Some(path),
        verbose: false,
        ..options(&dir)
    };
    let err = load_file(&fixture("core_classifier"), &opts).unwrap_err();
    // Typed: the unresolved relocation, with the verifier's rejection kept.
    let LoadError::Core(core) = &err else {
        panic!("not a CO-RE error: {err}");
    };
    assert!(
        matches!(core.cause, tcbpf::load::CoreCause::Unresolved { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), tcbpf::ErrorKind::BadInput);
    let msg = err.to_string();
    assert!(
        msg.contains("program 'core_classify' (section 'classifier')"),
        "{msg}"
    );
    assert!(msg.contains("struct iphdr.version (0:1"), "{msg}");
    assert!(msg.contains("no match in the target BTF"), "{msg}");
}

#[test]
fn an_unreadable_target_btf_is_a_clear_error() {
    let dir = TempDir::new("core-nofile");
    let opts = LoadOptions {
        target_btf: Some(dir.0.join("absent")),
        ..options(&dir)
    };
    let msg = load_file(&fixture("core_classifier"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("target BTF") && msg.contains("absent"),
        "{msg}"
    );
    std::fs::write(
        dir.0.join("garbage"),
        b"not BTF at all: just some text, long enough for a header",
    )
    .unwrap();
    let opts = LoadOptions {
        target_btf: Some(dir.0.join("garbage")),
        ..options(&dir)
    };
    let msg = load_file(&fixture("core_classifier"), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bad BTF header"), "{msg}");
}

#[test]
fn relocations_in_a_subprogram_follow_it_into_each_program() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("core-subprog");
    let cls = load_file(&fixture("core_subprog"), &options(&dir)).unwrap();
    let prog = &cls.main_program().fd;
    assert_eq!(run(prog, &ipv4_packet(17)), SHOT);
    assert_eq!(run(prog, &ipv4_packet(6)), OK);
    assert_eq!(run(prog, &arp_packet()), OK);
    let act_opts = LoadOptions {
        prog_type: tcbpf::load::ProgKind::Act,
        ..options(&dir)
    };
    let act = load_file(&fixture("core_subprog"), &act_opts).unwrap();
    let prog = &act.main_program().fd;
    assert_eq!(run(prog, &ipv4_packet(6)), SHOT);
    assert_eq!(run(prog, &ipv4_packet(17)), OK);
}

#[test]
fn the_target_layout_decides_which_byte_the_kernel_reads() {
    tcbpf_testkit::require_root!();
    // A target whose iphdr has `protocol` where the real one has `ttl`:
    // relocated against it, the program reads the TTL byte as the protocol.
    let dir = TempDir::new("core-moved");
    let mut vmlinux = Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap();
    let iphdr = vmlinux.find_by_name_kind("iphdr", BtfKind::Struct).unwrap();
    let ttl_off = vmlinux.member(iphdr, "ttl").unwrap().unwrap().bit_offset;
    let mut t = vmlinux.ty(iphdr).unwrap().clone();
    if let tcbpf::btf::Kind::Struct(c) = &mut t.kind {
        for m in &mut c.members {
            if vmlinux.str_at(m.name_off).unwrap() == "protocol" {
                m.bit_offset = ttl_off;
            }
        }
    }
    *vmlinux.ty_mut(iphdr).unwrap() = t;
    let path = dir.0.join("vmlinux-moved-protocol");
    std::fs::write(&path, vmlinux.to_bytes()).unwrap();
    let opts = LoadOptions {
        target_btf: Some(path),
        ..options(&dir)
    };
    let obj = load_file(&fixture("core_subprog"), &opts).unwrap();
    assert!(
        obj.notes
            .iter()
            .any(|n| n.contains("struct iphdr.protocol (0:7 @ offset 9): 9 -> 8")),
        "{:#?}",
        obj.notes
    );
    let prog = &obj.main_program().fd;
    let mut tcp_ttl_17 = ipv4_packet(6);
    tcp_ttl_17[22] = 17;
    assert_eq!(run(prog, &tcp_ttl_17), SHOT, "the TTL byte was read");
    assert_eq!(run(prog, &ipv4_packet(17)), OK, "TTL 64 is not UDP");
}

/// core_classifier.o with its first CO-RE record's instruction offset
/// replaced, written to `dir`.
fn with_relocation_at(dir: &TempDir, insn_off: u32) -> std::path::PathBuf {
    use object::{Object, ObjectSection};
    let mut data = std::fs::read(fixture("core_classifier")).unwrap();
    let (ext_at, _) = object::File::parse(&*data)
        .unwrap()
        .section_by_name(".BTF.ext")
        .unwrap()
        .file_range()
        .unwrap();
    let ext = ext_at as usize;
    let u32_at =
        |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap()) as usize;
    let hdr_len = u32_at(&data, ext + 4);
    let core_off = u32_at(&data, ext + 24);
    // record size, then the first section: name offset, count, records.
    let first_record = ext + hdr_len + core_off + 4 + 8;
    data[first_record..first_record + 4].copy_from_slice(&insn_off.to_le_bytes());
    let path = dir.0.join(format!("core_at_{insn_off}.o"));
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn a_relocation_outside_its_program_or_on_the_wrong_instruction_is_refused() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("core-corrupt");
    let err = load_file(&with_relocation_at(&dir, 0xfff8), &options(&dir)).unwrap_err();
    let msg = err.to_string();
    let LoadError::Core(core) = &err else {
        panic!("not a CO-RE error: {msg}");
    };
    assert!(
        matches!(core.cause, tcbpf::load::CoreCause::Relocation(_)),
        "{msg}"
    );
    assert!(msg.contains("section '.BTF.ext'"), "{msg}");
    assert!(msg.contains("insn #8191"), "{msg}");
    assert!(
        msg.contains("not an instruction of the 1624-byte section"),
        "{msg}"
    );
    // Instruction 0 does not hold the offset the relocation expects.
    let err = load_file(&with_relocation_at(&dir, 0), &options(&dir)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("program 'core_classify'"), "{msg}");
    assert!(
        msg.contains("<byte_off> [32] struct __sk_buff access '0:16'"),
        "{msg}"
    );
    assert!(msg.contains("instruction #0"), "{msg}");
}

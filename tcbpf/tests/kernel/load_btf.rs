//! Loading objects with BTF-defined maps: definitions, BTF types on the
//! maps, func/line info on the programs, and the 64-map object.

use crate::load_common;

use load_common::*;
use tcbpf::load::{load_file, LoadOptions};
use tcbpf::sys;

#[test]
fn btf_maps_count_per_protocol_and_carry_btf_types() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("btf_maps"), &fs.options()).unwrap();
    assert!(
        obj.btf.is_some(),
        "the kernel took the BTF: {:?}",
        obj.notes
    );
    let prog = &obj.main_program().fd;
    assert_eq!(run(prog, &ipv4_packet(6)), 2);
    assert_eq!(run(prog, &ipv4_packet(17)), 0);
    assert_eq!(run(prog, &ipv4_packet(17)), 0);

    let by_proto = obj.map("by_proto").unwrap();
    let mut v = [0u8; 16];
    sys::map::lookup(&by_proto.fd, &17u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v[..8].try_into().unwrap()), 2, "packets");
    assert_eq!(u64::from_ne_bytes(v[8..].try_into().unwrap()), 128, "bytes");
    let info = sys::info::map_info(&by_proto.fd).unwrap();
    assert_ne!(info.btf_id, 0);
    assert_ne!(info.btf_key_type_id, 0);
    assert_ne!(info.btf_value_type_id, 0);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 16, 256)
    );

    assert_eq!(lookup_u64(&obj.map("sized").unwrap().fd, 1), Some(3));
    assert_eq!(lookup_u64(&obj.map("btf_pinned").unwrap().fd, 17), Some(2));
    let ncpu = sys::possible_cpus().unwrap();
    let mut per_cpu = vec![0u8; 8 * ncpu];
    sys::map::lookup(
        &obj.map("per_cpu").unwrap().fd,
        &0u32.to_ne_bytes(),
        &mut per_cpu,
        0,
    )
    .unwrap();
    let total: u64 = per_cpu
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .sum();
    assert_eq!(total, 3);

    let pinned = obj.map("btf_pinned").unwrap().pin_path.clone().unwrap();
    assert_eq!(pinned, fs.path.join("tc/globals/btf_pinned"));

    let pinfo = sys::info::prog_info(&obj.main_program().fd).unwrap();
    assert_ne!(pinfo.btf_id, 0, "func/line info loaded with the program");
}

#[test]
fn without_btf_the_same_object_loads_and_runs() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let opts = LoadOptions {
        use_btf: false,
        ..fs.options()
    };
    let obj = load_file(&fixture("btf_maps"), &opts).unwrap();
    assert!(obj.btf.is_none());
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(6)), 2);
    let info = sys::info::map_info(&obj.map("by_proto").unwrap().fd).unwrap();
    assert_eq!(info.btf_id, 0);
}

#[test]
fn demo_object_counts_packets_and_bytes() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("demo"), &fs.options()).unwrap();
    for _ in 0..3 {
        assert_eq!(run(&obj.main_program().fd, &ipv4_packet(1)), 0);
    }
    let mut v = [0u8; 16];
    sys::map::lookup(
        &obj.map("proto_stats").unwrap().fd,
        &1u32.to_ne_bytes(),
        &mut v,
        0,
    )
    .unwrap();
    assert_eq!(u64::from_ne_bytes(v[..8].try_into().unwrap()), 3);
    assert_eq!(u64::from_ne_bytes(v[8..].try_into().unwrap()), 192);
}

#[test]
fn sixty_four_map_object_touches_every_map() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("maps64"), &fs.options()).unwrap();
    assert_eq!(obj.maps.len(), 64);
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 0);
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 0);
    for (i, m) in obj.maps.iter().enumerate() {
        assert_eq!(m.spec.name, format!("m{i}"));
        assert_eq!(m.spec.id, i as u32);
        assert_eq!(lookup_u64(&m.fd, 0), Some(2), "m{i}");
    }
}

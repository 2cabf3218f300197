//! Loading legacy (`struct bpf_elf_map`) objects and running their
//! classifiers on crafted packets.

use crate::load_common;

use load_common::*;
use tcbpf::elf::Pinning;
use tcbpf::load::{load_file, LoadError, LoadOptions, ProgKind};
use tcbpf::sys;

#[test]
fn legacy_classifier_counts_each_protocol_and_drops_tcp() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("legacy"), &fs.options()).unwrap();
    let prog = &obj.main_program().fd;
    assert_eq!(run(prog, &ipv4_packet(6)), 2, "TCP is dropped");
    assert_eq!(run(prog, &ipv4_packet(17)), 0);
    assert_eq!(run(prog, &ipv4_packet(17)), 0);
    assert_eq!(run(prog, &ipv4_packet(1)), 0);
    assert_eq!(run(prog, &arp_packet()), 0);
    let counts = &obj.map("proto_count").unwrap().fd;
    assert_eq!(lookup_u64(counts, 6), Some(1));
    assert_eq!(lookup_u64(counts, 17), Some(2));
    assert_eq!(lookup_u64(counts, 1), Some(1));
    assert_eq!(lookup_u64(counts, 255), Some(1));
    assert_eq!(lookup_u64(counts, 47), None);
    for name in ["obj_pinned", "glob_pinned", "custom_pinned", "no_id"] {
        assert_eq!(lookup_u64(&obj.map(name).unwrap().fd, 0), Some(5), "{name}");
    }
}

#[test]
fn legacy_maps_keep_their_ids_and_unset_ids_get_the_lowest_free_one() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("legacy"), &fs.options()).unwrap();
    let ids: Vec<(&str, u32, Pinning)> = obj
        .maps
        .iter()
        .map(|m| (m.spec.name.as_str(), m.spec.id, m.spec.pinning))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("proto_count", 1, Pinning::None),
            ("obj_pinned", 2, Pinning::ObjectNs),
            ("glob_pinned", 3, Pinning::GlobalNs),
            ("custom_pinned", 4, Pinning::Custom(42)),
            ("no_id", 0, Pinning::None),
        ]
    );
    assert_eq!(obj.filter_name(), "legacy.o:[classifier]");
    // Only the chosen program is loaded: `action` is not a tail-call target.
    assert_eq!(obj.programs.len(), 1);
    let info = sys::info::map_info(&obj.map("proto_count").unwrap().fd).unwrap();
    assert_eq!(
        (
            info.map_type,
            info.key_size,
            info.value_size,
            info.max_entries
        ),
        (1, 4, 8, 256)
    );
    // BPF_ANNOTATE_KV_PAIR(proto_count, __u32, __u64) gave it BTF types.
    assert_ne!(info.btf_id, 0);
    assert_ne!(info.btf_key_type_id, 0);
    assert_ne!(info.btf_value_type_id, 0);
    let plain = sys::info::map_info(&obj.map("obj_pinned").unwrap().fd).unwrap();
    assert_eq!(plain.btf_key_type_id, 0, "no annotation, no BTF types");
}

#[test]
fn type_act_loads_the_action_section_as_sched_act() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let opts = LoadOptions {
        prog_type: ProgKind::Act,
        ..fs.options()
    };
    let obj = load_file(&fixture("legacy"), &opts).unwrap();
    assert_eq!(obj.main_program().name, "act_main");
    assert_eq!(obj.filter_name(), "legacy.o:[action]");
    let info = sys::info::prog_info(&obj.main_program().fd).unwrap();
    assert_eq!(info.prog_type, tcbpf::abi::ProgType::SchedAct as u32);
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 1);
    assert_eq!(lookup_u64(&obj.map("obj_pinned").unwrap().fd, 1), Some(1));
}

#[test]
fn program_name_picks_the_program_whatever_the_section() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let opts = LoadOptions {
        program: Some("act_main".into()),
        ..fs.options()
    };
    let obj = load_file(&fixture("legacy"), &opts).unwrap();
    assert_eq!(obj.main_program().section, "action");
    let info = sys::info::prog_info(&obj.main_program().fd).unwrap();
    assert_eq!(info.prog_type, tcbpf::abi::ProgType::SchedCls as u32);
}

#[test]
fn missing_section_is_an_error_listing_the_program_sections() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let opts = LoadOptions {
        section: Some("nope".into()),
        ..fs.options()
    };
    let err = load_file(&fixture("legacy"), &opts).unwrap_err();
    assert!(matches!(err, LoadError::NoProgram { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("legacy.o: no section 'nope'"), "{msg}");
    assert!(msg.contains("classifier, action"), "{msg}");
    // Nothing was pinned by the failed load.
    assert!(!fs.path.join("tc").exists());
}

#[test]
fn every_old_bpf_elf_map_size_loads_and_counts() {
    tcbpf_testkit::require_root!();
    for (size, fields) in [(20u32, 5u32), (24, 6), (28, 7)] {
        let fs = Bpffs::new();
        let obj = load_file(&fixture(&format!("legacy_v{size}")), &fs.options()).unwrap();
        let prog = &obj.main_program().fd;
        assert_eq!(run(prog, &ipv4_packet(6)), fields, "v{size}");
        assert_eq!(run(prog, &ipv4_packet(17)), fields);
        let by_proto = obj.map("sized_proto").unwrap();
        assert_eq!(lookup_u64(&by_proto.fd, 6), Some(1), "v{size}");
        assert_eq!(lookup_u64(&by_proto.fd, 17), Some(1), "v{size}");
        assert_eq!(lookup_u64(&obj.map("sized_total").unwrap().fd, 0), Some(2));
        // The 20-byte struct already had flags; ids came with 24 bytes.
        let info = sys::info::map_info(&by_proto.fd).unwrap();
        assert_eq!(
            info.map_flags,
            tcbpf::abi::map_flags::NO_PREALLOC,
            "v{size}"
        );
        let ids: Vec<u32> = obj.maps.iter().map(|m| m.spec.id).collect();
        assert_eq!(
            ids,
            if size == 20 { vec![0, 1] } else { vec![7, 8] },
            "v{size}"
        );
    }
}

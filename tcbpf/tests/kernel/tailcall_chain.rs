//! Tail calls: legacy `<id>/<key>` sections stored in their program array
//! (a chain and a cycle), and BTF program arrays with `values`.

use crate::load_common;

use load_common::*;
use tcbpf::load::load_file;
use tcbpf::sys;

#[test]
fn legacy_chain_runs_every_stage_and_returns_the_last_verdict() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall"), &fs.options()).unwrap();
    assert_eq!(
        obj.programs.len(),
        4,
        "entry and the three <id>/<key> sections"
    );
    assert_eq!(run(&obj.main_program().fd, &selector_packet(0)), 2);
    let trace = &obj.map("trace").unwrap().fd;
    assert_eq!(
        (0..4)
            .map(|k| lookup_u64(trace, k).unwrap())
            .collect::<Vec<_>>(),
        vec![1, 1, 1, 0]
    );
}

#[test]
fn a_program_jumping_into_its_own_slot_loops_until_it_stops() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall"), &fs.options()).unwrap();
    assert_eq!(run(&obj.main_program().fd, &selector_packet(1)), 3);
    let trace = &obj.map("trace").unwrap().fd;
    assert_eq!(lookup_u64(trace, 3), Some(4), "1/2 ran four times");
    assert_eq!(run(&obj.main_program().fd, &selector_packet(1)), 3);
    assert_eq!(lookup_u64(trace, 3), Some(8));
}

#[test]
fn program_array_stays_populated_while_the_object_is_held() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall"), &fs.options()).unwrap();
    let jmp = &obj.map("jmp_table").unwrap().fd;
    for (key, name) in [(0u32, "stage_a"), (1, "stage_b"), (2, "loop")] {
        let p = obj.program(name).unwrap();
        assert_eq!(p.tail_call.unwrap().key, key);
        let id = sys::info::prog_info(&p.fd).unwrap().id;
        assert_eq!(lookup_u32(jmp, key), Some(id), "{name}");
    }
    assert_eq!(lookup_u32(jmp, 3), None);
    for _ in 0..3 {
        assert_eq!(run(&obj.main_program().fd, &selector_packet(0)), 2);
    }
}

#[test]
fn btf_prog_array_values_load_their_target_program() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall_btf"), &fs.options()).unwrap();
    assert_eq!(obj.main_program().name, "tail_entry");
    assert!(obj.program("tail_a").is_some());
    assert_eq!(run(&obj.main_program().fd, &selector_packet(0)), 2);
    assert_eq!(
        run(&obj.main_program().fd, &selector_packet(1)),
        1,
        "empty slot"
    );
    let hits = &obj.map("hits").unwrap().fd;
    assert_eq!(lookup_u64(hits, 0), Some(2));
    assert_eq!(lookup_u64(hits, 1), Some(1));
}

#[test]
fn hex_octal_and_signed_slot_sections_are_stored_and_taken_as_iproute2_reads_them() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall_hex"), &fs.options()).unwrap();
    let slots: Vec<(&str, u32, u32)> = obj
        .programs
        .iter()
        .filter_map(|p| p.tail_call.map(|s| (p.section.as_str(), s.map_id, s.key)))
        .collect();
    assert_eq!(
        slots,
        vec![
            ("0xabccba/0", 0xabccba, 0),
            ("012/0x1", 10, 1),
            ("+0XABCCBA/02", 0xabccba, 2)
        ]
    );
    // Each selector reaches its slot's program: the tail call is taken
    // (the entry returns 7 when the slot is empty).
    let entry = &obj.main_program().fd;
    assert_eq!(run(entry, &selector_packet(0)), 2, "0xabccba/0");
    assert_eq!(run(entry, &selector_packet(1)), 3, "012/0x1");
    assert_eq!(run(entry, &selector_packet(2)), 4, "+0XABCCBA/02");
    assert_eq!(run(entry, &selector_packet(3)), 7, "no slot");
    let hex = &obj.map("jmp_hex").unwrap().fd;
    let id = sys::info::prog_info(&obj.program("hex_slot").unwrap().fd)
        .unwrap()
        .id;
    assert_eq!(lookup_u32(hex, 0), Some(id));
}

#[test]
fn a_section_that_looks_like_a_tail_call_but_is_not_stored_is_warned_about() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("tailcall_hex"), &fs.options()).unwrap();
    assert_eq!(obj.warnings.len(), 3, "{:#?}", obj.warnings);
    assert!(
        obj.warnings[0].starts_with("section '7/0' names tail-call slot 0 of map id 7 (0x7)")
            && obj.warnings[0].ends_with("no program array with that id: not loaded"),
        "{}",
        obj.warnings[0]
    );
    assert!(
        obj.warnings[1].starts_with("section '0x/1' names tail-call slot 1 of map id 0 (0x0)"),
        "{}",
        obj.warnings[1]
    );
    assert!(
        obj.warnings[2].starts_with("section '08/1' looks like a tail call but is not"),
        "{}",
        obj.warnings[2]
    );
    for name in ["orphan", "not_a_slot", "octal_typo"] {
        assert!(obj.program(name).is_none(), "{name} is not loaded");
    }
    let plain = load_file(&fixture("tailcall"), &fs.options()).unwrap();
    assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);
}

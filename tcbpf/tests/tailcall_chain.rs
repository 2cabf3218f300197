//! Tail calls: legacy `<id>/<key>` sections stored in their program array
//! (a chain and a cycle), and BTF program arrays with `values`.

mod load_common;

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

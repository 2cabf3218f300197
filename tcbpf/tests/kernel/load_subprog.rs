//! Subprogram calls: global and static functions in `.text` and a static
//! function in the program's own section, linked as libbpf does.

use crate::load_common;

use load_common::*;
use tcbpf::load::load_file;

#[test]
fn calls_into_text_and_same_section_compute_the_verdict() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("subprog"), &fs.options()).unwrap();
    let prog = &obj.main_program().fd;
    for b in [0u8, 1, 7, 50] {
        let want = u32::from(b) * 3 + 1 + 10 - 1;
        assert_eq!(run(prog, &selector_packet(b)), want, "byte {b}");
    }
    let info = tcbpf::sys::info::prog_info(prog).unwrap();
    assert_ne!(
        info.btf_id, 0,
        "func info for the three subprograms was accepted"
    );
}

#[test]
fn a_section_with_only_a_static_function_is_still_a_program() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("static_prog"), &fs.options()).unwrap();
    assert_eq!(obj.main_program().name, "local_prog");
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 5);
}

//! Map-in-map, both ways: legacy inner_id/inner_idx and BTF `values`.

use crate::load_common;

use load_common::*;
use tcbpf::load::load_file;
use tcbpf::sys;

#[test]
fn legacy_inner_map_is_stored_at_its_inner_idx() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("mim_legacy"), &fs.options()).unwrap();
    let inner = obj.map("inner").unwrap();
    let outer = obj.map("outer").unwrap();
    let inner_id = sys::info::map_info(&inner.fd).unwrap().id;
    assert_eq!(lookup_u32(&outer.fd, 3), Some(inner_id));
    assert_eq!(lookup_u32(&outer.fd, 0), None);
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 0);
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(17)), 0);
    assert_eq!(lookup_u64(&inner.fd, 0), Some(2));
    assert_eq!((outer.spec.inner_id, inner.spec.inner_idx), (10, 3));
}

#[test]
fn btf_values_fill_the_outer_map() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("mim_btf"), &fs.options()).unwrap();
    let prog = &obj.main_program().fd;
    assert_eq!(run(prog, &selector_packet(1)), 0);
    assert_eq!(run(prog, &selector_packet(2)), 0);
    assert_eq!(run(prog, &selector_packet(2)), 0);
    assert_eq!(run(prog, &selector_packet(3)), 1, "slot 3 is empty");
    assert_eq!(lookup_u64(&obj.map("inner_a").unwrap().fd, 0), Some(1));
    assert_eq!(lookup_u64(&obj.map("inner_b").unwrap().fd, 0), Some(2));
    let outer = obj.map("outer").unwrap();
    let info = sys::info::map_info(&outer.fd).unwrap();
    assert_eq!(info.btf_key_type_id, 0, "no BTF types on map-in-map");
    let b_id = sys::info::map_info(&obj.map("inner_b").unwrap().fd)
        .unwrap()
        .id;
    assert_eq!(lookup_u32(&outer.fd, 2), Some(b_id));
}

//! The base bpf(2) layer against the real kernel (run as root).

use std::os::fd::AsRawFd;
use tcbpf::sys::{self, map, MapFd};

fn hash_map(name: &str) -> MapFd {
    tcbpf_testkit::hash_map(name, 4, 8, 16)
}

#[test]
fn created_map_round_trips_values_and_reports_its_info() {
    tcbpf_testkit::require_root!();
    let m = hash_map("sys_base_rt");
    map::update(
        &m,
        &7u32.to_ne_bytes(),
        &99u64.to_ne_bytes(),
        map::update::NOEXIST,
    )
    .unwrap();
    let mut v = [0u8; 8];
    map::lookup(&m, &7u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 99);
    let info = sys::info::map_info(&m).unwrap();
    assert_eq!(info.kind(), Some(tcbpf::abi::MapType::Hash));
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 8, 16)
    );
    assert_eq!(info.name, "sys_base_rt");
    let err = map::update(
        &m,
        &7u32.to_ne_bytes(),
        &1u64.to_ne_bytes(),
        map::update::NOEXIST,
    )
    .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST));
    map::delete(&m, &7u32.to_ne_bytes()).unwrap();
    assert!(map::lookup(&m, &7u32.to_ne_bytes(), &mut v, 0)
        .unwrap_err()
        .is_not_found());
}

#[test]
fn map_fd_check_refuses_non_map_descriptors() {
    tcbpf_testkit::require_root!();
    let f = std::fs::File::open("/proc/self/status").unwrap();
    let err = MapFd::dup_from_raw(f.as_raw_fd()).unwrap_err();
    assert!(err.to_string().contains("not a bpf map"), "{err}");
    let m = hash_map("sys_base_chk");
    let again = MapFd::dup_from_raw(m.as_raw_fd()).unwrap();
    assert_eq!(
        sys::info::map_info(&again).unwrap().id,
        sys::info::map_info(&m).unwrap().id
    );
    assert!(MapFd::dup_from_raw(987_654).is_err());
}

#[test]
fn opening_by_id_reaches_the_same_map() {
    tcbpf_testkit::require_root!();
    let m = hash_map("sys_base_id");
    let id = sys::info::map_info(&m).unwrap().id;
    let ro = sys::obj::map_by_id(id, sys::obj::open::RDONLY).unwrap();
    let err = map::update(&ro, &1u32.to_ne_bytes(), &1u64.to_ne_bytes(), 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM));
}

#[test]
fn keyless_maps_take_elements_through_empty_keys() {
    tcbpf_testkit::require_root!();
    let q = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Queue as u32,
        key_size: 0,
        value_size: 4,
        max_entries: 4,
        name: "sys_base_q",
        ..Default::default()
    })
    .unwrap();
    map::update(&q, &[], &5u32.to_ne_bytes(), map::update::ANY).unwrap();
    let mut v = [0u8; 4];
    map::lookup(&q, &[], &mut v, 0).unwrap();
    assert_eq!(
        u32::from_ne_bytes(v),
        5,
        "a lookup of a queue peeks at its head"
    );
}

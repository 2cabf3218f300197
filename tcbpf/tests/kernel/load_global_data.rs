//! Global data (`.data`, `.rodata`, `.bss`) as array maps, and bpf_printk.

use crate::load_common;

use load_common::*;
use tcbpf::load::load_file;
use tcbpf::sys;

#[test]
fn global_variables_live_in_array_maps_and_rodata_is_frozen() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("global_data"), &fs.options()).unwrap();
    let prog = &obj.main_program().fd;
    assert_eq!(run(prog, &ipv4_packet(6)), 2, "verdict read from .rodata");
    assert_eq!(run(prog, &ipv4_packet(17)), 0);
    assert_eq!(run(prog, &arp_packet()), 0);

    let bss = obj.map(".bss").unwrap();
    let mut v = vec![0u8; bss.spec.value_size as usize];
    sys::map::lookup(&bss.fd, &0u32.to_ne_bytes(), &mut v, 0).unwrap();
    let packets = u64::from_ne_bytes(v[0..8].try_into().unwrap());
    let bytes = u64::from_ne_bytes(v[8..16].try_into().unwrap());
    assert_eq!((packets, bytes), (3, 192));

    assert_eq!(lookup_u64(&obj.map(".data").unwrap().fd, 0), Some(103));

    let rodata = obj.map(".rodata").unwrap();
    let mut ro = vec![0u8; rodata.spec.value_size as usize];
    sys::map::lookup(&rodata.fd, &0u32.to_ne_bytes(), &mut ro, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(ro[0..4].try_into().unwrap()), 2);
    let text = String::from_utf8_lossy(&ro);
    assert!(
        text.contains("tcbpf global_data: proto %u"),
        "printk format: {text:?}"
    );
    let info = sys::info::map_info(&rodata.fd).unwrap();
    assert_eq!(
        info.map_flags & tcbpf::abi::map_flags::RDONLY_PROG,
        tcbpf::abi::map_flags::RDONLY_PROG
    );
    let err = sys::map::update(&rodata.fd, &0u32.to_ne_bytes(), &ro, 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM), "frozen: {err}");
}

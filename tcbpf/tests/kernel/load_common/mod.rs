//! Shared by the loader tests: fixtures by object name, crafted packets,
//! and map reads. The bpffs mount and temporary directories come from
//! `tcbpf_testkit` (re-exported here for the tests that import only this).
#![allow(dead_code, unused_imports)]

use std::os::fd::AsFd;
use std::path::PathBuf;
use tcbpf::sys;
pub use tcbpf_testkit::{Bpffs, TempDir};

/// The committed object `bpf/NAME.o`.
pub fn fixture(name: &str) -> PathBuf {
    tcbpf_testkit::fixture(&format!("{name}.o"))
}

/// An Ethernet + IPv4 frame carrying IP protocol `proto`, padded to 64 bytes.
pub fn ipv4_packet(proto: u8) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[16..18].copy_from_slice(&50u16.to_be_bytes());
    p[22] = 64;
    p[23] = proto;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p
}

/// An ARP-typed frame (not IPv4).
pub fn arp_packet() -> Vec<u8> {
    let mut p = ipv4_packet(0);
    p[12..14].copy_from_slice(&[0x08, 0x06]);
    p
}

/// A frame whose first payload byte (offset 14) is `b`.
pub fn selector_packet(b: u8) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12..14].copy_from_slice(&[0x88, 0xb5]);
    p[14] = b;
    p
}

/// Runs `prog` once on `packet`, returning its verdict.
pub fn run(prog: impl AsFd, packet: &[u8]) -> u32 {
    sys::prog::test_run(prog, packet).expect("test run").retval
}

/// The u64 value at u32 `key`, `None` when absent.
pub fn lookup_u64(map: impl AsFd, key: u32) -> Option<u64> {
    let mut v = [0u8; 8];
    match sys::map::lookup(map, &key.to_ne_bytes(), &mut v, 0) {
        Ok(()) => Some(u64::from_ne_bytes(v)),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("lookup: {e}"),
    }
}

/// The u32 value at u32 `key` (program and map ids in fd-holding maps).
pub fn lookup_u32(map: impl AsFd, key: u32) -> Option<u32> {
    let mut v = [0u8; 4];
    match sys::map::lookup(map, &key.to_ne_bytes(), &mut v, 0) {
        Ok(()) => Some(u32::from_ne_bytes(v)),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("lookup: {e}"),
    }
}

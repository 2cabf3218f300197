//! Kernel objects built without clang or any object file: hand-assembled
//! classifiers the kernel verifies, a counter map, and plain hash maps.

use std::os::fd::AsFd;
use tcbpf::abi::Insn;
use tcbpf::sys::prog;
use tcbpf::sys::{map, MapFd, ProgFd};

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const EXIT: u8 = 0x95;
const MOV64_IMM: u8 = 0xb7;
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;
const CALL: u8 = 0x85;
const JNE_IMM: u8 = 0x55;
const JEQ_IMM: u8 = 0x15;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const ST_W: u8 = 0x62;
const LD_IMM64: u8 = 0x18;
const ATOMIC_DW: u8 = 0xdb;
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_SKB_LOAD_BYTES: i32 = 26;

/// `TC_ACT_OK` / `TCX_PASS`.
pub const PASS: i32 = 0;
/// `TC_ACT_SHOT` / `TCX_DROP`.
pub const SHOT: i32 = 2;

fn load(insns: &[Insn], name: &str) -> ProgFd {
    prog::load(&prog::ProgLoad {
        prog_type: tcbpf::abi::ProgType::SchedCls as u32,
        insns,
        license: "GPL",
        name,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("load {name}: {e}\n{}", e.log))
    .fd
}

/// A classifier that returns `verdict` for every packet.
pub fn constant_prog(verdict: i32) -> ProgFd {
    load(
        &[insn(MOV64_IMM, 0, 0, 0, verdict), insn(EXIT, 0, 0, 0, 0)],
        "tc_const",
    )
}

/// A one-entry array map of u64 counters.
pub fn counter_map() -> MapFd {
    map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        name: "tc_counter",
        ..Default::default()
    })
    .expect("create counter map")
}

/// The counter in `m`.
pub fn read_counter(m: &MapFd) -> u64 {
    let mut v = [0u8; 8];
    map::lookup(m, &0u32.to_ne_bytes(), &mut v, 0).expect("lookup counter");
    u64::from_ne_bytes(v)
}

/// A classifier that counts IPv4 UDP packets to `port` into `counter`
/// (atomically) and returns `verdict` for those; every other packet passes.
pub fn udp_counter_prog(counter: &MapFd, port: u16, verdict: i32) -> ProgFd {
    use std::os::fd::AsRawFd;
    let fd = counter.as_fd().as_raw_fd();
    let port_le = port.swap_bytes() as i32; // the two wire bytes read as a u16
    let insns = [
        insn(MOV64_REG, 6, 1, 0, 0),     // r6 = skb
        insn(LDX_W, 1, 6, 16, 0),        // r1 = skb->protocol (be16)
        insn(JNE_IMM, 1, 0, 29, 0x0008), // not IPv4 -> pass
        insn(MOV64_REG, 1, 6, 0, 0),     // r1 = skb
        insn(MOV64_IMM, 2, 0, 0, 23),    // offset of the IP protocol
        insn(MOV64_REG, 3, 10, 0, 0),    // r3 = fp
        insn(ADD64_IMM, 3, 0, 0, -8),    // r3 = fp - 8
        insn(MOV64_IMM, 4, 0, 0, 1),     // one byte
        insn(CALL, 0, 0, 0, HELPER_SKB_LOAD_BYTES),
        insn(JNE_IMM, 0, 0, 22, 0), // error -> pass
        insn(LDX_B, 1, 10, -8, 0),
        insn(JNE_IMM, 1, 0, 20, 17), // not UDP -> pass
        insn(MOV64_REG, 1, 6, 0, 0),
        insn(MOV64_IMM, 2, 0, 0, 36), // UDP destination port (IHL 5)
        insn(MOV64_REG, 3, 10, 0, 0),
        insn(ADD64_IMM, 3, 0, 0, -8),
        insn(MOV64_IMM, 4, 0, 0, 2),
        insn(CALL, 0, 0, 0, HELPER_SKB_LOAD_BYTES),
        insn(JNE_IMM, 0, 0, 13, 0),
        insn(LDX_H, 1, 10, -8, 0),
        insn(JNE_IMM, 1, 0, 11, port_le), // other port -> pass
        insn(ST_W, 10, 0, -4, 0),         // key 0 at fp-4
        insn(MOV64_REG, 2, 10, 0, 0),
        insn(ADD64_IMM, 2, 0, 0, -4),
        insn(LD_IMM64, 1, 1, 0, fd), // r1 = map (BPF_PSEUDO_MAP_FD)
        insn(0, 0, 0, 0, 0),
        insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP),
        insn(JEQ_IMM, 0, 0, 2, 0), // no value -> verdict
        insn(MOV64_IMM, 1, 0, 0, 1),
        insn(ATOMIC_DW, 0, 1, 0, 0), // lock *(u64 *)(r0) += r1
        insn(MOV64_IMM, 0, 0, 0, verdict),
        insn(EXIT, 0, 0, 0, 0),
        insn(MOV64_IMM, 0, 0, 0, PASS), // pass
        insn(EXIT, 0, 0, 0, 0),
    ];
    load(&insns, "tc_udp_count")
}

/// A hash map of `max_entries` with keys of `key_size` and values of
/// `value_size` bytes, named `name`.
pub fn hash_map(name: &str, key_size: u32, value_size: u32, max_entries: u32) -> MapFd {
    map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size,
        value_size,
        max_entries,
        name,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("create hash map {name}: {e}"))
}

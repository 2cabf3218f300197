//! `sum`'s step for one key, in the kernel and in one go: record the key
//! as reconciled in the transaction's `done` map, and add its increments
//! to the new map (or insert them when the new map lacks the key).
//!
//! Done from user space these are two system calls, and a process killed
//! between them leaves increments added but not recorded: the rerun adds
//! them a second time. Here one `BPF_PROG_TEST_RUN` of a small tc
//! program does both (a signal cannot stop a program half-way), the record
//! first: when the record fails nothing was added, and once it is in,
//! adds to an element found cannot fail. The one path left with two steps
//! is a key inserted whose record then fails (the `done` map out of
//! memory): the insert stays, the record is retried from user space, and
//! the upgrade reports it when that fails too.
//!
//! The program, built here for one map pair (no crate assembles eBPF at
//! run time; `crate::atomic` builds its adder the same way), is a tc
//! classifier run on a test packet: `BPF_PROG_TYPE_SYSCALL`, which takes
//! its arguments as a context, is sleepable, and sleepable programs may
//! not use an LPM trie. The packet is an Ethernet header, then the key
//! (padded to 8) and one u64 increment per counter; the return value is
//! the outcome in its low byte and the errno of a failed helper above it.
//! The value to record (the old map's final value) and the value to
//! insert come through a one-slot scratch array written before each run:
//! helpers read values from map memory or the stack, and the stack holds
//! 512 bytes.

use crate::abi::{Insn, ProgType};
use crate::atomic::{insn, Width, R0, R1, R10, R2, R6};
use crate::sys::{self, map as sysmap, prog, MapFd, ProgFd};
use std::os::fd::AsRawFd;

const R3: u8 = 3;
const R4: u8 = 4;
const R7: u8 = 7;
const R8: u8 = 8;

const LOOKUP: i32 = 1; // BPF_FUNC_map_lookup_elem
const UPDATE: i32 = 2; // BPF_FUNC_map_update_elem
const LOAD_BYTES: i32 = 26; // BPF_FUNC_skb_load_bytes

/// The test packet's Ethernet header: no addresses, the local
/// experimental EtherType (nothing in the kernel parses past it).
const ETH_HEADER: [u8; 14] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0xb5];
const BPF_ANY: i32 = 0;
const BPF_NOEXIST: i32 = 1;

/// What a run of the program returns.
const DONE: u32 = 0;
/// The insert (other than EEXIST) or the record failed: nothing changed.
const FAILED: u32 = 1;
const INSERTED_NOT_RECORDED: u32 = 2;
const NO_SCRATCH: u32 = 3;
const GONE: u32 = 4;
const SHORT_PACKET: u32 = 5;

/// The maps a [`SumAdd`] works on.
pub(super) struct Maps<'a> {
    /// The new map, added to.
    pub new: &'a MapFd,
    /// The transaction's record: key → the old final value.
    pub done: &'a MapFd,
    /// The old map's value size as `done` holds it (all CPUs' copies).
    pub record_size: usize,
    /// The new map's value size as a program writes it (one CPU's copy).
    pub insert_size: usize,
}

/// The loaded program and its scratch slot, for one migrated map.
pub(super) struct SumAdd<'a> {
    prog: ProgFd,
    done: &'a MapFd,
    scratch: MapFd,
    key_pad: usize,
    counters: usize,
    insert_off: usize,
    /// The scratch slot's bytes: the record, then the value to insert.
    slot: Vec<u8>,
    /// The test packet.
    packet: Vec<u8>,
}

impl<'a> SumAdd<'a> {
    /// Builds and loads the program for `maps` (keys of `key_size`
    /// bytes), adding to `counters` (byte offset and size in the new
    /// value; each of 4 or 8 bytes).
    pub(super) fn new(
        maps: &Maps<'a>,
        key_size: usize,
        counters: &[(usize, usize)],
    ) -> Result<SumAdd<'a>, String> {
        if key_size == 0 || key_size > crate::atomic::MAX_KEY_SIZE as usize {
            return Err(format!(
                "a {key_size}-byte key: sum takes keys of 1 to {} bytes",
                crate::atomic::MAX_KEY_SIZE
            ));
        }
        let mut fields = Vec::with_capacity(counters.len());
        for &(off, size) in counters {
            let width = match size {
                4 => Width::U32,
                8 => Width::U64,
                _ => {
                    return Err(format!(
                        "a {size}-byte counter at offset {off} cannot be added atomically"
                    ))
                }
            };
            if off % size != 0 || off > i16::MAX as usize {
                return Err(format!(
                    "a {size}-byte counter at offset {off} is not aligned to its size"
                ));
            }
            fields.push((off as i16, width));
        }
        let key_pad = key_size.next_multiple_of(8);
        if key_pad + 8 * fields.len() + 8 > 512 {
            return Err(format!(
                "a {key_size}-byte key and {} counters do not fit the 512-byte eBPF stack",
                fields.len()
            ));
        }
        let insert_off = maps.record_size.next_multiple_of(8);
        let slot_size = insert_off + maps.insert_size.max(1);
        let scratch = sysmap::create(&sysmap::MapCreate {
            map_type: crate::abi::MapType::Array as u32,
            key_size: 4,
            value_size: slot_size as u32,
            max_entries: 1,
            name: "tcbpf_sum",
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let insns = program(
            [maps.new, maps.done, &scratch].map(|m| m.as_raw_fd()),
            key_pad as i16,
            &fields,
            insert_off as i32,
        );
        let prog = prog::load(&prog::ProgLoad {
            prog_type: ProgType::SchedCls as u32,
            insns: &insns,
            license: "GPL",
            name: "tcbpf_sum_add",
            ..Default::default()
        })
        .map(|l| l.fd)
        .map_err(|e| e.with_last_line())?;
        Ok(SumAdd {
            prog,
            done: maps.done,
            scratch,
            key_pad,
            counters: fields.len(),
            insert_off,
            slot: vec![0; slot_size],
            packet: vec![0; ETH_HEADER.len() + key_pad + 8 * fields.len()],
        })
    }

    /// Records `key` → `record` and adds `deltas` (one per counter) to
    /// the key's element in the new map, or inserts `insert` there when it
    /// has none, in one run. `record` and `insert` are at most the sizes
    /// given to [`SumAdd::new`].
    pub(super) fn apply(
        &mut self,
        key: &[u8],
        deltas: &[u64],
        record: &[u8],
        insert: &[u8],
    ) -> Result<(), String> {
        debug_assert_eq!(deltas.len(), self.counters);
        self.slot.fill(0);
        self.slot[..record.len()].copy_from_slice(record);
        self.slot[self.insert_off..self.insert_off + insert.len()].copy_from_slice(insert);
        sysmap::update(&self.scratch, &0u32.to_ne_bytes(), &self.slot, 0)
            .map_err(|e| e.to_string())?;
        self.packet.fill(0);
        self.packet[..ETH_HEADER.len()].copy_from_slice(&ETH_HEADER);
        let at = ETH_HEADER.len();
        self.packet[at..at + key.len()].copy_from_slice(key);
        for (i, d) in deltas.iter().enumerate() {
            let at = at + self.key_pad + 8 * i;
            self.packet[at..at + 8].copy_from_slice(&d.to_ne_bytes());
        }
        // A key the new program deletes between the insert's EEXIST and
        // the lookup is tried again (it is then missing: inserted).
        for _ in 0..3 {
            let ret = sys::prog::test_run(&self.prog, &self.packet)
                .map_err(|e| e.to_string())?
                .retval;
            let why = || std::io::Error::from_raw_os_error((ret >> 8) as i32).to_string();
            match ret & 0xff {
                DONE => return Ok(()),
                GONE => continue,
                FAILED => return Err(format!("inserting or recording the key: {}", why())),
                INSERTED_NOT_RECORDED => {
                    // The insert is in: the record must follow, from here.
                    return sysmap::update(self.done, key, record, 0).map_err(|e| {
                        format!(
                            "the key was inserted but not recorded ({}, then {e}): a rerun would add it again",
                            why()
                        )
                    });
                }
                NO_SCRATCH => return Err("the scratch slot is missing".into()),
                SHORT_PACKET => return Err("the test packet was cut short".into()),
                other => return Err(format!("the sum program returned {other}")),
            }
        }
        Err("the key was deleted and re-created three times while being added to".into())
    }
}

/// A jump to a label, resolved when the program is complete.
enum Op {
    Insn(Insn),
    /// `code` (a conditional jump on `dst` against `imm`, or `ja`).
    Jump(u8, u8, i32, &'static str),
    Label(&'static str),
}

fn mov(dst: u8, src: u8) -> Op {
    Op::Insn(insn(0xbf, dst, src, 0, 0))
}

fn mov_imm(dst: u8, imm: i32) -> Op {
    Op::Insn(insn(0xb7, dst, 0, 0, imm))
}

fn add_imm(dst: u8, imm: i32) -> Op {
    Op::Insn(insn(0x07, dst, 0, 0, imm))
}

fn call(helper: i32) -> Op {
    Op::Insn(insn(0x85, 0, 0, 0, helper))
}

fn exit_with(code: u32) -> [Op; 2] {
    [mov_imm(R0, code as i32), Op::Insn(insn(0x95, 0, 0, 0, 0))]
}

/// `reg = map` (`BPF_LD_IMM64` with `BPF_PSEUDO_MAP_FD`).
fn load_map(reg: u8, fd: i32) -> [Op; 2] {
    [
        Op::Insn(insn(0x18, reg, 1, 0, fd)),
        Op::Insn(Insn::default()),
    ]
}

/// `r0 = -r0 << 8 | code` (a helper's negative errno above the
/// outcome), then exit.
fn exit_with_errno(code: u32) -> [Op; 4] {
    [
        Op::Insn(insn(0x87, R0, 0, 0, 0)),           // r0 = -r0
        Op::Insn(insn(0x67, R0, 0, 0, 8)),           // r0 <<= 8
        Op::Insn(insn(0x47, R0, 0, 0, code as i32)), // r0 |= code
        Op::Insn(insn(0x95, 0, 0, 0, 0)),
    ]
}

/// The program for maps `[new, done, scratch]` (descriptors), keys padded
/// to `kp` bytes, the counters' offsets and widths, and the offset of the
/// value to insert in the scratch slot. Returns one of the codes above.
fn program(maps: [i32; 3], kp: i16, counters: &[(i16, Width)], insert_off: i32) -> Vec<Insn> {
    let [new, done, scratch] = maps;
    // The stack: the key at `base`, the increments after it up to r10,
    // the scratch slot's index (0) below the key.
    let args = kp + 8 * counters.len() as i16;
    let base = -args;
    let slot_key = base - 8;
    let key_ptr = |reg| [mov(reg, R10), add_imm(reg, i32::from(base))];
    let mut ops = vec![mov(R6, R1)]; // r6 = skb
                                     // skb_load_bytes(skb, 14, r10 + base, kp + 8 * counters)
    ops.extend([mov(R1, R6), mov_imm(R2, ETH_HEADER.len() as i32)]);
    ops.extend([mov(R3, R10), add_imm(R3, i32::from(base))]);
    ops.extend([mov_imm(R4, i32::from(args)), call(LOAD_BYTES)]);
    ops.push(Op::Jump(0x55, R0, 0, "short_packet")); // if r0 != 0
    ops.push(Op::Insn(insn(0x62, R10, 0, slot_key, 0))); // *(u32 *)(r10 + slot_key) = 0
                                                         // r8 = the scratch slot: the record at 0, the value to insert after.
    ops.extend(load_map(R1, scratch));
    ops.extend([mov(R2, R10), add_imm(R2, i32::from(slot_key)), call(LOOKUP)]);
    ops.push(Op::Jump(0x15, R0, 0, "no_scratch")); // if r0 == 0
    ops.push(mov(R8, R0));
    // Insert when the new map lacks the key (also right for an LPM trie,
    // whose lookup would find a shorter prefix).
    ops.extend(load_map(R1, new));
    ops.extend(key_ptr(R2));
    ops.extend([
        mov(R3, R8),
        add_imm(R3, insert_off),
        mov_imm(R4, BPF_NOEXIST),
    ]);
    ops.push(call(UPDATE));
    ops.push(Op::Jump(0x15, R0, 0, "inserted")); // if r0 == 0
    ops.push(Op::Jump(0x55, R0, -libc::EEXIST, "failed")); // if r0 != -EEXIST
    ops.extend(load_map(R1, new));
    ops.extend(key_ptr(R2));
    ops.push(call(LOOKUP));
    ops.push(Op::Jump(0x15, R0, 0, "gone"));
    ops.push(mov(R7, R0));
    // The record first: when it fails, nothing is added.
    let record = |ops: &mut Vec<Op>| {
        ops.extend(load_map(R1, done));
        ops.extend(key_ptr(R2));
        ops.extend([mov(R3, R8), mov_imm(R4, BPF_ANY), call(UPDATE)]);
    };
    record(&mut ops);
    ops.push(Op::Jump(0x55, R0, 0, "failed")); // if r0 != 0
    for (i, &(off, width)) in counters.iter().enumerate() {
        ops.push(Op::Insn(insn(0x79, R1, R10, base + kp + 8 * i as i16, 0))); // r1 = increment i
        let code = match width {
            Width::U32 => 0xc3, // BPF_STX | BPF_ATOMIC | BPF_W
            Width::U64 => 0xdb, // BPF_STX | BPF_ATOMIC | BPF_DW
        };
        ops.push(Op::Insn(insn(code, R7, R1, off, 0))); // lock *(r7 + off) += r1
    }
    ops.extend(exit_with(DONE));
    ops.push(Op::Label("inserted"));
    record(&mut ops);
    ops.push(Op::Jump(0x55, R0, 0, "inserted_failed"));
    ops.extend(exit_with(DONE));
    ops.push(Op::Label("failed"));
    ops.extend(exit_with_errno(FAILED));
    ops.push(Op::Label("inserted_failed"));
    ops.extend(exit_with_errno(INSERTED_NOT_RECORDED));
    ops.push(Op::Label("no_scratch"));
    ops.extend(exit_with(NO_SCRATCH));
    ops.push(Op::Label("gone"));
    ops.extend(exit_with(GONE));
    ops.push(Op::Label("short_packet"));
    ops.extend(exit_with(SHORT_PACKET));
    assemble(ops)
}

/// Resolves the labels: a jump's offset counts instructions after it.
fn assemble(ops: Vec<Op>) -> Vec<Insn> {
    let mut at = std::collections::HashMap::new();
    let mut n = 0i32;
    for op in &ops {
        match op {
            Op::Label(l) => {
                at.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n as usize);
    for op in ops {
        match op {
            Op::Insn(i) => out.push(i),
            Op::Jump(code, dst, imm, label) => {
                let off = at[label] - out.len() as i32 - 1;
                out.push(insn(code, dst, 0, off as i16, imm));
            }
            Op::Label(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{map_flags, MapType};

    fn create(map_type: MapType, key_size: u32, value_size: u32, flags: u32) -> MapFd {
        sysmap::create(&sysmap::MapCreate {
            map_type: map_type as u32,
            key_size,
            value_size,
            max_entries: 4,
            map_flags: flags,
            name: "sum_test",
            ..Default::default()
        })
        .unwrap()
    }

    /// Every map type `sum` migrates: a missing key is inserted, an
    /// existing one added to (both counters), and each recorded.
    #[test]
    fn inserts_adds_and_records_in_every_map_type_sum_migrates() {
        tcbpf_testkit::require_root!();
        let types = [
            (MapType::Hash, 0),
            (MapType::LruHash, 0),
            (MapType::PercpuHash, 0),
            (MapType::LruPercpuHash, 0),
            (MapType::Array, 0),
            (MapType::PercpuArray, 0),
            (MapType::LpmTrie, map_flags::NO_PREALLOC),
        ];
        for (map_type, flags) in types {
            let key_size = if map_type == MapType::LpmTrie { 8 } else { 4 };
            let new = create(map_type, key_size, 16, flags);
            let sizes = sysmap::ElemSizes::of(&new).unwrap();
            let done = create(MapType::Hash, key_size, 24, 0);
            let mut add = SumAdd::new(
                &Maps {
                    new: &new,
                    done: &done,
                    record_size: 24,
                    insert_size: sizes.cpu_stride(),
                },
                key_size as usize,
                &[(0, 8), (8, 4)],
            )
            .unwrap_or_else(|e| panic!("{map_type:?}: {e}"));
            // An LPM key: prefix length 32, then the address.
            let key: Vec<u8> = if key_size == 8 {
                [32u32.to_ne_bytes(), [10, 0, 0, 1]].concat()
            } else {
                1u32.to_ne_bytes().to_vec()
            };
            let value = |a: u64, b: u32| [&a.to_ne_bytes()[..], &b.to_ne_bytes(), &[0; 4]].concat();
            let record = [7u8; 24];
            add.apply(&key, &[5, 6], &record, &value(5, 6))
                .unwrap_or_else(|e| panic!("{map_type:?}: {e}"));
            add.apply(&key, &[10, 20], &[8u8; 24], &value(10, 20))
                .unwrap_or_else(|e| panic!("{map_type:?}: {e}"));
            // Summed over CPUs: 15 and 26 (arrays start at 0 and are only
            // added to).
            let mut all = vec![0u8; sizes.value()];
            sysmap::lookup(&new, &key, &mut all, 0).unwrap();
            let (mut a, mut b) = (0u64, 0u32);
            for cpu in 0..sizes.cpus() {
                let v = &all[cpu * sizes.cpu_stride()..];
                a += u64::from_ne_bytes(v[..8].try_into().unwrap());
                b += u32::from_ne_bytes(v[8..12].try_into().unwrap());
            }
            assert_eq!((a, b), (15, 26), "{map_type:?}");
            let mut rec = [0u8; 24];
            sysmap::lookup(&done, &key, &mut rec, 0).unwrap();
            assert_eq!(rec, [8u8; 24], "{map_type:?}: the last record");
        }
    }
}

//! Read-modify-write of a map value done in the kernel: an atomic add to a
//! 4- or 8-byte field of the value at a key, for shell scripts that count
//! (`tcbpf map add`). `BPF_F_LOCK` only makes each copy of a value atomic;
//! a `lookup` then `update` from several processes loses increments, this
//! does not.
//!
//! How: a tiny `BPF_PROG_TYPE_SYSCALL` program, built here for one map,
//! key size and field, looks the key up and does `lock *(u{32,64} *)(value +
//! offset) += n` with BPF_ATOMIC | BPF_FETCH; it runs through
//! BPF_PROG_TEST_RUN on a context that carries the key and `n` in and the
//! old value out. Syscall programs are sleepable, so the map must be one a
//! sleepable program may use (hash, array, their LRU and per-CPU kinds).
//! Loading it needs CAP_BPF. Per-CPU maps get the add on the
//! copy of the CPU it runs on (their sum moves by `n`). It adds to an
//! existing element only: a missing key is reported, not created. A
//! read-only descriptor or a frozen map is refused before the load (the
//! kernel checks neither for a program's writes).

use crate::abi::{Insn, ProgType};
use crate::sys::prog::{self, ProgLoad};
use crate::sys::{self, ProgFd};
use std::os::fd::{AsRawFd, BorrowedFd};

/// `BPF_F_SLEEPABLE`: required for `BPF_PROG_TYPE_SYSCALL`.
const BPF_F_SLEEPABLE: u32 = 1 << 4;

/// Largest key the program copies to its stack.
pub const MAX_KEY_SIZE: u32 = 256;

/// The width of the field added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// A 32-bit field (the low 32 bits of `n` are added, wrapping).
    U32,
    /// A 64-bit field.
    U64,
}

impl Width {
    /// Its size in bytes.
    pub fn bytes(self) -> u32 {
        match self {
            Width::U32 => 4,
            Width::U64 => 8,
        }
    }
}

/// An adder for one map, key size and field: load once, add many times.
#[derive(Debug)]
pub struct AtomicAdd {
    prog: ProgFd,
    key_size: usize,
    width: Width,
}

/// What [`AtomicAdd::new`] can fail with.
#[derive(Debug)]
pub enum AddError {
    /// The field or key does not fit the rules (named in the text).
    Invalid(String),
    /// User space may not write the map: the descriptor is read-only or
    /// the map is frozen (the program would write where `update` may not).
    Denied(String),
    /// Reading the descriptor's mode failed.
    Sys(sys::Error),
    /// The kernel refused the program (no CAP_BPF: EPERM; a map type
    /// programs cannot use: the verifier's last line).
    Load(prog::ProgLoadError),
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Invalid(s) | AddError::Denied(s) => f.write_str(s),
            AddError::Sys(e) => write!(f, "{e}"),
            AddError::Load(e) => f.write_str(&e.with_last_line()),
        }
    }
}

impl std::error::Error for AddError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AddError::Invalid(_) | AddError::Denied(_) => None,
            AddError::Sys(e) => Some(e),
            AddError::Load(e) => Some(e),
        }
    }
}

impl AddError {
    /// The class of failure: bad input for a field that does not fit, the
    /// load's errno class otherwise.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            AddError::Invalid(_) => crate::ErrorKind::BadInput,
            AddError::Denied(_) => crate::ErrorKind::Permission,
            AddError::Sys(e) => e.kind(),
            AddError::Load(e) => e.kind(),
        }
    }
}

pub(crate) const R0: u8 = 0;
pub(crate) const R1: u8 = 1;
pub(crate) const R2: u8 = 2;
pub(crate) const R6: u8 = 6;
pub(crate) const R10: u8 = 10;

/// One instruction: `dst` and `src` packed into `regs` as the kernel
/// reads them.
pub(crate) fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program: context = key (padded to 8) | n (u64) | old value (u64).
/// Returns 0 after adding, 1 when the key is not in the map.
fn program(map_fd: i32, key_size: u32, offset: u32, width: Width) -> Vec<Insn> {
    let kp = key_size.next_multiple_of(8) as i16;
    let mut p = vec![insn(0xbf, R6, R1, 0, 0)]; // r6 = ctx
    for i in (0..kp).step_by(8) {
        p.push(insn(0x79, R0, R6, i, 0)); // r0 = *(u64 *)(r6 + i)
        p.push(insn(0x7b, R10, R0, i - kp, 0)); // *(u64 *)(r10 - kp + i) = r0
    }
    p.push(insn(0xbf, R2, R10, 0, 0)); // r2 = r10
    p.push(insn(0x07, R2, 0, 0, -i32::from(kp))); // r2 += -kp
    p.push(insn(0x18, R1, 1, 0, map_fd)); // r1 = map (BPF_PSEUDO_MAP_FD)
    p.push(Insn::default());
    p.push(insn(0x85, 0, 0, 0, 1)); // call bpf_map_lookup_elem
    p.push(insn(0x55, R0, 0, 2, 0)); // if r0 != 0 goto found
    p.push(insn(0xb7, R0, 0, 0, 1)); // r0 = 1
    p.push(insn(0x95, 0, 0, 0, 0)); // exit
    p.push(insn(0x79, R1, R6, kp, 0)); // found: r1 = n
    let atomic = match width {
        Width::U32 => 0xc3, // BPF_STX | BPF_ATOMIC | BPF_W
        Width::U64 => 0xdb, // BPF_STX | BPF_ATOMIC | BPF_DW
    };
    p.push(insn(atomic, R0, R1, offset as i16, 0x01)); // r1 = fetch_add(r0 + off, r1)
    p.push(insn(0x7b, R6, R1, kp + 8, 0)); // ctx.old = r1
    p.push(insn(0xb7, R0, 0, 0, 0)); // r0 = 0
    p.push(insn(0x95, 0, 0, 0, 0)); // exit
    p
}

impl AtomicAdd {
    /// Builds and loads the adder for `map` (keys of `key_size` bytes,
    /// values of `value_size`), adding to the `width` field at byte
    /// `offset` of the value, which must be aligned to its width. A
    /// program writes a map whatever mode the descriptor it was loaded
    /// with has, so this refuses a read-only descriptor and a frozen map
    /// first, as `BPF_MAP_UPDATE_ELEM` would.
    pub fn new(
        map: BorrowedFd<'_>,
        key_size: u32,
        value_size: u32,
        offset: u32,
        width: Width,
    ) -> Result<AtomicAdd, AddError> {
        if key_size == 0 || key_size > MAX_KEY_SIZE {
            return Err(AddError::Invalid(format!(
                "key of {key_size} bytes: add takes keys of 1 to {MAX_KEY_SIZE} bytes"
            )));
        }
        let end = u64::from(offset) + u64::from(width.bytes());
        if end > u64::from(value_size) || offset > i16::MAX as u32 {
            return Err(AddError::Invalid(format!(
                "a {}-byte field at offset {offset} does not fit the {value_size}-byte value",
                width.bytes()
            )));
        }
        if offset % width.bytes() != 0 {
            return Err(AddError::Invalid(format!(
                "a {}-byte field at offset {offset} is not aligned to its size (the kernel's atomic add needs it)",
                width.bytes()
            )));
        }
        let fdinfo = sys::info::map_fdinfo(map).map_err(AddError::Sys)?;
        if !fdinfo.writable {
            return Err(AddError::Denied(
                "the map descriptor is read-only: add writes, as update does".into(),
            ));
        }
        if fdinfo.frozen {
            return Err(AddError::Denied(
                "the map is frozen: user space may not write it".into(),
            ));
        }
        let insns = program(map.as_raw_fd(), key_size, offset, width);
        let loaded = prog::load(&ProgLoad {
            prog_type: ProgType::Syscall as u32,
            insns: &insns,
            license: "GPL",
            name: "tcbpf_map_add",
            // The kernel takes syscall programs only as sleepable.
            prog_flags: BPF_F_SLEEPABLE,
            ..Default::default()
        })
        .map_err(AddError::Load)?;
        Ok(AtomicAdd {
            prog: loaded.fd,
            key_size: key_size as usize,
            width,
        })
    }

    /// Adds `n` (two's complement: a negative `i64` as `u64` subtracts) to
    /// the field of the element at `key`. Returns the field's old value, or
    /// None when the key is not in the map.
    pub fn add(&self, key: &[u8], n: u64) -> sys::Result<Option<u64>> {
        let kp = self.key_size.next_multiple_of(8);
        let mut ctx = vec![0u8; kp + 16];
        let len = key.len().min(self.key_size);
        ctx[..len].copy_from_slice(&key[..len]);
        ctx[kp..kp + 8].copy_from_slice(&n.to_ne_bytes());
        let ret = prog::test_run_syscall(&self.prog, &mut ctx)?;
        if ret != 0 {
            return Ok(None);
        }
        let old = u64::from_ne_bytes(ctx[kp + 8..kp + 16].try_into().expect("8 bytes"));
        Ok(Some(match self.width {
            Width::U32 => old & 0xffff_ffff,
            Width::U64 => old,
        }))
    }

    /// The field's width.
    pub fn width(&self) -> Width {
        self.width
    }
}

//! Classic BPF (a pcap filter as libpcap compiles it) translated into
//! eBPF instructions, the body of `dump.c`'s `dump_filter(const struct
//! dump_event *ev)`: the filter runs in the kernel on the bytes the fentry
//! program captured, before anything is written to the ring buffer.
//!
//! Registers: A is `w0`, X is `w7`, the event `r6`, its captured length
//! `w8` and the packet's length `w9`; the scratch memory `M[0..16]` lives
//! on the stack (zeroed first). Every packet load checks its bytes against
//! the captured length at run time (a load past it ends the filter with 0,
//! as in the kernel's classic interpreter) and, for the verifier, against
//! the event's data size. Pure: no syscalls.

use crate::abi::Insn;
use crate::tc::classic::ClassicInsn;
use std::fmt;

/// Bytes of `struct dump_event` before its data.
pub const EVENT_DATA_OFF: i16 = 56;
/// Offset of `caplen` in `struct dump_event`.
pub const EVENT_CAPLEN_OFF: i16 = 16;
/// Offset of `len` in `struct dump_event`.
pub const EVENT_LEN_OFF: i16 = 12;
/// Size of `struct dump_event`'s data (`SNAP_MAX`).
pub const SNAP_MAX: u32 = 2048;

/// Why a classic program cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError(pub String);

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for TranslateError {}

// eBPF opcodes.
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
const LDX_MEM: u8 = 0x61; // LDX | MEM, size bits added
const STX_MEM: u8 = 0x63;
const ST_MEM: u8 = 0x62;
const X: u8 = 0x08;
const MOV: u8 = 0xb0;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const END_TO_BE: u8 = 0xdc; // ALU | END | TO_BE
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JGT: u8 = 0x20;
const JLT: u8 = 0xa0;
const EXIT: u8 = 0x90;
const SIZE_W: u8 = 0x00;
const SIZE_H: u8 = 0x08;
const SIZE_B: u8 = 0x10;
const SIZE_DW: u8 = 0x18;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;
const R10: u8 = 10;

/// Where a jump goes before offsets are known.
#[derive(Clone, Copy)]
enum Target {
    None,
    Classic(usize),
    Fail,
}

struct Emitter {
    out: Vec<(Insn, Target)>,
}

impl Emitter {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.out.push((
            Insn {
                code,
                regs: dst | (src << 4),
                off,
                imm,
            },
            Target::None,
        ));
    }

    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Target) {
        self.out.push((
            Insn {
                code,
                regs: dst | (src << 4),
                off: 0,
                imm,
            },
            to,
        ));
    }

    /// `if (u32)reg < need goto fail`: the captured length check.
    fn need(&mut self, need: u32) {
        self.jump(JMP | JLT, R8, 0, need as i32, Target::Fail);
    }

    /// Loads `size` bytes at constant packet offset `k` into `dst`
    /// (network order to host).
    fn load_abs(&mut self, dst: u8, k: u32, size: u32) {
        match k.checked_add(size) {
            Some(end) if end <= SNAP_MAX => {
                self.need(end);
                self.op(
                    LDX_MEM | size_bits(size),
                    dst,
                    R6,
                    EVENT_DATA_OFF + k as i16,
                    0,
                );
                self.swap_to_host(dst, size);
            }
            // Past any capture: the filter fails here.
            _ => self.jump(JMP | JA, 0, 0, 0, Target::Fail),
        }
    }

    fn swap_to_host(&mut self, dst: u8, size: u32) {
        if size > 1 {
            self.op(END_TO_BE, dst, 0, 0, (size * 8) as i32);
        }
    }
}

fn size_bits(size: u32) -> u8 {
    match size {
        1 => SIZE_B,
        2 => SIZE_H,
        _ => SIZE_W,
    }
}

fn scratch_off(k: u32) -> Result<i16, TranslateError> {
    if k >= 16 {
        return Err(TranslateError(format!(
            "scratch memory M[{k}] out of range"
        )));
    }
    Ok(-64 + 4 * k as i16)
}

/// Translates `prog` into the body of `dump_filter`. Errors for what the
/// kernel's classic checker refuses too (a division by constant zero,
/// M[k] past 16, jumps out of the program, an unknown opcode).
pub fn translate(prog: &[ClassicInsn]) -> Result<Vec<Insn>, TranslateError> {
    if prog.is_empty() {
        return Err(TranslateError("an empty classic program".into()));
    }
    let mut e = Emitter { out: Vec::new() };
    // Prologue: a null event fails; A, X and M[] start at zero.
    e.jump(JMP | JEQ, R1, 0, 0, Target::Fail);
    e.op(ALU64 | MOV | X, R6, R1, 0, 0);
    e.op(LDX_MEM | SIZE_W, R8, R6, EVENT_CAPLEN_OFF, 0);
    e.op(LDX_MEM | SIZE_W, R9, R6, EVENT_LEN_OFF, 0);
    e.op(ALU | MOV, R0, 0, 0, 0);
    e.op(ALU | MOV, R7, 0, 0, 0);
    for slot in 1..=8i16 {
        e.op(ST_MEM | SIZE_DW, R10, 0, -8 * slot, 0);
    }
    let mut starts = Vec::with_capacity(prog.len());
    for (i, c) in prog.iter().enumerate() {
        starts.push(e.out.len());
        let code = c.code;
        let k = c.k;
        let bad =
            |what: &str| TranslateError(format!("instruction {i} (code {code:#06x}): {what}"));
        let target = |off: u32| -> Result<Target, TranslateError> {
            let t = i + 1 + off as usize;
            if t >= prog.len() {
                return Err(bad("jumps past the end of the program"));
            }
            Ok(Target::Classic(t))
        };
        let size = match code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            0x10 => 1,
            _ => 0,
        };
        match code & 0x07 {
            // LD
            0x00 => match code & 0xe0 {
                0x00 => e.op(ALU | MOV, R0, 0, 0, k as i32),
                0x20 if size > 0 => e.load_abs(R0, k, size),
                0x40 if size > 0 => {
                    e.op(ALU | MOV | X, R2, R7, 0, 0);
                    e.op(ALU | ADD, R2, 0, 0, k as i32);
                    e.jump(JMP | JGT, R2, 0, (SNAP_MAX - size) as i32, Target::Fail);
                    e.op(ALU | MOV | X, R3, R2, 0, 0);
                    e.op(ALU | ADD, R3, 0, 0, size as i32);
                    e.jump(JMP | JGT | X, R3, R8, 0, Target::Fail);
                    e.op(ALU64 | MOV | X, R3, R6, 0, 0);
                    e.op(ALU64 | ADD | X, R3, R2, 0, 0);
                    e.op(LDX_MEM | size_bits(size), R0, R3, EVENT_DATA_OFF, 0);
                    e.swap_to_host(R0, size);
                }
                0x60 => e.op(LDX_MEM | SIZE_W, R0, R10, scratch_off(k)?, 0),
                0x80 => e.op(ALU | MOV | X, R0, R9, 0, 0),
                _ => return Err(bad("unknown load")),
            },
            // LDX
            0x01 => match code & 0xe0 {
                0x00 => e.op(ALU | MOV, R7, 0, 0, k as i32),
                0x60 => e.op(LDX_MEM | SIZE_W, R7, R10, scratch_off(k)?, 0),
                0x80 => e.op(ALU | MOV | X, R7, R9, 0, 0),
                0xa0 => {
                    // X = 4 * (P[k] & 0xf)
                    e.load_abs(R7, k, 1);
                    e.op(ALU | AND, R7, 0, 0, 0xf);
                    e.op(ALU | LSH, R7, 0, 0, 2);
                }
                _ => return Err(bad("unknown ldx")),
            },
            0x02 => e.op(STX_MEM | SIZE_W, R10, R0, scratch_off(k)?, 0),
            0x03 => e.op(STX_MEM | SIZE_W, R10, R7, scratch_off(k)?, 0),
            // ALU
            0x04 => {
                let op = (code & 0xf0) as u8;
                if !matches!(op, 0x00..=0xa0) {
                    return Err(bad("unknown alu operation"));
                }
                if op == 0x80 {
                    e.op(ALU | 0x80, R0, 0, 0, 0);
                } else if code & 0x08 != 0 {
                    if op == 0x30 || op == 0x90 {
                        // Division by X == 0 ends the filter with 0.
                        e.jump(JMP | JEQ, R7, 0, 0, Target::Fail);
                    }
                    e.op(ALU | op | X, R0, R7, 0, 0);
                } else {
                    if (op == 0x30 || op == 0x90) && k == 0 {
                        return Err(bad("division by zero"));
                    }
                    if (op == 0x60 || op == 0x70) && k >= 32 {
                        return Err(bad("shift by 32 or more"));
                    }
                    e.op(ALU | op, R0, 0, 0, k as i32);
                }
            }
            // JMP
            0x05 => {
                let op = (code & 0xf0) as u8;
                if op == 0x00 {
                    let t = i
                        .checked_add(1)
                        .and_then(|n| n.checked_add(k as usize))
                        .filter(|&t| t < prog.len())
                        .ok_or_else(|| bad("jumps past the end of the program"))?;
                    e.jump(JMP | JA, 0, 0, 0, Target::Classic(t));
                    continue;
                }
                if !matches!(op, 0x10 | 0x20 | 0x30 | 0x40) {
                    return Err(bad("unknown jump"));
                }
                let jt = target(c.jt as u32)?;
                let jf = target(c.jf as u32)?;
                if code & 0x08 != 0 {
                    e.jump(JMP32 | op | X, R0, R7, 0, jt);
                } else {
                    e.jump(JMP32 | op, R0, 0, k as i32, jt);
                }
                if c.jf != 0 {
                    e.jump(JMP | JA, 0, 0, 0, jf);
                }
            }
            // RET
            0x06 => {
                match code & 0x18 {
                    0x00 => e.op(ALU | MOV, R0, 0, 0, k as i32),
                    0x08 => e.op(ALU | MOV | X, R0, R7, 0, 0),
                    0x10 => {}
                    _ => return Err(bad("unknown return")),
                }
                e.op(JMP | EXIT, 0, 0, 0, 0);
            }
            // MISC
            _ => match code & 0xf8 {
                0x00 => e.op(ALU | MOV | X, R7, R0, 0, 0),
                0x80 => e.op(ALU | MOV | X, R0, R7, 0, 0),
                _ => return Err(bad("unknown misc operation")),
            },
        }
    }
    let fail = e.out.len();
    e.op(ALU | MOV, R0, 0, 0, 0);
    e.op(JMP | EXIT, 0, 0, 0, 0);
    let mut insns = Vec::with_capacity(e.out.len());
    for (pos, (mut insn, to)) in e.out.into_iter().enumerate() {
        let dest = match to {
            Target::None => None,
            Target::Fail => Some(fail),
            Target::Classic(c) => Some(starts[c]),
        };
        if let Some(dest) = dest {
            let off = dest as i64 - pos as i64 - 1;
            insn.off = i16::try_from(off)
                .map_err(|_| TranslateError("the filter is too long (a jump past 32767)".into()))?;
        }
        insns.push(insn);
    }
    Ok(insns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(code: u16, jt: u8, jf: u8, k: u32) -> ClassicInsn {
        ClassicInsn { code, jt, jf, k }
    }

    #[test]
    fn return_constant_is_move_and_exit_after_prologue() {
        let out = translate(&[ci(0x06, 0, 0, 65535)]).unwrap();
        // prologue (14) + mov + exit + fail block (2)
        assert_eq!(out.len(), 18);
        assert_eq!(out[14].code, ALU | MOV);
        assert_eq!(out[14].imm, 65535);
        assert_eq!(out[15].code, JMP | EXIT);
        // The null check jumps to the fail block.
        assert_eq!(out[0].off as usize, 16 - 1);
    }

    #[test]
    fn conditional_jump_targets_the_classic_instruction_starts() {
        // ldh [12]; jeq #0x800, 0, 1; ret #1; ret #0
        let prog = [
            ci(0x28, 0, 0, 12),
            ci(0x15, 0, 1, 0x800),
            ci(0x06, 0, 0, 1),
            ci(0x06, 0, 0, 0),
        ];
        let out = translate(&prog).unwrap();
        let j = out
            .iter()
            .position(|i| i.code == JMP32 | JEQ)
            .expect("a 32-bit jeq");
        assert_eq!(out[j].imm, 0x800);
        // jt = 0: to the next instruction (the ja for jf follows it).
        assert_eq!(out[j].off, 1);
        assert_eq!(out[j + 1].code, JMP | JA);
        // jf = 1: over `ret #1` (mov + exit).
        assert_eq!(out[j + 1].off, 2);
        // The half-word load checks 14 captured bytes, then swaps to host order.
        let l = out.iter().position(|i| i.code == LDX_MEM | SIZE_H).unwrap();
        assert_eq!(out[l].off, EVENT_DATA_OFF + 12);
        assert_eq!(out[l - 1].imm, 14);
        assert_eq!(out[l + 1].code, END_TO_BE);
    }

    #[test]
    fn refuses_what_the_classic_checker_refuses() {
        assert!(translate(&[]).is_err());
        assert!(translate(&[ci(0x34, 0, 0, 0), ci(0x06, 0, 0, 0)]).is_err());
        assert!(translate(&[ci(0x15, 5, 0, 0), ci(0x06, 0, 0, 0)]).is_err());
        assert!(translate(&[ci(0x60, 0, 0, 16), ci(0x06, 0, 0, 0)]).is_err());
    }

    #[test]
    fn load_past_the_capture_limit_fails_the_filter() {
        let out = translate(&[ci(0x20, 0, 0, SNAP_MAX), ci(0x16, 0, 0, 0)]).unwrap();
        let fail = out.len() - 2;
        assert_eq!(out[14].code, JMP | JA);
        assert_eq!(14 + 1 + out[14].off as usize, fail);
    }
}

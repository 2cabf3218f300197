//! Patching instructions with a resolved CO-RE value, on raw little-endian
//! eBPF instructions (8 bytes each) so this layer needs nothing from `sys`.
//! ALU/ALU64 immediates, LDX/ST/STX offsets (and access size when the field
//! size changed safely), LD_IMM64 immediates; the original value must be
//! what the compiler assumed. Poisoning writes a call to helper 0xbad2310.

use super::resolve::Outcome;

/// Size of one instruction.
pub const INSN_SIZE: usize = 8;
/// The invalid helper id a poisoned instruction calls ("bad relo").
pub const POISON_HELPER: i32 = 0xbad2310;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const SRC_X: u8 = 0x08;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;

fn imm(insn: &[u8]) -> i32 {
    i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
}

fn set_imm(insn: &mut [u8], v: i32) {
    insn[4..8].copy_from_slice(&v.to_le_bytes());
}

fn off(insn: &[u8]) -> i16 {
    i16::from_le_bytes([insn[2], insn[3]])
}

/// Bytes accessed by a load/store of this opcode's size bits.
fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn size_bits(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

fn poison_one(insn: &mut [u8]) {
    insn[0] = CALL;
    insn[1] = 0;
    insn[2] = 0;
    insn[3] = 0;
    set_imm(insn, POISON_HELPER);
}

/// Replaces instruction `idx` (and the second half of an LD_IMM64) with a
/// call to the invalid helper: harmless in dead code, a clear verifier
/// error when reached.
pub fn poison(insns: &mut [u8], idx: usize) -> Result<(), String> {
    let at = idx * INSN_SIZE;
    let insn = insns
        .get_mut(at..at + INSN_SIZE)
        .ok_or_else(|| format!("instruction #{idx} is outside the program"))?;
    let wide = insn[0] == LD_IMM64;
    poison_one(insn);
    if wide {
        if let Some(next) = insns.get_mut(at + INSN_SIZE..at + 2 * INSN_SIZE) {
            poison_one(next);
        }
    }
    Ok(())
}

/// Writes `out` into instruction `idx` of `insns`.
pub fn patch(insns: &mut [u8], idx: usize, out: &Outcome) -> Result<(), String> {
    let at = idx * INSN_SIZE;
    if insns.get(at..at + INSN_SIZE).is_none() {
        return Err(format!("instruction #{idx} is outside the program"));
    }
    if out.poison {
        return poison(insns, idx);
    }
    let (orig, new) = (out.orig_val, out.new_val);
    let code = insns[at];
    match code & 0x07 {
        CLASS_ALU | CLASS_ALU64 => {
            let insn = &mut insns[at..at + INSN_SIZE];
            if code & SRC_X != 0 {
                return Err(format!(
                    "instruction #{idx} (ALU) uses a register, not an immediate"
                ));
            }
            if out.validate && imm(insn) as i64 != orig as i64 && imm(insn) as u32 as u64 != orig {
                return Err(format!(
                    "instruction #{idx} (ALU) holds {}, expected {orig} (to become {new})",
                    imm(insn)
                ));
            }
            let v = i32::try_from(new as i64)
                .or_else(|_| u32::try_from(new).map(|v| v as i32))
                .map_err(|_| format!("instruction #{idx} (ALU) cannot hold {new} in 32 bits"))?;
            set_imm(insn, v);
        }
        CLASS_LDX | CLASS_ST | CLASS_STX => {
            let insn = &mut insns[at..at + INSN_SIZE];
            if out.validate && off(insn) as i64 != orig as i64 {
                return Err(format!(
                    "instruction #{idx} (LDX/ST/STX) has offset {}, expected {orig} (to become {new})",
                    off(insn)
                ));
            }
            if new > i16::MAX as u64 {
                return Err(format!(
                    "instruction #{idx} (LDX/ST/STX) offset {new} is too large"
                ));
            }
            if out.fail_memsz_adjust {
                return poison(insns, idx);
            }
            insn[2..4].copy_from_slice(&(new as i16).to_le_bytes());
            if out.new_size != out.orig_size {
                let got = size_bytes(code);
                if got != out.orig_size {
                    return Err(format!(
                        "instruction #{idx} (LDX/ST/STX) accesses {got} bytes, expected {}",
                        out.orig_size
                    ));
                }
                let bits = size_bits(out.new_size).ok_or_else(|| {
                    format!(
                        "instruction #{idx} (LDX/ST/STX) cannot access {} bytes",
                        out.new_size
                    )
                })?;
                insn[0] = (code & !0x18) | bits;
            }
        }
        CLASS_LD if code == LD_IMM64 => {
            let pair = insns
                .get_mut(at..at + 2 * INSN_SIZE)
                .ok_or_else(|| format!("instruction #{idx} (LD_IMM64) is cut off at the end"))?;
            let (first, second) = pair.split_at_mut(INSN_SIZE);
            let src = first[1] >> 4;
            if src != 0 || off(first) != 0 || second[0] != 0 || second[1] != 0 || off(second) != 0 {
                return Err(format!(
                    "instruction #{idx} (LD_IMM64) has an unexpected form"
                ));
            }
            let cur = imm(first) as u32 as u64 | (imm(second) as u32 as u64) << 32;
            if out.validate && cur != orig {
                return Err(format!(
                    "instruction #{idx} (LD_IMM64) holds {cur}, expected {orig} (to become {new})"
                ));
            }
            set_imm(first, new as u32 as i32);
            set_imm(second, (new >> 32) as u32 as i32);
        }
        _ => {
            return Err(format!(
                "instruction #{idx} (opcode {code:#04x}) cannot carry a CO-RE relocation"
            ))
        }
    }
    Ok(())
}

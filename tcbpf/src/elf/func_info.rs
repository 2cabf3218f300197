//! BTF func and line info for a linked program: the `.BTF.ext` records of
//! each function the program is made of, moved from section offsets (in
//! bytes) to instruction indexes in the program, so that the verifier
//! knows the functions and its log shows source lines.

use super::program::ProgramSpec;
use crate::btf::{Btf, BtfExt};

/// Fills `p.func_info` and `p.line_info` from `ext`. A program whose
/// functions lack func info gets none at all (the kernel wants one record
/// per function or none).
pub(crate) fn attach(btf: &Btf, ext: &BtfExt, p: &mut ProgramSpec) {
    let mut funcs = Vec::new();
    let mut lines = Vec::new();
    for place in &p.layout {
        let start = place.section_insn as u64;
        let end = start + place.len as u64;
        let to_prog = |insn_off: u32| -> Option<u32> {
            let insn = u64::from(insn_off) / 8;
            (u64::from(insn_off) % 8 == 0 && insn >= start && insn < end)
                .then(|| (place.program_insn as u64 + insn - start) as u32)
        };
        let before = funcs.len();
        for f in ext.func_info_of(btf, &place.section) {
            if let Some(i) = to_prog(f.insn_off) {
                funcs.push([i, f.type_id]);
            }
        }
        if funcs.len() != before + 1 {
            p.func_info.clear();
            p.line_info.clear();
            return;
        }
        for l in ext.line_info_of(btf, &place.section) {
            if let Some(i) = to_prog(l.insn_off) {
                lines.push([i, l.file_name_off, l.line_off, l.line_col]);
            }
        }
    }
    p.func_info = funcs;
    p.line_info = lines;
}

//! Loading one program: map descriptors written into its 64-bit loads,
//! BPF_PROG_LOAD with the object's license and BTF, and the verifier log
//! kept (for `verbose`) or returned in the error (on rejection).

use super::externs::{ModuleBtfs, Outcome};
use super::{Context, LoadError, LoadedMap, LoadedProgram, VerifierRejection};
use crate::abi::trace_section_by_name;
use crate::elf::{MapRefKind, ObjectSpec, ProgramSpec};
use crate::sys::{prog, BtfFd};
use std::os::fd::{AsFd, AsRawFd};

/// Loads `p` with map descriptors from `maps` (indexed as `spec.maps`).
pub(crate) fn load(
    ctx: &mut Context<'_>,
    spec: &ObjectSpec,
    p: &ProgramSpec,
    maps: &[LoadedMap],
    btf: Option<&BtfFd>,
    externs: (&[Outcome], &ModuleBtfs),
) -> Result<LoadedProgram, LoadError> {
    let mut insns = p.insns.clone();
    let fd_array = super::externs::patch(p, &mut insns, externs.0, externs.1);
    for r in &p.map_refs {
        let fd = maps[r.map].fd.as_raw_fd();
        insns[r.insn].imm = fd;
        if let MapRefKind::Value { offset } = r.kind {
            insns[r.insn + 1].imm = offset as i32;
        }
    }
    let use_btf = btf.filter(|_| !p.func_info.is_empty());
    let (prog_type, expected_attach_type, target) = match trace_section_by_name(&p.section) {
        Some(row) => {
            let Some(target) = ctx.trace_target else {
                return Err(LoadError::Invalid {
                    file: ctx.file.clone(),
                    what: format!("program '{}'", p.name),
                    reason: format!(
                        "section '{}' holds a tracing program, which loads only against a target program",
                        p.section
                    ),
                });
            };
            let attach = row.attach.map_or(0, |a| a.as_u32());
            (row.prog_type.as_u32(), attach, Some(target))
        }
        None => (ctx.prog_type, 0, None),
    };
    let req = prog::ProgLoad {
        prog_type,
        expected_attach_type,
        insns: &insns,
        license: &spec.license,
        name: &p.name,
        btf: use_btf.map(|b| b.as_fd()),
        func_info: if use_btf.is_some() { &p.func_info } else { &[] },
        line_info: if use_btf.is_some() { &p.line_info } else { &[] },
        log_level: u32::from(ctx.verbose),
        prog_flags: 0,
        fd_array: &fd_array,
        attach_prog: target.and_then(|t| t.prog.as_ref()).map(|p| p.as_fd()),
        attach_btf_id: target.map_or(0, |t| t.func_type_id),
    };
    match prog::load(&req) {
        Ok(loaded) => Ok(LoadedProgram {
            section: p.section.clone(),
            name: p.name.clone(),
            fd: loaded.fd,
            tail_call: p.tail_call,
            verifier_log: loaded.log,
        }),
        Err(e) => Err(LoadError::Verifier(Box::new(VerifierRejection {
            file: ctx.file.clone(),
            section: p.section.clone(),
            program: p.name.clone(),
            source: e.error,
            log: e.log,
        }))),
    }
}

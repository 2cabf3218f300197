//! CO-RE at load time: read the target BTF (the running kernel's
//! `/sys/kernel/btf/vmlinux`, mapped when the kernel allows it; module BTF
//! when a type lives only there; or the file given with `btf FILE`) into a
//! lazily decoded `TargetBtf`, index the essential names the relocations
//! look up, then patch each program's instructions with `btf::core` before
//! any other relocation. Objects without CO-RE relocations never read it.
//! A verifier rejection on a poisoned instruction is turned into an error
//! naming the relocation.

use super::{Context, CoreCause, CoreFailure, LoadError};
use crate::abi::Insn;
use crate::btf::core::{
    check_bounds, find_candidates, poisoned_insn_in_log, relocate_function, Resolution,
};
use crate::btf::{essential_name, BlobBytes, Btf, BtfExt, CoreReloKind, TargetBtf};
use crate::elf::{ObjectSpec, ProgramSpec};
use crate::sys::mmap::MappedFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the running kernel publishes its BTF.
pub const KERNEL_BTF_DIR: &str = "/sys/kernel/btf";

/// Largest target BTF read with `btf FILE` (vmlinux BTF is a few MB).
const MAX_TARGET_BTF_BYTES: u64 = 1 << 30;

/// The BTFs relocations are resolved against: vmlinux first, then modules.
pub(crate) struct Targets {
    btfs: Vec<Arc<TargetBtf>>,
}

/// The bytes of a target BTF: the kernel's own files are mapped when the
/// kernel allows it (no copy), anything else is read.
fn target_bytes(path: &Path) -> std::io::Result<BlobBytes> {
    if path.starts_with(KERNEL_BTF_DIR) {
        if let Ok(m) = MappedFile::open(path) {
            return Ok(Box::new(m));
        }
    }
    Ok(Box::new(crate::sys::file::read_regular(
        path,
        MAX_TARGET_BTF_BYTES,
    )?))
}

pub(crate) fn read_btf(
    file: &str,
    path: &Path,
    base: Option<Arc<TargetBtf>>,
) -> Result<TargetBtf, LoadError> {
    let failed = |cause| core_failure(file, format!("target BTF {}", path.display()), cause);
    let bytes = target_bytes(path).map_err(|e| failed(CoreCause::ReadTarget(e)))?;
    let parsed = match base {
        Some(b) => TargetBtf::parse_split(bytes, b),
        None => TargetBtf::parse(bytes),
    };
    parsed.map_err(|e| failed(CoreCause::ParseTarget(e)))
}

fn core_failure(file: &str, what: String, cause: CoreCause) -> LoadError {
    LoadError::Core(Box::new(CoreFailure {
        file: file.to_string(),
        what,
        cause,
    }))
}

/// The essential names of the local types the relocations look up in the
/// target (every relocation but TYPE_ID_LOCAL).
fn wanted_names<'a>(local: &'a Btf, ext: &BtfExt) -> Vec<&'a str> {
    ext.core_relos
        .iter()
        .flat_map(|s| &s.records)
        .filter(|r| r.kind != CoreReloKind::TypeIdLocal)
        .filter_map(|r| local.name(r.type_id).ok())
        .map(essential_name)
        .collect()
}

/// Reads the target BTF when the object has CO-RE relocations (`None`
/// otherwise). Module BTF is read only when some relocated type has no
/// candidate in vmlinux, and never when the user named a file.
pub(crate) fn targets(
    spec: &ObjectSpec,
    custom: Option<&PathBuf>,
) -> Result<Option<Targets>, LoadError> {
    let (Some(local), Some(ext)) = (&spec.btf, &spec.btf_ext) else {
        return Ok(None);
    };
    if ext.core_relos.is_empty() {
        return Ok(None);
    }
    let size = |name: &str| {
        spec.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.size)
    };
    check_bounds(local, ext, size).map_err(|e| {
        core_failure(
            &spec.file,
            "section '.BTF.ext'".into(),
            CoreCause::Relocation(e),
        )
    })?;
    let default = PathBuf::from(KERNEL_BTF_DIR).join("vmlinux");
    let path = custom.unwrap_or(&default);
    let vmlinux = Arc::new(read_btf(&spec.file, path, None)?);
    let wanted = wanted_names(local, ext);
    vmlinux.index_essential_names(wanted.iter().copied());
    let mut btfs = vec![vmlinux.clone()];
    if custom.is_none() && needs_modules(local, ext, &vmlinux) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(KERNEL_BTF_DIR)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries.into_iter().filter(|p| !p.ends_with("vmlinux")) {
            // A module BTF that does not parse only hides its own types.
            if let Ok(m) = read_btf(&spec.file, &p, Some(vmlinux.clone())) {
                m.index_essential_names(wanted.iter().copied());
                btfs.push(Arc::new(m));
            }
        }
    }
    Ok(Some(Targets { btfs }))
}

fn needs_modules(local: &Btf, ext: &BtfExt, vmlinux: &TargetBtf) -> bool {
    ext.core_relos.iter().flat_map(|s| &s.records).any(|r| {
        r.kind != CoreReloKind::TypeIdLocal
            && find_candidates(local, r.type_id, &[vmlinux]).is_ok_and(|c| c.is_empty())
    })
}

fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.extend_from_slice(&[i.code, i.regs]);
        out.extend_from_slice(&i.off.to_le_bytes());
        out.extend_from_slice(&i.imm.to_le_bytes());
    }
    out
}

/// `p` with every CO-RE relocation of the functions it is made of applied,
/// and the resolutions (shown under `verbose`).
pub(crate) fn relocate(
    ctx: &mut Context<'_>,
    spec: &ObjectSpec,
    p: &ProgramSpec,
    targets: Option<&Targets>,
) -> Result<(ProgramSpec, Vec<Resolution>), LoadError> {
    let (Some(t), Some(local), Some(ext)) = (targets, &spec.btf, &spec.btf_ext) else {
        return Ok((p.clone(), Vec::new()));
    };
    let targets: Vec<&TargetBtf> = t.btfs.iter().map(|b| b.as_ref()).collect();
    let mut out = p.clone();
    let mut all = Vec::new();
    for place in &p.layout {
        let range = place.program_insn..place.program_insn + place.len;
        let mut bytes = to_bytes(&p.insns[range.clone()]);
        let res = relocate_function(
            local,
            ext,
            &place.section,
            place.section_insn as u32,
            &mut bytes,
            &targets,
        )
        .map_err(|e| {
            core_failure(
                &spec.file,
                format!("program '{}'", p.name),
                CoreCause::Relocation(e),
            )
        })?;
        if !res.is_empty() {
            let patched = Insn::from_bytes(&bytes).unwrap_or_default();
            out.insns[range].copy_from_slice(&patched);
        }
        all.extend(res);
    }
    if ctx.verbose {
        for r in &all {
            ctx.notes.push(format!("CO-RE: program '{}': {r}", p.name));
        }
    }
    Ok((out, all))
}

/// Turns a verifier rejection on a poisoned instruction into an error that
/// names the relocation that could not be resolved.
pub(crate) fn explain(err: LoadError, p: &ProgramSpec, resolutions: &[Resolution]) -> LoadError {
    let LoadError::Verifier(rejection) = err else {
        return err;
    };
    match poisoned_relocation(&rejection.log, p, resolutions) {
        Some(r) => core_failure(
            &rejection.file.clone(),
            format!("program '{}' (section '{}')", r.program, r.section),
            CoreCause::Unresolved {
                insn: r.insn,
                relocation: format!("<{}> {}", r.kind.name(), r.local),
                rejection,
            },
        ),
        None => LoadError::Verifier(rejection),
    }
}

/// The unresolved relocation whose poisoned instruction the verifier log
/// says it reached, if any.
fn poisoned_relocation<'r>(
    log: &str,
    p: &ProgramSpec,
    resolutions: &'r [Resolution],
) -> Option<&'r Resolution> {
    let insn = poisoned_insn_in_log(log)? as usize;
    let place = p
        .layout
        .iter()
        .find(|pl| insn >= pl.program_insn && insn < pl.program_insn + pl.len)?;
    let section_insn = (place.section_insn + insn - place.program_insn) as u32;
    resolutions
        .iter()
        .find(|r| r.section == place.section && r.insn == section_insn && r.outcome.poison)
}

//! CO-RE ("compile once, run everywhere"): resolve the relocations clang
//! records in `.BTF.ext` against the running kernel's BTF and patch the
//! instructions, the way libbpf defines it. Pure: the caller passes the
//! object's BTF, the target BTFs (vmlinux first, then module BTF split on
//! it) and the instruction bytes; nothing here reads files or calls bpf(2).
//!
//! A field or enum value missing from the target poisons its instruction
//! (a call to the invalid helper 0xbad2310) so only reaching it fails;
//! everything else that cannot be resolved is a `CoreError` naming the
//! program, the instruction, the access string and the types.

mod access;
mod compat;
mod patch;
mod resolve;

use std::fmt;

use super::ext::{BtfExt, CoreRelo, CoreReloKind};
use super::type_set::Btf;
use super::view::TypeView;

pub use access::{parse_access_str, Accessor, Spec, MAX_SPEC_LEN};
pub use compat::{fields_are_compat, types_are_compat, types_match};
pub use patch::{patch, poison, INSN_SIZE, POISON_HELPER};
pub use resolve::{calc, find_candidates, match_spec, Candidate, Outcome};

/// One relocation and what it resolved to, for `obj show` and `verbose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The ELF section of the instruction.
    pub section: String,
    /// The function (BTF FUNC) holding the instruction, or the section.
    pub program: String,
    /// Instruction index in the section.
    pub insn: u32,
    /// What the relocation computes.
    pub kind: CoreReloKind,
    /// The local access (`[12] struct iphdr.protocol (0:7 @ offset 9)`).
    pub local: String,
    /// The raw access string.
    pub access: String,
    /// The matched target (`vmlinux [1234] struct iphdr.protocol (…)`), if any.
    pub target: Option<String>,
    /// The values patched in.
    pub outcome: Outcome,
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "insn #{} <{}> {}: ",
            self.insn,
            self.kind.name(),
            self.local
        )?;
        match (&self.target, self.outcome.poison) {
            (_, true) => write!(f, "no match in target, instruction poisoned"),
            (Some(t), false) => write!(
                f,
                "{} -> {} ({t})",
                self.outcome.orig_val, self.outcome.new_val
            ),
            (None, false) => write!(f, "{} -> {}", self.outcome.orig_val, self.outcome.new_val),
        }
    }
}

/// A relocation that could not be resolved or applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    /// The ELF section.
    pub section: String,
    /// The function holding the instruction, or the section.
    pub program: String,
    /// Instruction index in the section.
    pub insn: u32,
    /// The relocation, described (kind, local type, access string).
    pub relocation: String,
    /// Why it failed.
    pub reason: String,
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CO-RE relocation failed in program '{}' (section '{}') at insn #{}: {}: {}",
            self.program, self.section, self.insn, self.relocation, self.reason
        )
    }
}

impl std::error::Error for CoreError {}

impl CoreError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

/// A relocation described before its spec is known (for errors).
fn describe_raw(local: &Btf, relo: &CoreRelo) -> String {
    let access = local.str_at(relo.access_str_off).unwrap_or("?");
    format!(
        "<{}> [{}] {} access '{access}'",
        relo.kind.name(),
        relo.type_id,
        local.describe(relo.type_id)
    )
}

/// The function containing byte offset `insn_off` of `section`, from func info.
fn program_of(local: &Btf, ext: &BtfExt, section: &str, insn_off: u32) -> String {
    ext.func_info_of(local, section)
        .iter()
        .filter(|fi| fi.insn_off <= insn_off)
        .max_by_key(|fi| fi.insn_off)
        .and_then(|fi| local.name(fi.type_id).ok())
        .map_or_else(|| section.to_string(), str::to_string)
}

/// Name of target BTF `i` in messages.
fn target_name(i: usize) -> String {
    if i == 0 {
        "vmlinux".into()
    } else {
        format!("module#{i}")
    }
}

/// Resolves one relocation (no patching): local description, access
/// string, target description, values.
fn resolve_one(
    local: &Btf,
    relo: &CoreRelo,
    targets: &[&dyn TypeView],
) -> Result<(String, String, Option<String>, Outcome), String> {
    let access = local
        .str_at(relo.access_str_off)
        .map_err(|e| e.to_string())?;
    let spec = Spec::parse(local, relo.type_id, access, relo.kind).map_err(|e| e.to_string())?;
    let resolved = resolve::resolve(&spec, relo.type_id, targets).map_err(|e| e.to_string())?;
    let target = resolved
        .target
        .as_ref()
        .map(|(c, s)| format!("{} {s}", target_name(c.btf)));
    Ok((
        spec.to_string(),
        access.to_string(),
        target,
        resolved.outcome,
    ))
}

/// Resolves every CO-RE relocation of ELF section `section` and patches
/// `insns` (the section's instruction bytes). All or nothing: on error
/// `insns` is left unchanged. A relocation outside the section is an error.
pub fn relocate_section<T: TypeView>(
    local: &Btf,
    ext: &BtfExt,
    section: &str,
    insns: &mut [u8],
    targets: &[&T],
) -> Result<Vec<Resolution>, CoreError> {
    relocate(local, ext, section, 0, insns, &as_views(targets), true)
}

/// Like `relocate_section` for one function: `insns` holds the function
/// that starts at instruction `first_insn` of `section`; only relocations
/// that fall inside it are applied (their `insn` stays section-relative).
pub fn relocate_function<T: TypeView>(
    local: &Btf,
    ext: &BtfExt,
    section: &str,
    first_insn: u32,
    insns: &mut [u8],
    targets: &[&T],
) -> Result<Vec<Resolution>, CoreError> {
    relocate(
        local,
        ext,
        section,
        first_insn,
        insns,
        &as_views(targets),
        false,
    )
}

/// The target BTFs as views (vmlinux first, then modules).
fn as_views<'t, T: TypeView>(targets: &[&'t T]) -> Vec<&'t dyn TypeView> {
    targets.iter().map(|&t| t as &dyn TypeView).collect()
}

/// Checks that every CO-RE relocation lands on an instruction inside its
/// section; `section_size` gives each section's size in bytes.
pub fn check_bounds(
    local: &Btf,
    ext: &BtfExt,
    section_size: impl Fn(&str) -> Option<u64>,
) -> Result<(), CoreError> {
    for sec in &ext.core_relos {
        let name = sec.name(local).unwrap_or("?");
        let size = section_size(name).unwrap_or(0);
        for relo in &sec.records {
            if relo.insn_off as u64 % INSN_SIZE as u64 != 0
                || relo.insn_off as u64 + INSN_SIZE as u64 > size
            {
                return Err(CoreError {
                    section: name.to_string(),
                    program: program_of(local, ext, name, relo.insn_off),
                    insn: relo.insn_off / INSN_SIZE as u32,
                    relocation: describe_raw(local, relo),
                    reason: format!(
                        "instruction offset {} is not an instruction of the {size}-byte section",
                        relo.insn_off
                    ),
                });
            }
        }
    }
    Ok(())
}

fn relocate(
    local: &Btf,
    ext: &BtfExt,
    section: &str,
    first_insn: u32,
    insns: &mut [u8],
    targets: &[&dyn TypeView],
    strict: bool,
) -> Result<Vec<Resolution>, CoreError> {
    let relos = ext.core_relos_of(local, section);
    let mut work = insns.to_vec();
    let len = (work.len() / INSN_SIZE) as u64;
    let mut out = Vec::with_capacity(relos.len());
    for relo in relos {
        let insn = relo.insn_off / INSN_SIZE as u32;
        let err = |reason: String| CoreError {
            section: section.to_string(),
            program: program_of(local, ext, section, relo.insn_off),
            insn,
            relocation: describe_raw(local, relo),
            reason,
        };
        if relo.insn_off as usize % INSN_SIZE != 0 {
            return Err(err(format!(
                "instruction offset {} is not a multiple of 8",
                relo.insn_off
            )));
        }
        let inside = insn >= first_insn && ((insn - first_insn) as u64) < len;
        if !inside {
            if strict {
                return Err(err(format!(
                    "instruction offset {} is outside the {}-byte section",
                    relo.insn_off,
                    work.len()
                )));
            }
            continue;
        }
        let (local_desc, access, target, outcome) =
            resolve_one(local, relo, targets).map_err(&err)?;
        patch::patch(&mut work, (insn - first_insn) as usize, &outcome).map_err(&err)?;
        out.push(Resolution {
            section: section.to_string(),
            program: program_of(local, ext, section, relo.insn_off),
            insn,
            kind: relo.kind,
            local: local_desc,
            access,
            target,
            outcome,
        });
    }
    insns.copy_from_slice(&work);
    Ok(out)
}

/// A CO-RE relocation as recorded in the object (for `obj show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocationInfo {
    /// The ELF section of the instruction.
    pub section: String,
    /// Instruction index in the section.
    pub insn: u32,
    /// What it computes.
    pub kind: CoreReloKind,
    /// The raw access string.
    pub access: String,
    /// The local access described, or why it does not parse.
    pub local: String,
}

impl fmt::Display for RelocationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} insn #{} <{}> {}",
            self.section,
            self.insn,
            self.kind.name(),
            self.local
        )
    }
}

/// Every CO-RE relocation of the object, described without resolving it.
pub fn describe_relocations(local: &Btf, ext: &BtfExt) -> Vec<RelocationInfo> {
    let mut out = Vec::new();
    for sec in &ext.core_relos {
        let name = sec.name(local).unwrap_or("?").to_string();
        for relo in &sec.records {
            let access = local.str_at(relo.access_str_off).unwrap_or("?");
            let desc = match Spec::parse(local, relo.type_id, access, relo.kind) {
                Ok(spec) => spec.to_string(),
                Err(e) => format!("{}: {e}", describe_raw(local, relo)),
            };
            out.push(RelocationInfo {
                section: name.clone(),
                insn: relo.insn_off / INSN_SIZE as u32,
                kind: relo.kind,
                access: access.to_string(),
                local: desc,
            });
        }
    }
    out
}

/// The instruction index a verifier log rejects as a poisoned CO-RE
/// relocation (`call unknown#195896080`), if that is why it failed.
pub fn poisoned_insn_in_log(log: &str) -> Option<u32> {
    let needle = format!("unknown#{POISON_HELPER}");
    log.lines()
        .filter(|l| l.contains(&needle))
        .find_map(|l| l.trim_start().split(':').next()?.trim().parse().ok())
}

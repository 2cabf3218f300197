//! Fix-ups that make clang's BTF acceptable to the kernel before BTF_LOAD,
//! as libbpf does: data section sizes and variable offsets from the ELF
//! file, variables sorted by offset, and kinds or linkages the kernel
//! refuses rewritten into ones it accepts. Pure: the caller answers the
//! questions about the ELF file through closures.

use super::error::{Error, Result};
use super::spec::Btf;
use super::types::*;

/// Sections whose variables libbpf fills itself (externs): left as they are.
const EXTERN_SECTIONS: [&str; 2] = [".kconfig", ".ksyms"];

/// What `fixup_datasecs` and `sanitize_for_kernel` changed, for `verbose`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixupReport {
    /// Data sections whose size was set: (name, size).
    pub sized: Vec<(String, u32)>,
    /// Variables whose offset was set: (section, variable, offset).
    pub placed: Vec<(String, String, u32)>,
    /// Types rewritten for the kernel, one line each.
    pub sanitized: Vec<String>,
}

impl Btf {
    /// Fills each DATASEC's size (when clang left 0) from `section_size` and
    /// each non-static variable's offset from `symbol_offset(section,
    /// variable)`, then sorts variables by offset. A section or global
    /// variable the ELF file does not have is an error naming it.
    pub fn fixup_datasecs(
        &mut self,
        section_size: impl Fn(&str) -> Option<u32>,
        symbol_offset: impl Fn(&str, &str) -> Option<u32>,
    ) -> Result<FixupReport> {
        let mut report = FixupReport::default();
        let ids: Vec<TypeId> = self
            .own_types()
            .filter(|(_, t)| matches!(t.kind, Kind::Datasec(_)))
            .map(|(id, _)| id)
            .collect();
        for id in ids {
            let sec_name = self.name(id)?.to_string();
            let Kind::Datasec(mut sec) = self.ty(id)?.kind.clone() else {
                continue;
            };
            if !EXTERN_SECTIONS.contains(&sec_name.as_str()) {
                let fix_offsets = sec.size == 0;
                if sec.size == 0 {
                    match section_size(&sec_name).filter(|&s| s > 0) {
                        Some(size) => {
                            sec.size = size;
                            report.sized.push((sec_name.clone(), size));
                        }
                        // An empty one is left for `sanitize_for_kernel`.
                        None if sec.vars.is_empty() => {}
                        None => {
                            return Err(Error::invalid(format!(
                                "BTF data section '{sec_name}' has no matching ELF section to take its size from"
                            )))
                        }
                    }
                }
                for v in &mut sec.vars {
                    let var_t = self.ty(v.ty)?;
                    let Kind::Var(var) = var_t.kind else {
                        return Err(Error::invalid(format!(
                            "BTF data section '{sec_name}' holds {}, expected a VAR",
                            self.describe(v.ty)
                        )));
                    };
                    let var_name = self.str_at(var_t.name_off)?;
                    let offset = symbol_offset(&sec_name, var_name);
                    match (var.linkage, offset) {
                        (VarLinkage::GlobalAllocated, None) => {
                            return Err(Error::invalid(format!(
                                "BTF variable '{var_name}' in section '{sec_name}' has no ELF symbol"
                            )))
                        }
                        (_, Some(off)) if fix_offsets && off != v.offset => {
                            v.offset = off;
                            report.placed.push((sec_name.clone(), var_name.to_string(), off));
                        }
                        _ => {}
                    }
                    if v.offset as u64 + v.size as u64 > sec.size as u64 && sec.size != 0 {
                        return Err(Error::invalid(format!(
                            "BTF variable '{var_name}' at {}+{} runs past section '{sec_name}' of {} bytes",
                            v.offset, v.size, sec.size
                        )));
                    }
                }
            }
            sec.vars.sort_by_key(|v| v.offset);
            self.ty_mut(id)?.kind = Kind::Datasec(sec);
        }
        Ok(report)
    }

    /// Rewrites what the kernel's BTF checker refuses in clang's output and
    /// libbpf sanitizes: data sections still of size 0 (the kernel wants
    /// `size > 0`) become empty anonymous structs, `extern` variables and
    /// functions become static (the kernel refuses extern linkage); ids
    /// stay stable.
    pub fn sanitize_for_kernel(&mut self) -> Result<FixupReport> {
        let mut report = FixupReport::default();
        let ids: Vec<TypeId> = self.own_types().map(|(id, _)| id).collect();
        for id in ids {
            let desc = self.describe(id);
            let t = self.ty_mut(id)?;
            match &mut t.kind {
                Kind::Datasec(d) if d.size == 0 => {
                    t.name_off = 0;
                    t.kind = Kind::Struct(Composite {
                        size: 0,
                        kind_flag: false,
                        members: Vec::new(),
                    });
                    report.sanitized.push(format!(
                        "{desc}: zero-size data section made an empty struct"
                    ));
                }
                Kind::Var(v) if v.linkage == VarLinkage::GlobalExtern => {
                    v.linkage = VarLinkage::Static;
                    report
                        .sanitized
                        .push(format!("{desc}: extern variable made static"));
                }
                Kind::Func(f) if f.linkage == FuncLinkage::Extern => {
                    f.linkage = FuncLinkage::Static;
                    report
                        .sanitized
                        .push(format!("{desc}: extern function made static"));
                }
                _ => {}
            }
        }
        Ok(report)
    }
}

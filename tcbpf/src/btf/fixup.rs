//! Fix-ups that make clang's BTF acceptable to the kernel before BTF_LOAD,
//! as libbpf does: data section sizes and variable offsets from the ELF
//! file, variables sorted by offset, and kinds or linkages the kernel
//! refuses rewritten into ones it accepts. Pure: the caller answers the
//! questions about the ELF file through closures.

use super::error::{Error, Result};
use super::type_set::Btf;
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
        self.sanitize_externs(&mut report)?;
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

impl Btf {
    /// What libbpf changes in extern declarations for the kernel's BTF
    /// checker: unnamed parameters of extern functions (kfunc
    /// declarations) get a name, and `void` extern variables (untyped
    /// `__ksym`) become `int` ones.
    fn sanitize_externs(&mut self, report: &mut FixupReport) -> Result<()> {
        let mut protos = Vec::new();
        let mut void_vars = Vec::new();
        for (id, t) in self.own_types() {
            match &t.kind {
                Kind::Func(f) if f.linkage == FuncLinkage::Extern => protos.push(f.proto),
                Kind::Var(v) if v.linkage == VarLinkage::GlobalExtern => {
                    if matches!(
                        self.ty(self.skip_mods_and_typedefs(v.ty)?)?.kind,
                        Kind::Void
                    ) {
                        void_vars.push(id);
                    }
                }
                _ => {}
            }
        }
        if !protos.is_empty() {
            let name = self.add_string("__ksym_arg");
            for p in protos {
                let desc = self.describe(p);
                if let Kind::FuncProto(fp) = &mut self.ty_mut(p)?.kind {
                    let mut named = 0;
                    for param in fp
                        .params
                        .iter_mut()
                        .filter(|q| q.ty != 0 && q.name_off == 0)
                    {
                        param.name_off = name;
                        named += 1;
                    }
                    if named > 0 {
                        report
                            .sanitized
                            .push(format!("{desc}: {named} unnamed parameter(s) named"));
                    }
                }
            }
        }
        if !void_vars.is_empty() {
            let name = self.add_string("int");
            let int = self.add_type(Type {
                name_off: name,
                kind: Kind::Int(Int {
                    size: 4,
                    encoding: int_encoding::SIGNED,
                    offset: 0,
                    bits: 32,
                }),
            });
            for v in void_vars {
                let desc = self.describe(v);
                if let Kind::Var(var) = &mut self.ty_mut(v)?.kind {
                    var.ty = int;
                    report
                        .sanitized
                        .push(format!("{desc}: void extern made int"));
                }
            }
        }
        Ok(())
    }
}

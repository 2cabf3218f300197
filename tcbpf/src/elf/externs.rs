//! Externs: symbols an object uses without defining them, as libbpf
//! collects them. Each undefined global symbol is described by a BTF
//! variable or function of the data section `.kconfig` (kernel config
//! values, `LINUX_KERNEL_VERSION`) or `.ksyms` (kfuncs, and typed or
//! untyped kernel variables). `.kconfig` externs are laid out in one
//! read-only array map (`.kconfig`), in libbpf's order; the loader fills
//! it. Pure: what an extern resolves to is the loader's business.

use super::map::{MapOrigin, MapSpec};
use super::reader::{Elf, SymKind};
use super::ParseError;
use crate::abi::{map_flags as flags, MapType};
use crate::btf::{Btf, Datasec, Kind, TypeId, VarLinkage, VarSecinfo};

/// The data section of kernel config externs.
pub const KCONFIG_SECTION: &str = ".kconfig";
/// The data section of kernel symbol externs.
pub const KSYMS_SECTION: &str = ".ksyms";

/// How a `.kconfig` extern's value is encoded (libbpf's `kcfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool`: `y` is 1, `n` 0 (`m` is refused).
    Bool,
    /// `enum libbpf_tristate`: n 0, y 1, m 2.
    Tristate,
    /// `char`: the letter itself (`y`, `m`, `n`), or a number.
    Char,
    /// An integer of 2, 4 or 8 bytes.
    Int {
        /// Signed.
        signed: bool,
    },
    /// `char[N]`: a string value, NUL-terminated, cut to N-1 bytes.
    CharArray,
}

/// What an extern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    /// A `.kconfig` value at `offset` in the `.kconfig` map.
    Kconfig {
        /// Encoding.
        ty: KconfigType,
        /// Offset in the map's value.
        offset: u32,
        /// Size in bytes.
        size: u32,
        /// Alignment in bytes.
        align: u32,
    },
    /// A kernel function (`__ksym` function declaration); `proto` is the
    /// local FUNC_PROTO id its kernel prototype must be compatible with.
    Kfunc {
        /// Local prototype.
        proto: TypeId,
    },
    /// A kernel variable (`__ksym`): typed (`ty` the local type, resolved
    /// by BTF id) or untyped (`ty` 0, `void`: resolved by address).
    Ksym {
        /// Local type after modifiers and typedefs; 0 for untyped.
        ty: TypeId,
    },
}

impl ExternKind {
    /// A short word for listings: `kconfig`, `kfunc`, `ksym`, `ksym-addr`.
    pub fn name(&self) -> &'static str {
        match self {
            ExternKind::Kconfig { .. } => "kconfig",
            ExternKind::Kfunc { .. } => "kfunc",
            ExternKind::Ksym { ty: 0 } => "ksym-addr",
            ExternKind::Ksym { .. } => "ksym",
        }
    }
}

/// One extern of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternSpec {
    /// Symbol name.
    pub name: String,
    /// Declared `__weak`: unresolved is zero (or "does not exist"), not an error.
    pub weak: bool,
    /// Kind and kind-specific data.
    pub kind: ExternKind,
    /// The local BTF VAR or FUNC describing it.
    pub btf_id: TypeId,
}

/// An instruction that refers to an extern other than a `.kconfig` one
/// (those are plain references into the `.kconfig` map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternRef {
    /// First slot of the `ld_imm64`, or the call instruction.
    pub insn: usize,
    /// Index in `ObjectSpec::externs`.
    pub ext: usize,
    /// A call (kfunc call) rather than a 64-bit load (an address).
    pub call: bool,
}

/// The externs of the object in libbpf's order (`.kconfig` first by
/// alignment descending, size ascending, name; then `.ksyms` by name),
/// `.kconfig` offsets assigned, and the `.kconfig` map when there are
/// such externs. The object's BTF gets the `.kconfig` section's size and
/// variable offsets, so the map can use it as its value type.
pub(crate) fn collect(
    file: &str,
    elf: &Elf<'_>,
    btf: Option<&mut Btf>,
) -> Result<(Vec<ExternSpec>, Option<MapSpec>), ParseError> {
    let undefined: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| s.section.is_none() && s.global && s.kind == SymKind::NoType)
        .filter(|s| !s.name.is_empty())
        .collect();
    if undefined.is_empty() {
        return Ok((Vec::new(), None));
    }
    let err = |name: &str, reason: String| ParseError::new(file, reason).at_symbol(name);
    // An undefined symbol no BTF extern describes is left alone here: if
    // code refers to it, the relocation check names it (as before externs
    // were understood, so old objects with stray symbols still load).
    let Some(btf) = btf else {
        return Ok((Vec::new(), None));
    };
    let mut externs = Vec::with_capacity(undefined.len());
    for sym in undefined {
        let Some((id, section)) = find_extern(btf, &sym.name) else {
            continue;
        };
        let t = btf
            .ty(id)
            .map_err(|e| err(&sym.name, e.to_string()).with_cause(e))?;
        let kind = match (&t.kind, section.as_str()) {
            (Kind::Func(f), KSYMS_SECTION) => ExternKind::Kfunc { proto: f.proto },
            (Kind::Var(v), KSYMS_SECTION) => ExternKind::Ksym {
                ty: btf
                    .skip_mods_and_typedefs(v.ty)
                    .map_err(|e| err(&sym.name, e.to_string()).with_cause(e))?,
            },
            (Kind::Var(v), KCONFIG_SECTION) => {
                let (ty, size, align) = kconfig_type(btf, v.ty).ok_or_else(|| {
                    err(
                        &sym.name,
                        format!(
                            "extern (kconfig) of unsupported type {} (bool, char, char[N], enum libbpf_tristate or an integer of 1, 2, 4 or 8 bytes)",
                            btf.describe(v.ty)
                        ),
                    )
                })?;
                ExternKind::Kconfig {
                    ty,
                    offset: 0,
                    size,
                    align,
                }
            }
            (_, other) => {
                return Err(err(
                    &sym.name,
                    format!(
                        "extern in section '{other}', which is neither '.kconfig' nor '.ksyms'"
                    ),
                ))
            }
        };
        externs.push(ExternSpec {
            name: sym.name.clone(),
            weak: sym.weak,
            kind,
            btf_id: id,
        });
    }
    externs.sort_by_key(order_key);
    let mut off = 0u32;
    for e in &mut externs {
        if let ExternKind::Kconfig {
            offset,
            size,
            align,
            ..
        } = &mut e.kind
        {
            off = off.div_ceil(*align) * *align;
            *offset = off;
            off += *size;
        }
    }
    if off == 0 {
        return Ok((externs, None));
    }
    let mut map = MapSpec::new(KCONFIG_SECTION, MapOrigin::GlobalData, MapType::Array);
    map.key_size = 4;
    map.value_size = off;
    map.max_entries = 1;
    // As libbpf creates it: read-only for programs, mappable, frozen.
    map.flags = flags::RDONLY_PROG | flags::MMAPABLE;
    map.freeze = true;
    map.data = Some(vec![0; off as usize]);
    map.btf_value_type_id = place_in_btf(btf, &externs, off).unwrap_or(0);
    Ok((externs, Some(map)))
}

/// Sort key: kind (kconfig first), then for kconfig alignment descending
/// and size ascending, then name.
fn order_key(e: &ExternSpec) -> (u8, u32, u32, String) {
    match e.kind {
        ExternKind::Kconfig { size, align, .. } => (0, u32::MAX - align, size, e.name.clone()),
        _ => (1, 0, 0, e.name.clone()),
    }
}

/// The BTF VAR or FUNC named `name` with extern linkage, and the data
/// section that lists it.
fn find_extern(btf: &Btf, name: &str) -> Option<(TypeId, String)> {
    let id = btf.ids_named(name).into_iter().find(|&id| {
        matches!(btf.ty(id).map(|t| &t.kind), Ok(Kind::Var(v)) if v.linkage == VarLinkage::GlobalExtern)
            || matches!(btf.ty(id).map(|t| &t.kind), Ok(Kind::Func(_)))
    })?;
    let section = btf.own_types().find_map(|(sid, t)| match &t.kind {
        Kind::Datasec(d) if d.vars.iter().any(|v| v.ty == id) => {
            btf.name(sid).ok().map(str::to_string)
        }
        _ => None,
    })?;
    Some((id, section))
}

/// The encoding, size and alignment of a `.kconfig` variable of type `ty`
/// (libbpf's `find_kcfg_type`); `None` when unsupported.
fn kconfig_type(btf: &Btf, ty: TypeId) -> Option<(KconfigType, u32, u32)> {
    let id = btf.skip_mods_and_typedefs(ty).ok()?;
    let t = btf.ty(id).ok()?;
    match &t.kind {
        Kind::Int(i) if i.is_bool() => (i.size == 1).then_some((KconfigType::Bool, 1, 1)),
        Kind::Int(i) if i.size == 1 => Some((KconfigType::Char, 1, 1)),
        Kind::Int(i) if matches!(i.size, 2 | 4 | 8) => Some((
            KconfigType::Int {
                signed: i.is_signed(),
            },
            i.size,
            i.size,
        )),
        Kind::Enum(e) | Kind::Enum64(e) => (btf.str_at(t.name_off).ok()? == "libbpf_tristate"
            && e.size == 4)
            .then_some((KconfigType::Tristate, 4, 4)),
        Kind::Array(a) if a.nelems > 0 => match kconfig_type(btf, a.elem)? {
            (KconfigType::Char, _, _) => Some((KconfigType::CharArray, a.nelems, 1)),
            _ => None,
        },
        _ => None,
    }
}

/// Gives the `.kconfig` data section its size and variable offsets (and
/// allocated linkage, as libbpf does), so it describes the map's value.
fn place_in_btf(btf: &mut Btf, externs: &[ExternSpec], size: u32) -> Option<TypeId> {
    let (id, sec) = btf.datasec(KCONFIG_SECTION)?;
    let mut vars: Vec<VarSecinfo> = Vec::with_capacity(sec.vars.len());
    for v in &sec.vars {
        let name = btf.name(v.ty).ok()?;
        let e = externs.iter().find(|e| e.name == name)?;
        let ExternKind::Kconfig { offset, size, .. } = e.kind else {
            return None;
        };
        vars.push(VarSecinfo {
            ty: v.ty,
            offset,
            size,
        });
    }
    vars.sort_by_key(|v| v.offset);
    for v in &vars {
        if let Ok(t) = btf.ty_mut(v.ty) {
            if let Kind::Var(var) = &mut t.kind {
                var.linkage = VarLinkage::GlobalAllocated;
            }
        }
    }
    btf.ty_mut(id).ok()?.kind = Kind::Datasec(Datasec { size, vars });
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, size: u32, align: u32) -> ExternSpec {
        ExternSpec {
            name: name.into(),
            weak: false,
            kind: ExternKind::Kconfig {
                ty: KconfigType::Char,
                offset: 0,
                size,
                align,
            },
            btf_id: 1,
        }
    }

    #[test]
    fn kconfig_externs_sort_by_alignment_then_size_then_name() {
        let mut v = [
            ext("CONFIG_A", 1, 1),
            ext("CONFIG_B", 8, 8),
            ext("CONFIG_C", 16, 1),
            ext("CONFIG_D", 4, 4),
            ext("CONFIG_E", 4, 4),
        ];
        v.sort_by_key(order_key);
        let names: Vec<_> = v.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["CONFIG_B", "CONFIG_D", "CONFIG_E", "CONFIG_A", "CONFIG_C"]
        );
    }
}

//! Access specs: what a CO-RE relocation points at. The access string
//! (`0:1:2`) is walked through a BTF from the relocation's root type into
//! accessors (named members, array indices, an enumerator) and a bit
//! offset, for the local BTF and then for each candidate target.

use std::fmt;

use super::super::error::{Error, Result};
use super::super::types::{Kind, TypeId};
use super::super::view::TypeView;
use super::super::CoreReloKind;

/// Longest access string libbpf accepts (`BPF_CORE_SPEC_MAX_LEN`).
pub const MAX_SPEC_LEN: usize = 64;

/// One step of an access: a named member, or an array index (name `None`),
/// or an enumerator (for enum relocations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor<'a> {
    /// The struct/union/array element/enum type this step indexes into.
    pub type_id: TypeId,
    /// Member, element or enumerator index.
    pub idx: u32,
    /// Member or enumerator name; `None` for an array index.
    pub name: Option<&'a str>,
}

/// A resolved access in one BTF.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The BTF the ids refer to.
    pub btf: &'a dyn TypeView,
    /// The root type of the relocation in this BTF.
    pub root_type_id: TypeId,
    /// The relocation kind.
    pub kind: CoreReloKind,
    /// Named members, array indices and enumerators, in order.
    pub accessors: Vec<Accessor<'a>>,
    /// Raw access indices (every member, anonymous ones included).
    pub raw: Vec<u32>,
    /// Offset of the accessed field from the root, in bits.
    pub bit_offset: u64,
}

/// Splits an access string into indices.
pub fn parse_access_str(s: &str) -> Result<Vec<u32>> {
    if s.is_empty() {
        return Err(Error::invalid("empty CO-RE access string"));
    }
    let raw = s
        .split(':')
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| Error::invalid(format!("CO-RE access string '{s}' does not parse")))
        })
        .collect::<Result<Vec<u32>>>()?;
    if raw.len() > MAX_SPEC_LEN {
        return Err(Error::invalid(format!(
            "CO-RE access string '{s}' is longer than {MAX_SPEC_LEN} steps"
        )));
    }
    Ok(raw)
}

impl<'a> Spec<'a> {
    /// Walks `access` from `root` in `btf` for a relocation of `kind`.
    pub fn parse(
        btf: &'a dyn TypeView,
        root: TypeId,
        access: &str,
        kind: CoreReloKind,
    ) -> Result<Spec<'a>> {
        let raw = parse_access_str(access)?;
        let mut spec = Spec {
            btf,
            root_type_id: root,
            kind,
            accessors: Vec::new(),
            raw: raw.clone(),
            bit_offset: 0,
        };
        if kind.is_type() {
            if raw != [0] {
                return Err(Error::invalid(format!(
                    "type relocation access string '{access}' must be '0'"
                )));
            }
            return Ok(spec);
        }
        let mut id = btf.skip_mods_and_typedefs(root)?;
        if kind.is_enumval() {
            let t = btf.ty(id)?;
            let e = t.kind.enumeration().ok_or_else(|| {
                Error::invalid(format!(
                    "enum relocation on {}, not an enum",
                    btf.describe(id)
                ))
            })?;
            let idx = raw[0];
            let v = e.values.get(idx as usize).ok_or_else(|| {
                Error::invalid(format!(
                    "enumerator #{idx} out of range in {}",
                    btf.describe(id)
                ))
            })?;
            spec.accessors.push(Accessor {
                type_id: id,
                idx,
                name: Some(btf.str_at(v.name_off)?),
            });
            if raw.len() != 1 {
                return Err(Error::invalid(format!(
                    "enum relocation access string '{access}' has extra steps"
                )));
            }
            return Ok(spec);
        }
        // Field relocation: the first index steps through a pointer as an array.
        let first = raw[0];
        spec.accessors.push(Accessor {
            type_id: id,
            idx: first,
            name: None,
        });
        let size = btf.resolve_size(id)? as u64;
        spec.bit_offset = first as u64 * size * 8;
        for &idx in &raw[1..] {
            id = btf.skip_mods_and_typedefs(id)?;
            let t = btf.ty(id)?;
            match &t.kind {
                Kind::Struct(c) | Kind::Union(c) => {
                    let m = c.members.get(idx as usize).ok_or_else(|| {
                        Error::invalid(format!(
                            "member #{idx} out of range in {}",
                            btf.describe(id)
                        ))
                    })?;
                    spec.bit_offset += m.bit_offset as u64;
                    let name = btf.str_at(m.name_off)?;
                    if !name.is_empty() {
                        spec.accessors.push(Accessor {
                            type_id: id,
                            idx,
                            name: Some(name),
                        });
                    }
                    id = m.ty;
                }
                Kind::Array(a) => {
                    let elem = btf.skip_mods_and_typedefs(a.elem)?;
                    let flex = is_flex_array(btf, spec.accessors.last(), a.nelems);
                    if !flex && idx >= a.nelems {
                        return Err(Error::invalid(format!(
                            "array index {idx} out of range ({} elements) in access '{access}'",
                            a.nelems
                        )));
                    }
                    spec.accessors.push(Accessor {
                        type_id: elem,
                        idx,
                        name: None,
                    });
                    let size = btf.resolve_size(elem)? as u64;
                    spec.bit_offset += idx as u64 * size * 8;
                    id = elem;
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "access '{access}' steps into {}, not a struct, union or array",
                        btf.describe(id)
                    )))
                }
            }
        }
        Ok(spec)
    }

    /// The innermost accessor.
    pub fn last(&self) -> Option<&Accessor<'a>> {
        self.accessors.last()
    }

    /// The raw access string (`0:1:2`).
    pub fn access_string(&self) -> String {
        self.raw
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A zero-length array that is the last member of its struct (flexible).
pub(crate) fn is_flex_array(btf: &dyn TypeView, parent: Option<&Accessor>, nelems: u32) -> bool {
    if nelems != 0 {
        return false;
    }
    let Some(acc) = parent.filter(|a| a.name.is_some()) else {
        return false;
    };
    btf.ty(acc.type_id)
        .ok()
        .and_then(|t| {
            t.kind
                .composite()
                .map(|c| acc.idx as usize + 1 == c.members.len())
        })
        .unwrap_or(false)
}

impl fmt::Display for Spec<'_> {
    /// `[7] struct iphdr.protocol (0:7 @ offset 9)` style, as libbpf logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}",
            self.root_type_id,
            self.btf.describe(self.root_type_id)
        )?;
        if self.kind.is_type() {
            return Ok(());
        }
        if self.kind.is_enumval() {
            if let Some(a) = self.accessors.first() {
                let v = self.btf.ty(a.type_id).ok().and_then(|t| {
                    t.kind
                        .enumeration()
                        .and_then(|e| e.values.get(a.idx as usize))
                        .map(|v| v.value)
                });
                write!(f, "::{}", a.name.unwrap_or("?"))?;
                if let Some(v) = v {
                    write!(f, " = {v}")?;
                }
            }
            return Ok(());
        }
        for (i, a) in self.accessors.iter().enumerate() {
            match a.name {
                Some(n) => write!(f, ".{n}")?,
                None if i == 0 && a.idx == 0 => {}
                None => write!(f, "[{}]", a.idx)?,
            }
        }
        write!(
            f,
            " ({} @ offset {}",
            self.access_string(),
            self.bit_offset / 8
        )?;
        if self.bit_offset % 8 != 0 {
            write!(f, ".{}", self.bit_offset % 8)?;
        }
        write!(f, ")")
    }
}

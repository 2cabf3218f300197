//! BTF-defined maps (`.maps` section), decoded the way libbpf's headers
//! encode them: `__uint(name, val)` is a pointer to an array of `val`
//! elements, `__type(name, T)` a pointer to `T`, `__ulong(name, val)` a
//! pointer to a one-value enum, and `__array(values, T)` a zero-length array
//! of pointers to the inner map definition (map-in-map) or to a function
//! prototype (program arrays). Pure: reads types, never the ELF file.

use super::error::{Error, Result};
use super::type_set::Btf;
use super::types::{Kind, Member, TypeId};

/// `BPF_MAP_TYPE_PROG_ARRAY`.
const PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`, `BPF_MAP_TYPE_HASH_OF_MAPS`.
const MAP_IN_MAP: [u32; 2] = [12, 13];

/// A map definition read from a `.maps` variable's struct type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfMapDef {
    /// `type` (a `BPF_MAP_TYPE_*` number).
    pub map_type: Option<u32>,
    /// BTF type of the key (from `__type(key, T)`).
    pub key_type: Option<TypeId>,
    /// Key size in bytes (from `key_size`, or the size of the key type).
    pub key_size: Option<u32>,
    /// BTF type of the value (from `__type(value, T)`).
    pub value_type: Option<TypeId>,
    /// Value size in bytes (from `value_size`, or the size of the value type).
    pub value_size: Option<u32>,
    /// `max_entries`.
    pub max_entries: Option<u32>,
    /// `map_flags`.
    pub map_flags: Option<u32>,
    /// `pinning` (libbpf: 0 none, 1 by name).
    pub pinning: Option<u32>,
    /// `numa_node`.
    pub numa_node: Option<u32>,
    /// `map_extra`.
    pub map_extra: Option<u64>,
    /// The inner map of a map-in-map (`values` pointing to a struct).
    pub inner: Option<Box<BtfMapDef>>,
    /// The `values` initialiser slots, when declared.
    pub values: Option<ValuesSlots>,
    /// Size of the definition struct (the variable's size in `.maps`).
    pub def_size: u32,
}

/// Where `values` starts inside the definition and what its slots hold.
/// Slot `i` is the 8-byte pointer at `offset + 8 * i` from the variable's
/// start; the loader reads `.rel.maps` relocations that land there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValuesSlots {
    /// Byte offset of `values` in the definition struct.
    pub offset: u32,
    /// What the slots point to.
    pub kind: ValuesKind,
}

/// What a `values` slot refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuesKind {
    /// Inner maps (map-in-map).
    Maps,
    /// Programs (program array).
    Programs,
}

/// Decodes the map definition of a `.maps` variable. `id` is the VAR (or
/// its struct type); `name` is used in error messages.
pub fn parse_map_def(btf: &Btf, id: TypeId, name: &str) -> Result<BtfMapDef> {
    let def_id = match &btf.ty(id)?.kind {
        Kind::Var(v) => v.ty,
        _ => id,
    };
    parse_def(btf, def_id, name, false)
}

fn parse_def(btf: &Btf, def_id: TypeId, name: &str, is_inner: bool) -> Result<BtfMapDef> {
    let err = |msg: String| Error::invalid(format!("map '{name}': {msg}"));
    let sid = btf.skip_mods_and_typedefs(def_id)?;
    let Kind::Struct(c) = &btf.ty(sid)?.kind else {
        return Err(err(format!(
            "definition is {}, expected a struct",
            btf.describe(sid)
        )));
    };
    let mut def = BtfMapDef {
        def_size: c.size,
        ..BtfMapDef::default()
    };
    for (i, m) in c.members.iter().enumerate() {
        let field = btf.str_at(m.name_off)?;
        let int = || field_int(btf, m, field).map_err(|e| err(e.to_string()));
        match field {
            "type" => def.map_type = Some(int()?),
            "max_entries" => def.max_entries = Some(int()?),
            "map_flags" => def.map_flags = Some(int()?),
            "numa_node" => def.numa_node = Some(int()?),
            "pinning" => def.pinning = Some(int()?),
            "key_size" => set_size(&mut def.key_size, int()?, "key").map_err(err)?,
            "value_size" => set_size(&mut def.value_size, int()?, "value").map_err(err)?,
            "map_extra" => {
                def.map_extra = Some(field_long(btf, m, field).map_err(|e| err(e.to_string()))?)
            }
            "key" | "value" => {
                let (ty, size) = field_type(btf, m, field).map_err(|e| err(e.to_string()))?;
                if field == "key" {
                    set_size(&mut def.key_size, size, "key").map_err(err)?;
                    def.key_type = Some(ty);
                } else {
                    set_size(&mut def.value_size, size, "value").map_err(err)?;
                    def.value_type = Some(ty);
                }
            }
            "values" => {
                if is_inner {
                    return Err(err("multi-level inner maps are not supported".into()));
                }
                if i + 1 != c.members.len() {
                    return Err(err("'values' must be the last field".into()));
                }
                let (kind, target) = values_target(btf, m).map_err(|e| err(e.to_string()))?;
                match (kind, def.map_type) {
                    (ValuesKind::Programs, Some(PROG_ARRAY)) => {}
                    (ValuesKind::Maps, Some(t)) if MAP_IN_MAP.contains(&t) => {
                        let inner_name = format!("{name}.inner");
                        def.inner = Some(Box::new(parse_def(btf, target, &inner_name, true)?));
                    }
                    (_, t) => {
                        return Err(err(format!(
                            "'values' of {} is not allowed for map type {}",
                            btf.describe(target),
                            t.map_or("(unset)".to_string(), |t| t.to_string())
                        )))
                    }
                }
                def.values = Some(ValuesSlots {
                    offset: m.bit_offset / 8,
                    kind,
                });
            }
            other => return Err(err(format!("unknown field '{other}'"))),
        }
    }
    Ok(def)
}

fn set_size(slot: &mut Option<u32>, size: u32, what: &str) -> std::result::Result<(), String> {
    match *slot {
        Some(old) if old != size => Err(format!("conflicting {what} size {old} != {size}")),
        _ => {
            *slot = Some(size);
            Ok(())
        }
    }
}

/// `__uint(field, val)`: a pointer to an array of `val` elements.
fn field_int(btf: &Btf, m: &Member, field: &str) -> Result<u32> {
    let ptr = btf.skip_mods_and_typedefs(m.ty)?;
    let Kind::Ptr(target) = btf.ty(ptr)?.kind else {
        return Err(Error::invalid(format!(
            "field '{field}' is {}, expected a pointer to an array",
            btf.describe(ptr)
        )));
    };
    match &btf.ty(target)?.kind {
        Kind::Array(a) => Ok(a.nelems),
        _ => Err(Error::invalid(format!(
            "field '{field}' points to {}, expected an array",
            btf.describe(target)
        ))),
    }
}

/// `__ulong(field, val)`: a pointer to a one-value enum, or an `__uint` array.
fn field_long(btf: &Btf, m: &Member, field: &str) -> Result<u64> {
    let ptr = btf.skip_mods_and_typedefs(m.ty)?;
    let Kind::Ptr(target) = btf.ty(ptr)?.kind else {
        return Err(Error::invalid(format!(
            "field '{field}' is {}, expected a pointer",
            btf.describe(ptr)
        )));
    };
    match &btf.ty(target)?.kind {
        Kind::Array(a) => Ok(a.nelems as u64),
        Kind::Enum(e) | Kind::Enum64(e) if e.values.len() == 1 => Ok(e.values[0].value as u64),
        _ => Err(Error::invalid(format!(
            "field '{field}' points to {}, expected an array or a one-value enum",
            btf.describe(target)
        ))),
    }
}

/// `__type(field, T)`: a pointer to `T`; returns `T` and its size.
fn field_type(btf: &Btf, m: &Member, field: &str) -> Result<(TypeId, u32)> {
    let ptr = btf.skip_mods_and_typedefs(m.ty)?;
    let Kind::Ptr(target) = btf.ty(ptr)?.kind else {
        return Err(Error::invalid(format!(
            "field '{field}' is {}, expected a pointer",
            btf.describe(ptr)
        )));
    };
    let size = btf
        .resolve_size(target)
        .map_err(|e| Error::invalid(format!("field '{field}': {e}")))?;
    Ok((target, size))
}

/// `__array(values, T)`: a zero-length array of pointers to `T`.
fn values_target(btf: &Btf, m: &Member) -> Result<(ValuesKind, TypeId)> {
    let arr = btf.skip_mods_and_typedefs(m.ty)?;
    let Kind::Array(a) = btf.ty(arr)?.kind else {
        return Err(Error::invalid(format!(
            "'values' is {}, expected an array",
            btf.describe(arr)
        )));
    };
    if a.nelems != 0 {
        return Err(Error::invalid(format!(
            "'values' has {} elements, expected 0",
            a.nelems
        )));
    }
    let ptr = btf.skip_mods_and_typedefs(a.elem)?;
    let Kind::Ptr(target) = btf.ty(ptr)?.kind else {
        return Err(Error::invalid(format!(
            "'values' holds {}, expected pointers",
            btf.describe(ptr)
        )));
    };
    let target = btf.skip_mods_and_typedefs(target)?;
    match &btf.ty(target)?.kind {
        Kind::Struct(_) => Ok((ValuesKind::Maps, target)),
        Kind::FuncProto(_) => Ok((ValuesKind::Programs, target)),
        _ => Err(Error::invalid(format!(
            "'values' points to {}, expected a map definition or a function prototype",
            btf.describe(target)
        ))),
    }
}

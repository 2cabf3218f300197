//! BTF-defined maps (section `.maps`): each variable of the `.maps` data
//! section is a map whose definition the BTF model decodes; this file turns
//! those definitions into `MapSpec`s and reads the `values` initialisers
//! (relocations in `.rel.maps`) of program arrays and map-in-map maps.

use super::map::{check_sizes, MapOrigin, MapSpec, Pinning, SlotInit, SlotTarget};
use super::reader::{Elf, Section, SymKind};
use super::subprog::MapResolver;
use super::{ObjectSpec, ParseError};
use crate::abi::MapType;
use crate::btf::maps::{parse_map_def, BtfMapDef};
use crate::btf::{Btf, Kind};

/// libbpf's `LIBBPF_PIN_BY_NAME`.
const PIN_BY_NAME: u32 = 1;

/// Adds the maps defined in `.maps` to `spec` (whose `btf` is parsed and
/// fixed up already).
pub(crate) fn parse(
    file: &str,
    section: &Section<'_>,
    spec: &mut ObjectSpec,
    resolver: &mut MapResolver,
) -> Result<(), ParseError> {
    let err = |reason: String| ParseError::new(file, reason).in_section(".maps");
    if section.size == 0 {
        return Ok(());
    }
    let Some(btf) = &spec.btf else {
        return Err(err(
            "BTF-defined maps need type information, and the object has no .BTF section".into(),
        ));
    };
    let Some((_, datasec)) = btf.datasec(".maps") else {
        return Err(err(
            "no BTF data section '.maps' describes the map definitions".into(),
        ));
    };
    let mut found = Vec::new();
    for v in &datasec.vars {
        let name = btf
            .ty(v.ty)
            .and_then(|t| btf.str_at(t.name_off))
            .map_err(|e| err(format!("bad BTF variable: {e}")).with_cause(e))?
            .to_string();
        if !matches!(btf.ty(v.ty).map(|t| &t.kind), Ok(Kind::Var(_))) {
            return Err(err(format!("BTF entry [{}] is not a variable", v.ty)).at_symbol(name));
        }
        let def = parse_map_def(btf, v.ty, &name)
            .map_err(|e| err(e.to_string()).with_cause(e).at_symbol(name.clone()))?;
        let map =
            map_spec(&name, &def, MapOrigin::Btf).map_err(|e| err(e).at_symbol(name.clone()))?;
        found.push((v.offset, v.size, name, map, def.values.map(|s| s.offset)));
    }
    for (offset, size, name, map, values) in found {
        let index = spec.maps.len();
        resolver.btf_by_name.insert(name, index);
        resolver
            .btf_by_offset
            .push((u64::from(offset), u64::from(size), index));
        spec.maps.push(map);
        if let Some(values) = values {
            resolver.btf_values.push((index, offset, size, values));
        }
    }
    resolver.btf_section = Some(section.index);
    Ok(())
}

fn map_spec(name: &str, def: &BtfMapDef, origin: MapOrigin) -> Result<MapSpec, String> {
    let raw = def.map_type.ok_or("no map type")?;
    let map_type = match MapType::from_u32(raw) {
        Some(t) if t != MapType::Unspec => t,
        _ => return Err(format!("unknown map type {raw}")),
    };
    let mut m = MapSpec::new(name, origin, map_type);
    m.key_size = def.key_size.unwrap_or(0);
    m.value_size = def.value_size.unwrap_or(0);
    if m.value_size == 0
        && (def.inner.is_some() || (map_type == MapType::ProgArray && def.values.is_some()))
    {
        m.value_size = 4;
    }
    m.max_entries = def.max_entries.unwrap_or(0);
    m.flags = def.map_flags.unwrap_or(0);
    m.numa_node = def.numa_node.unwrap_or(0);
    m.map_extra = def.map_extra.unwrap_or(0);
    m.pinning = match def.pinning.unwrap_or(0) {
        0 => Pinning::None,
        PIN_BY_NAME => Pinning::GlobalNs,
        other => {
            return Err(format!(
                "unsupported pinning {other} (libbpf knows 0 and 1)"
            ))
        }
    };
    m.btf_key_type_id = def.key_type.unwrap_or(0);
    m.btf_value_type_id = def.value_type.unwrap_or(0);
    if let Some(inner) = &def.inner {
        let inner_spec = map_spec(&format!("{name}.inner"), inner, MapOrigin::InnerTemplate)?;
        m.inner = Some(Box::new(inner_spec));
    }
    check_sizes(&m)?;
    Ok(m)
}

/// Reads the `values` initialisers: each relocation in `.maps` that lands
/// in a map's `values` array stores the map or program its symbol names at
/// the slot `(offset - start of values) / 8`.
pub(crate) fn resolve_initialisers(
    file: &str,
    elf: &Elf<'_>,
    section: &Section<'_>,
    spec: &mut ObjectSpec,
    resolver: &MapResolver,
) -> Result<(), ParseError> {
    for r in &section.relocs {
        let sym = &elf.symbols[r.symbol];
        let err = |reason: String| {
            ParseError::new(file, reason)
                .in_section(".maps")
                .at_symbol(sym.name.clone())
        };
        let Some(&(index, var_off, _, values_off)) =
            resolver.btf_values.iter().find(|(_, off, size, vo)| {
                r.offset >= u64::from(*off) + u64::from(*vo)
                    && r.offset + 8 <= u64::from(*off) + u64::from(*size)
            })
        else {
            return Err(err(format!(
                "relocation at byte {} of '.maps' is not in any map's 'values'",
                r.offset
            )));
        };
        let rel = r.offset - u64::from(var_off) - u64::from(values_off);
        if rel % 8 != 0 {
            return Err(err(format!(
                "initialiser at byte {} is not on a slot boundary",
                r.offset
            )));
        }
        let key =
            u32::try_from(rel / 8).map_err(|_| err("initialiser slot out of range".into()))?;
        let outer = &spec.maps[index];
        if key >= outer.max_entries {
            return Err(err(format!(
                "initialiser slot {key} of map '{}' is out of bounds ({} entries)",
                outer.name, outer.max_entries
            )));
        }
        let target = if outer.map_type == MapType::ProgArray {
            let in_code = sym.section.is_some_and(|i| elf.sections[i].is_exec());
            if !in_code || sym.kind != SymKind::Func || spec.program(&sym.name).is_none() {
                return Err(err(format!(
                    "initialiser of program array '{}' names no program of the object",
                    outer.name
                )));
            }
            SlotTarget::Program(sym.name.clone())
        } else {
            match resolver.btf_by_name.get(&sym.name) {
                Some(&m) if sym.section == resolver.btf_section => SlotTarget::Map(m),
                _ => {
                    return Err(err(format!(
                        "initialiser of map '{}' names no map of the object",
                        outer.name
                    )))
                }
            }
        };
        spec.maps[index]
            .initial_slots
            .push(SlotInit { key, target });
    }
    Ok(())
}

/// Parses `.BTF` and fixes it up from the ELF file (data section sizes and
/// variable offsets), as the kernel needs it.
pub(crate) fn parse_btf(file: &str, elf: &Elf<'_>, data: &[u8]) -> Result<Btf, ParseError> {
    let err = |reason: String| ParseError::new(file, reason).in_section(".BTF");
    let mut btf = Btf::parse(data).map_err(|e| err(e.to_string()).with_cause(e))?;
    let section_size = |name: &str| {
        elf.sections
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| u32::try_from(s.size).ok())
    };
    let symbol_offset = |section: &str, var: &str| {
        let index = elf.sections.iter().position(|s| s.name == section)?;
        elf.symbols
            .iter()
            .find(|y| y.section == Some(index) && y.name == var && y.kind != SymKind::Section)
            .and_then(|y| u32::try_from(y.value).ok())
    };
    btf.fixup_datasecs(section_size, symbol_offset)
        .map_err(|e| err(e.to_string()).with_cause(e))?;
    Ok(btf)
}

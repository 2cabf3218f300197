//! iproute2's legacy map definitions: `struct bpf_elf_map` entries in the
//! section `maps`, one global symbol per map. The struct grew over time
//! (type, size_key, size_value, max_elem [, flags [, id [, pinning
//! [, inner_id, inner_idx]]]]); the entry size is the section size divided
//! by the number of map symbols, and missing trailing fields read as zero.

use super::map::{check_sizes, MapOrigin, MapSpec, Pinning};
use super::reader::{Elf, Section, SymKind};
use super::ParseError;
use crate::abi::MapType;

/// The legacy section's name.
pub const SECTION: &str = "maps";
/// The most maps tc's legacy loader takes from one object.
pub const MAX_MAPS: usize = 64;
/// The smallest `struct bpf_elf_map` (type, key, value, max entries).
const MIN_ENTRY: usize = 16;
/// Today's `struct bpf_elf_map`: nine u32 fields.
const MAX_ENTRY: usize = 36;

/// The legacy maps of `section`, in the order of their offsets, with the
/// entry size (needed to resolve relocations: map index = offset / size).
pub(crate) fn parse(
    file: &str,
    elf: &Elf<'_>,
    section: &Section<'_>,
) -> Result<(usize, Vec<MapSpec>), ParseError> {
    let err = |reason: String| ParseError::new(file, reason).in_section(SECTION);
    let mut symbols: Vec<(u64, &str)> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.section == Some(section.index)
                && s.global
                && matches!(s.kind, SymKind::NoType | SymKind::Object)
        })
        .map(|s| (s.value, s.name.as_str()))
        .collect();
    symbols.sort();
    let size = section.data.len();
    if symbols.is_empty() {
        return Err(err(
            "no map symbols (each struct bpf_elf_map needs a global symbol)".into(),
        ));
    }
    if symbols.len() > MAX_MAPS {
        return Err(err(format!(
            "{} maps: more than fit ({MAX_MAPS} at most in a legacy maps section)",
            symbols.len()
        )));
    }
    if size % symbols.len() != 0 || size % 4 != 0 {
        return Err(err(format!(
            "{size} bytes is not a whole number of struct bpf_elf_map for {} map symbols",
            symbols.len()
        )));
    }
    let entry = size / symbols.len();
    if entry < MIN_ENTRY {
        return Err(err(format!(
            "struct bpf_elf_map of {entry} bytes is too small (at least {MIN_ENTRY})"
        )));
    }
    if entry > MAX_ENTRY {
        return Err(err(format!(
            "struct bpf_elf_map of {entry} bytes is larger than any iproute2 defines ({MAX_ENTRY})"
        )));
    }
    let mut maps = Vec::with_capacity(symbols.len());
    for (i, (offset, name)) in symbols.iter().enumerate() {
        if *offset != (i * entry) as u64 {
            return Err(err(format!(
                "map symbols are not laid out every {entry} bytes (offset {offset})"
            ))
            .at_symbol(*name));
        }
        let bytes = &section.data[i * entry..(i + 1) * entry];
        let field = |n: usize| -> u32 {
            bytes
                .get(n * 4..n * 4 + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let map_type = match MapType::from_u32(field(0)) {
            Some(t) if t != MapType::Unspec => t,
            _ => return Err(err(format!("unknown map type {}", field(0))).at_symbol(*name)),
        };
        let mut map = MapSpec::new(name, MapOrigin::Legacy, map_type);
        map.key_size = field(1);
        map.value_size = field(2);
        map.max_entries = field(3);
        map.flags = field(4);
        map.id = field(5);
        map.pinning = Pinning::from_legacy(field(6));
        map.inner_id = field(7);
        map.inner_idx = field(8);
        check_sizes(&map).map_err(|e| err(e).at_symbol(*name))?;
        maps.push(map);
    }
    Ok((entry, maps))
}

/// iproute2's `BPF_ANNOTATE_KV_PAIR(name, key, value)`: a struct
/// `____btf_map_<name>` whose members `key` and `value` give the legacy
/// map's BTF key and value types. Set only when their sizes match the map's.
pub(crate) fn annotate_from_btf(btf: &crate::btf::Btf, map: &mut MapSpec) {
    use crate::btf::{BtfKind, Kind};
    let Some(id) = btf.find_by_name_kind(&format!("____btf_map_{}", map.name), BtfKind::Struct)
    else {
        return;
    };
    let Ok(Kind::Struct(c)) = btf.ty(id).map(|t| &t.kind) else {
        return;
    };
    let [key, value] = c.members.as_slice() else {
        return;
    };
    let named = |m: &crate::btf::Member, n: &str| btf.str_at(m.name_off).is_ok_and(|s| s == n);
    let sized = |m: &crate::btf::Member, size: u32| btf.resolve_size(m.ty).is_ok_and(|s| s == size);
    if named(key, "key")
        && named(value, "value")
        && sized(key, map.key_size)
        && sized(value, map.value_size)
    {
        map.btf_key_type_id = key.ty;
        map.btf_value_type_id = value.ty;
    }
}

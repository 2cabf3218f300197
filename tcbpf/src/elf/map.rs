//! `MapSpec`: everything needed to create (or find pinned) one map and to
//! describe it to an importer, whatever definition style it came from.

use crate::abi::{Entries, MapType};
use std::fmt;

/// Where a map definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOrigin {
    /// iproute2's `struct bpf_elf_map` in section `maps`.
    Legacy,
    /// A BTF-defined map in section `.maps`.
    Btf,
    /// A global data section (`.data`, `.rodata*`, `.bss`) as a one-entry array.
    GlobalData,
    /// The inner map template of a BTF map-in-map definition.
    InnerTemplate,
}

impl MapOrigin {
    /// A short word for listings.
    pub fn name(self) -> &'static str {
        match self {
            MapOrigin::Legacy => "legacy",
            MapOrigin::Btf => "btf",
            MapOrigin::GlobalData => "data",
            MapOrigin::InnerTemplate => "inner",
        }
    }
}

/// How a map is pinned, as tc understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Not pinned (`PIN_NONE`).
    None,
    /// `PIN_OBJECT_NS` (1): `<bpffs>/tc/<sha1 of the object>/<map>`.
    ObjectNs,
    /// `PIN_GLOBAL_NS` (2) and BTF `LIBBPF_PIN_BY_NAME`: `<bpffs>/tc/globals/<map>`.
    GlobalNs,
    /// Another legacy value, resolved through `/etc/iproute2/bpf_pinning`.
    Custom(u32),
}

impl Pinning {
    /// The legacy `pinning` field value (what an exporter sends).
    pub fn raw(self) -> u32 {
        match self {
            Pinning::None => 0,
            Pinning::ObjectNs => 1,
            Pinning::GlobalNs => 2,
            Pinning::Custom(n) => n,
        }
    }

    /// The legacy field value as a `Pinning`.
    pub fn from_legacy(raw: u32) -> Pinning {
        match raw {
            0 => Pinning::None,
            1 => Pinning::ObjectNs,
            2 => Pinning::GlobalNs,
            n => Pinning::Custom(n),
        }
    }
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pinning::None => f.write_str("none"),
            Pinning::ObjectNs => f.write_str("object"),
            Pinning::GlobalNs => f.write_str("global"),
            Pinning::Custom(n) => write!(f, "custom {n}"),
        }
    }
}

/// What goes into one slot of a program array or map-in-map outer map when
/// the map is created (BTF `values` initialisers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTarget {
    /// The program with this (function) name.
    Program(String),
    /// The map at this index of `ObjectSpec::maps`.
    Map(usize),
}

/// One initial slot of an fd-holding map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInit {
    /// The key (array index).
    pub key: u32,
    /// What is stored there.
    pub target: SlotTarget,
}

/// One map of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Name: the symbol (legacy, BTF) or the section (global data).
    pub name: String,
    /// Definition style.
    pub origin: MapOrigin,
    /// Kernel map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
    /// The id an importer sees (`BPF_MAP<id>`): the legacy `id` field when the
    /// object sets one, otherwise the lowest id unused in the object.
    pub id: u32,
    /// Pinning.
    pub pinning: Pinning,
    /// Legacy `inner_id`: for an outer map, the id of its inner map template.
    pub inner_id: u32,
    /// Legacy `inner_idx`: for an inner map, its slot in the outer maps.
    pub inner_idx: u32,
    /// NUMA node (with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// Type-specific extra (bloom filter hashes…).
    pub map_extra: u64,
    /// BTF map-in-map: the inner map template (created only to shape the
    /// outer map; not one of the object's maps).
    pub inner: Option<Box<MapSpec>>,
    /// BTF `values` initialisers.
    pub initial_slots: Vec<SlotInit>,
    /// Initial contents of a global data map (the section's bytes).
    pub data: Option<Vec<u8>>,
    /// Frozen after it is filled (`.rodata`).
    pub freeze: bool,
    /// BTF key type id (0: none).
    pub btf_key_type_id: u32,
    /// BTF value type id (0: none).
    pub btf_value_type_id: u32,
}

impl MapSpec {
    /// A map of `map_type` with everything else zero.
    pub fn new(name: &str, origin: MapOrigin, map_type: MapType) -> MapSpec {
        MapSpec {
            name: name.to_string(),
            origin,
            map_type,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            flags: 0,
            id: 0,
            pinning: Pinning::None,
            inner_id: 0,
            inner_idx: 0,
            numa_node: 0,
            map_extra: 0,
            inner: None,
            initial_slots: Vec::new(),
            data: None,
            freeze: false,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
        }
    }

    /// True for program arrays and map-in-map outer maps.
    pub fn holds_fds(&self) -> bool {
        self.map_type.holds_fds()
    }

    /// True for map-in-map outer maps.
    pub fn is_map_in_map(&self) -> bool {
        matches!(self.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }

    /// One line: `hash key 4 value 16 max 256 flags 0x0`.
    pub fn definition(&self) -> String {
        format!(
            "{} key {} value {} max {} flags {:#x}",
            self.map_type, self.key_size, self.value_size, self.max_entries, self.flags
        )
    }
}

/// Checks what the kernel would refuse with a less helpful EINVAL: sizes
/// that must not be zero, by the type's rules (`abi::MAP_TYPES`).
pub(crate) fn check_sizes(map: &MapSpec) -> Result<(), String> {
    let rules = map.map_type.rules();
    if map.key_size == 0 && rules.needs_key {
        return Err(format!("{} map with key size 0", map.map_type));
    }
    if map.value_size == 0 && rules.needs_value {
        return Err(format!("{} map with value size 0", map.map_type));
    }
    // Storage leaves it unused; libbpf sizes a perf event array to the
    // possible CPUs at load time.
    let zero_ok = matches!(rules.entries, Entries::Unused | Entries::PossibleCpus);
    if map.max_entries == 0 && !zero_ok {
        return Err(format!("{} map with max entries 0", map.map_type));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(t: MapType, key: u32, value: u32, max: u32) -> MapSpec {
        let mut m = MapSpec::new("m", MapOrigin::Legacy, t);
        (m.key_size, m.value_size, m.max_entries) = (key, value, max);
        m
    }

    #[test]
    fn zero_sizes_are_refused_where_the_kernel_needs_them() {
        assert!(check_sizes(&sized(MapType::Hash, 4, 8, 1)).is_ok());
        assert_eq!(
            check_sizes(&sized(MapType::Hash, 0, 8, 1)).unwrap_err(),
            "hash map with key size 0"
        );
        assert!(check_sizes(&sized(MapType::Array, 4, 0, 1)).is_err());
        assert!(check_sizes(&sized(MapType::Array, 4, 4, 0)).is_err());
        // Queues have no key, ring buffers no key or value, storage no max.
        assert!(check_sizes(&sized(MapType::Queue, 0, 4, 8)).is_ok());
        assert!(check_sizes(&sized(MapType::Ringbuf, 0, 0, 4096)).is_ok());
        assert!(check_sizes(&sized(MapType::SkStorage, 4, 8, 0)).is_ok());
    }

    #[test]
    fn legacy_pinning_values_round_trip() {
        for raw in [0, 1, 2, 42] {
            assert_eq!(Pinning::from_legacy(raw).raw(), raw);
        }
        assert_eq!(Pinning::from_legacy(42).to_string(), "custom 42");
    }
}

//! The upgrade plan, as data: for every map of the new object, matched by
//! name with a map of the running program, what happens to it — *reuse*
//! (the very same map), *migrate* (a new map filled from the old one
//! through a [`Converter`]), *fresh* (a new, empty map) or *refuse* (no
//! value can follow the change). Computed from both sides' definitions and
//! BTF; `plan` prints it and tests compare it. Pure: no syscalls.

use super::convert::{self, Changes, Converter};
use crate::abi::MapType;
use crate::btf::{Btf, TypeId};

/// How a migrated map's state is carried across the swap (`map NAME
/// { copy | sum | fresh }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The old map's final value wins for every key the new program has not
    /// written since the swap.
    Copy,
    /// Integer members are counters: the old program's increments after
    /// the copy are added to the new map.
    Sum,
    /// The new map starts empty.
    Fresh,
}

impl Mode {
    /// The word that names it.
    pub fn word(self) -> &'static str {
        match self {
            Mode::Copy => "copy",
            Mode::Sum => "sum",
            Mode::Fresh => "fresh",
        }
    }
}

/// One side of a map: its definition and, when it has some, its BTF.
#[derive(Debug, Clone, Copy)]
pub struct MapSide<'a> {
    /// The map's name (the kernel keeps 15 bytes of it).
    pub name: &'a str,
    /// Its type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Most entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// Key and value types, when the map has BTF.
    pub btf: Option<(&'a Btf, TypeId, TypeId)>,
    /// Global data (`.data`, `.bss`, `.rodata`, `.kconfig`).
    pub global_data: bool,
}

/// What happens to one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The running program's map is used by the new program as it is.
    Reuse,
    /// A new map, filled from the old one.
    Migrate(Box<Migration>),
    /// A new, empty map (or the new object's initial contents).
    Fresh(String),
    /// No value can follow the change.
    Refuse(String),
}

impl Action {
    /// `reuse`, `migrate`, `fresh` or `refuse`.
    pub fn word(&self) -> &'static str {
        match self {
            Action::Reuse => "reuse",
            Action::Migrate(_) => "migrate",
            Action::Fresh(_) => "fresh",
            Action::Refuse(_) => "refuse",
        }
    }
}

/// How a migrated map is filled and reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `copy` or `sum`.
    pub mode: Mode,
    /// Old value → new value.
    pub value: Converter,
    /// What changed in the value.
    pub changes: Changes,
    /// Other changes of the definition (type, max entries, flags), as text.
    pub definition: Vec<String>,
    /// For `sum`: the integer leaves (offset, size) of the old value.
    pub old_counters: Vec<(usize, usize)>,
    /// For `sum`: the integer leaves of the new value.
    pub new_counters: Vec<(usize, usize)>,
    /// Array maps: the old map's length, when the new one is shorter
    /// (entries past the new end must be zero to fit).
    pub shrinks_array: bool,
}

/// The plan of one map of the new object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPlan {
    /// The map's name in the new object.
    pub name: String,
    /// The running program's map of that name: its id.
    pub old_id: Option<u32>,
    /// What happens.
    pub action: Action,
}

/// Whether two map types hold values the same way (hash ↔ LRU hash).
fn compatible_types(old: MapType, new: MapType) -> bool {
    use MapType::*;
    old == new
        || matches!(
            (old, new),
            (Hash, LruHash)
                | (LruHash, Hash)
                | (PercpuHash, LruPercpuHash)
                | (LruPercpuHash, PercpuHash)
        )
}

/// Map types whose entries can be read and written from user space.
fn copyable(t: MapType) -> bool {
    use MapType::*;
    matches!(
        t,
        Hash | LruHash | PercpuHash | LruPercpuHash | Array | PercpuArray | LpmTrie
    )
}

fn is_array(t: MapType) -> bool {
    matches!(t, MapType::Array | MapType::PercpuArray)
}

/// The plan for map `new` given the running program's map of the same
/// name (`old`, None when it has none) and the mode the user asked for.
pub fn plan_map(old: Option<&MapSide<'_>>, new: &MapSide<'_>, asked: Option<Mode>) -> Action {
    if matches!(
        new.map_type,
        MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps
    ) {
        return Action::Fresh("built from the new object".into());
    }
    if new.global_data {
        return Action::Fresh("global data of the new object".into());
    }
    let Some(old) = old else {
        return Action::Fresh("new map".into());
    };
    if asked == Some(Mode::Fresh) {
        return Action::Fresh("asked (map fresh)".into());
    }
    let mut definition = Vec::new();
    if old.map_type != new.map_type {
        if !compatible_types(old.map_type, new.map_type) {
            return Action::Refuse(format!(
                "map type changed from {} to {}",
                old.map_type.name(),
                new.map_type.name()
            ));
        }
        definition.push(format!(
            "type {} → {}",
            old.map_type.name(),
            new.map_type.name()
        ));
    }
    if old.max_entries != new.max_entries {
        definition.push(format!(
            "max_entries {} → {}",
            old.max_entries, new.max_entries
        ));
    }
    if old.flags != new.flags {
        definition.push(format!("flags {:#x} → {:#x}", old.flags, new.flags));
    }
    if old.key_size != new.key_size {
        return Action::Refuse(format!(
            "key changed from {} to {} bytes",
            old.key_size, new.key_size
        ));
    }
    let (value, changes, counters) = match (old.btf, new.btf) {
        (Some((ob, ok, ov)), Some((nb, nk, nv))) => {
            if ok != 0 && nk != 0 {
                match convert::compile(ob, ok, nb, nk) {
                    Ok((c, ch)) if c.is_identity() && ch.is_empty() => {}
                    Ok(_) => return Action::Refuse("key changed its layout".into()),
                    Err(r) => return Action::Refuse(format!("key changed: {r}")),
                }
            }
            match convert::compile(ob, ov, nb, nv) {
                Ok((c, ch)) => {
                    let counters = convert::counters(ob, ov).zip(convert::counters(nb, nv));
                    (c, ch, counters)
                }
                Err(r) => return Action::Refuse(format!("value changed: {r}")),
            }
        }
        _ if old.value_size == new.value_size => (
            Converter::bytes(old.value_size as usize),
            Changes::default(),
            None,
        ),
        _ => {
            return Action::Refuse(format!(
                "value changed from {} to {} bytes and the map has no BTF to follow it",
                old.value_size, new.value_size
            ))
        }
    };
    if definition.is_empty() && changes.is_empty() && value.is_identity() {
        return Action::Reuse;
    }
    if !copyable(old.map_type) {
        return Action::Refuse(format!(
            "a {} map cannot be copied (map NAME fresh starts it empty)",
            old.map_type.name()
        ));
    }
    let mode = match (asked, &counters) {
        (Some(Mode::Sum), None) => {
            return Action::Refuse(
                "sum needs a value made of integers only (use copy or fresh)".into(),
            )
        }
        (Some(m), _) => m,
        (None, Some(_)) => Mode::Sum,
        (None, None) => Mode::Copy,
    };
    let (old_counters, new_counters) = match (mode, counters) {
        (Mode::Sum, Some((o, n))) => (o, n),
        _ => (Vec::new(), Vec::new()),
    };
    Action::Migrate(Box::new(Migration {
        mode,
        value,
        changes,
        definition,
        old_counters,
        new_counters,
        shrinks_array: is_array(new.map_type) && new.max_entries < old.max_entries,
    }))
}

/// The kernel keeps the first 15 bytes of a map's name: does `kernel_name`
/// name the map called `name`?
pub fn same_name(kernel_name: &str, name: &str) -> bool {
    let cut = name.len().min(15);
    name.is_char_boundary(cut) && kernel_name == &name[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfBuilder;

    struct Fixture {
        btf: Btf,
        key: TypeId,
        v1: TypeId,
        v2: TypeId,
        bad: TypeId,
    }

    fn fixture() -> Fixture {
        let mut b = BtfBuilder::new();
        let u32t = b.int("__u32", 4, false);
        let u64t = b.int("__u64", 8, false);
        let v1 = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("bytes", u64t, 64, 0)],
        );
        let v2 = b.structure(
            "counter",
            24,
            &[
                ("packets", u64t, 0, 0),
                ("bytes", u64t, 64, 0),
                ("drops", u64t, 128, 0),
            ],
        );
        let pair = b.structure("pair", 8, &[("lo", u32t, 0, 0), ("hi", u32t, 32, 0)]);
        let bad = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("bytes", pair, 64, 0)],
        );
        Fixture {
            btf: b.build(),
            key: u32t,
            v1,
            v2,
            bad,
        }
    }

    fn side<'a>(f: &'a Fixture, value: TypeId, size: u32, max: u32, t: MapType) -> MapSide<'a> {
        MapSide {
            name: "counters",
            map_type: t,
            key_size: 4,
            value_size: size,
            max_entries: max,
            flags: 0,
            btf: Some((&f.btf, f.key, value)),
            global_data: false,
        }
    }

    #[test]
    fn identical_map_is_reused() {
        let f = fixture();
        let a = side(&f, f.v1, 16, 256, MapType::Hash);
        assert_eq!(plan_map(Some(&a), &a, None), Action::Reuse);
    }

    #[test]
    fn value_gaining_a_member_migrates_with_sum_by_default() {
        let f = fixture();
        let old = side(&f, f.v1, 16, 256, MapType::Hash);
        let new = side(&f, f.v2, 24, 256, MapType::Hash);
        let Action::Migrate(m) = plan_map(Some(&old), &new, None) else {
            panic!("not a migration");
        };
        assert_eq!(m.mode, Mode::Sum);
        assert_eq!(m.changes.added, vec!["drops"]);
        assert_eq!(m.old_counters, vec![(0, 8), (8, 8)]);
        assert_eq!(m.new_counters, vec![(0, 8), (8, 8), (16, 8)]);
    }

    #[test]
    fn grown_max_entries_and_lru_switch_migrate() {
        let f = fixture();
        let old = side(&f, f.v1, 16, 256, MapType::Hash);
        let new = side(&f, f.v1, 16, 1024, MapType::LruHash);
        let Action::Migrate(m) = plan_map(Some(&old), &new, Some(Mode::Copy)) else {
            panic!("not a migration");
        };
        assert_eq!(m.mode, Mode::Copy);
        assert_eq!(
            m.definition,
            vec!["type hash → lru_hash", "max_entries 256 → 1024"]
        );
        assert!(m.changes.is_empty());
    }

    #[test]
    fn member_turned_into_struct_is_refused_unless_fresh() {
        let f = fixture();
        let old = side(&f, f.v1, 16, 256, MapType::Hash);
        let new = side(&f, f.bad, 16, 256, MapType::Hash);
        let Action::Refuse(why) = plan_map(Some(&old), &new, None) else {
            panic!("not refused");
        };
        assert!(why.contains("member 'bytes'"), "{why}");
        assert!(matches!(
            plan_map(Some(&old), &new, Some(Mode::Fresh)),
            Action::Fresh(_)
        ));
    }

    #[test]
    fn type_change_and_key_change_are_refused() {
        let f = fixture();
        let old = side(&f, f.v1, 16, 256, MapType::Hash);
        let arr = side(&f, f.v1, 16, 256, MapType::Array);
        assert!(matches!(
            plan_map(Some(&old), &arr, None),
            Action::Refuse(_)
        ));
        let mut wide_key = old;
        wide_key.key_size = 8;
        assert!(matches!(
            plan_map(Some(&old), &wide_key, None),
            Action::Refuse(_)
        ));
    }

    #[test]
    fn program_arrays_and_new_maps_are_fresh() {
        let f = fixture();
        let mut pa = side(&f, f.v1, 4, 4, MapType::ProgArray);
        pa.btf = None;
        assert!(matches!(plan_map(Some(&pa), &pa, None), Action::Fresh(_)));
        let new = side(&f, f.v1, 16, 256, MapType::Hash);
        assert!(matches!(plan_map(None, &new, None), Action::Fresh(_)));
    }

    #[test]
    fn kernel_names_match_the_first_15_bytes() {
        assert!(same_name("a_very_long_map", "a_very_long_map_name"));
        assert!(same_name("short", "short"));
        assert!(!same_name("short", "shorter"));
    }
}

//! Policy generations: a whole policy swapped in one step through a
//! map-in-map slot (`tcbpf map commit`).
//!
//! An outer `ARRAY_OF_MAPS` / `HASH_OF_MAPS` slot holds the inner policy
//! map in force. A commit plans first ([`plan_commit`], pure: the inner
//! template, the next generation number, every entry's size and key
//! checked), then [`build`]s a complete new inner map with the template's
//! attributes (type, sizes, flags, max_entries, BTF) filled by
//! UPDATE_BATCH, and [`publish`]es it with one update of the slot. Before
//! that update nothing visible changed (the new map is only held by its
//! descriptor); the update is the one atomic step.
//!
//! The generation lives in the inner map itself, under the all-ones key
//! of a hash ([`generation_key`]) or the last index of an array
//! ([`InnerTemplate::generation_key`]), as a native `u32` at the start of
//! the value: a
//! program reads the slot once per packet, so the policy and the
//! generation it sees come from the same map, and a published map is
//! never written again. What a packet can observe is exactly one whole
//! generation: the one in force when its program read the slot.
//!
//! The outer-map update returns only after an RCU grace period
//! (`maybe_wait_bpf_programs` in kernel/bpf/syscall.c): once
//! [`publish`] returns, no running (non-sleepable) program still uses
//! the replaced inner map, which the kernel frees when its last
//! reference (a descriptor, a pin) goes. Kept generations are pinned in a
//! directory of their own ([`Kept`]) so `previous` can publish one again.
//!
//! The template comes from the inner map in force, or, for an empty slot,
//! from the BTF definition of the outer map's `values` in the BTF of a
//! program that uses the outer map ([`template_from_users`]): the kernel
//! keeps no inner-map attributes it would tell, but a program's BTF
//! holds the object's `.maps` section.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::Error;
use crate::abi::MapType;
use crate::btf::{maps::BtfMapDef, Btf};
use crate::sys::{self, info::MapInfo, map::ElemSizes, MapFd};
use crate::value::typed::TypedError;

/// Bytes of the generation number at the start of the reserved entry's value.
const GENERATION_BYTES: usize = 4;

/// The reserved key that holds a generation: every byte 0xff.
pub fn generation_key(key_size: usize) -> Vec<u8> {
    vec![0xff; key_size]
}

/// The reserved entry's value for generation `g`: `g` as a native `u32`,
/// then zeros.
pub fn generation_value(value_size: usize, g: u32) -> Vec<u8> {
    let mut v = vec![0u8; value_size];
    v[..GENERATION_BYTES].copy_from_slice(&g.to_ne_bytes());
    v
}

/// The inner map attributes a new generation is created with, taken from
/// the inner map in force or from the BTF definition of the outer map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerTemplate {
    /// Kernel map type (hash or array: see [`InnerTemplate::from_info`]).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries, the reserved generation entry included.
    pub max_entries: u32,
    /// `BPF_F_*` flags (the outer map's template must match them).
    pub map_flags: u32,
    /// The kernel name the new maps get.
    pub name: String,
    /// BTF object id and key/value type ids (0 when the map has none).
    pub btf: (u32, u32, u32),
}

impl InnerTemplate {
    /// The template of an inner map: a plain hash map, or an array of at
    /// least two entries whose last index holds the generation (an LRU
    /// could evict the generation, per-CPU values would hold one
    /// generation per CPU), whose value holds a `u32`.
    pub fn from_info(info: &MapInfo) -> Result<InnerTemplate, Error> {
        InnerTemplate {
            map_type: info.map_type,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            map_flags: info.map_flags,
            name: info.name.clone(),
            btf: (info.btf_id, info.btf_key_type_id, info.btf_value_type_id),
        }
        .checked(&format!("the inner map {}", info.id))
    }

    /// The template of the inner definition `def` of a BTF map-in-map
    /// whose BTF is object `btf_id` (the type ids are that BTF's).
    pub fn from_btf_def(def: &BtfMapDef, btf_id: u32, name: &str) -> Result<InnerTemplate, Error> {
        let what = format!("the inner map definition of {name}");
        let t = InnerTemplate {
            map_type: def
                .map_type
                .ok_or_else(|| refused(format!("{what} has no map type")))?,
            key_size: def.key_size.unwrap_or(0),
            value_size: def.value_size.unwrap_or(0),
            max_entries: def.max_entries.unwrap_or(0),
            map_flags: def.map_flags.unwrap_or(0),
            name: name.chars().take(15).collect(),
            btf: match (def.key_type, def.value_type) {
                (Some(k), Some(v)) => (btf_id, k, v),
                _ => (0, 0, 0),
            },
        };
        t.checked(&what)
    }

    fn checked(self, what: &str) -> Result<InnerTemplate, Error> {
        let kind = MapType::from_u32(self.map_type);
        match kind {
            Some(MapType::Hash) => {}
            Some(MapType::Array) if self.key_size == 4 && self.max_entries >= 2 => {}
            Some(MapType::Array) => {
                return Err(refused(format!(
                    "{what} is an array of {} entries; a generation needs at least 2                      (its last index holds the generation)",
                    self.max_entries
                )))
            }
            _ => {
                return Err(refused(format!(
                    "{what} is a {} map; commit builds hash and array inner maps",
                    kind.map_or("unknown", |k| k.name())
                )))
            }
        }
        if (self.value_size as usize) < GENERATION_BYTES {
            return Err(refused(format!(
                "{what} has {}-byte values; the generation needs {GENERATION_BYTES}",
                self.value_size
            )));
        }
        Ok(self)
    }

    /// True for an array inner map.
    pub fn is_array(&self) -> bool {
        self.map_type == MapType::Array as u32
    }

    /// The key reserved for the generation: all ones for a hash, the last
    /// index for an array.
    pub fn generation_key(&self) -> Vec<u8> {
        if self.is_array() {
            (self.max_entries - 1).to_ne_bytes().to_vec()
        } else {
            generation_key(self.key_size as usize)
        }
    }
}

/// The template for `outer`'s slots from the BTF of a program that uses
/// `outer` (its `.maps` variable named as the map, `values` giving the
/// inner definition); `None` when no program using it carries one.
pub fn template_from_users(outer: &MapInfo) -> Result<Option<InnerTemplate>, Error> {
    let mut id = 0;
    while let Some(next) = sys::obj::next_prog_id(id)? {
        id = next;
        let Ok(prog) = sys::obj::prog_by_id(id) else {
            continue; // gone meanwhile
        };
        let info = sys::info::prog_info(&prog)?;
        if info.btf_id == 0 || !info.map_ids.contains(&outer.id) {
            continue;
        }
        let data = sys::info::btf_data(&sys::obj::btf_by_id(info.btf_id)?)?;
        let btf = Btf::parse(&data).map_err(Error::Btf)?;
        let Some((_, datasec)) = btf.datasec(".maps") else {
            continue;
        };
        for v in &datasec.vars {
            let Ok(name) = btf.ty(v.ty).and_then(|t| btf.str_at(t.name_off)) else {
                continue;
            };
            // The kernel keeps 15 bytes of a map's name.
            let same = name == outer.name
                || (outer.name.len() == 15 && name.starts_with(outer.name.as_str()));
            if !same {
                continue;
            }
            let def = crate::btf::maps::parse_map_def(&btf, v.ty, name).map_err(Error::Btf)?;
            if let Some(inner) = &def.inner {
                return InnerTemplate::from_btf_def(inner, info.btf_id, name).map(Some);
            }
        }
    }
    Ok(None)
}

fn refused(message: String) -> Error {
    Error::Typed(TypedError::new("", message))
}

/// What a commit will do, computed before the kernel is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPlan {
    /// The outer map's slot.
    pub slot: u32,
    /// The generation the new inner map carries.
    pub generation: u32,
    /// The generation in force now (0 for an inner map without one).
    pub replaces: u32,
    /// Distinct keys written (a key given twice counts once; the reserved
    /// generation entry not counted).
    pub entries: usize,
    /// The new inner map's attributes.
    pub template: InnerTemplate,
}

/// Plans a commit of `keys`/`values` (packed at the template's sizes) into
/// `slot`, replacing generation `in_force`; `newest` is the highest
/// generation known (in force or kept), so numbers never repeat. Checks
/// every entry's size, that no entry uses the reserved key and that the
/// entries fit. Pure.
pub fn plan_commit(
    template: InnerTemplate,
    slot: u32,
    in_force: u32,
    newest: u32,
    keys: &[u8],
    values: &[u8],
) -> Result<CommitPlan, Error> {
    let (ks, vs) = (template.key_size as usize, template.value_size as usize);
    let n = keys.len() / ks.max(1);
    if keys.len() != n * ks || values.len() != n * vs {
        return Err(refused(format!(
            "{} key bytes and {} value bytes are not whole entries of {ks} and {vs}",
            keys.len(),
            values.len()
        )));
    }
    let reserved = template.generation_key();
    let mut distinct = std::collections::HashSet::with_capacity(n);
    for (i, k) in keys.chunks_exact(ks.max(1)).enumerate() {
        if template.is_array() {
            let index = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
            if index >= template.max_entries - 1 {
                return Err(Error::Typed(TypedError::new(
                    format!("entry {}", i + 1),
                    format!(
                        "index {index}: the array's indexes are 0 to {} (its last, {}, \
                         holds the generation number)",
                        template.max_entries - 2,
                        template.max_entries - 1
                    ),
                )));
            }
        } else if k == reserved {
            return Err(Error::Typed(TypedError::new(
                format!("entry {}", i + 1),
                "the all-ones key is reserved for the generation number",
            )));
        }
        distinct.insert(k);
    }
    let n = distinct.len();
    if n >= template.max_entries as usize {
        return Err(refused(format!(
            "{n} entries and the generation do not fit an inner map of {} entries",
            template.max_entries
        )));
    }
    let generation = newest
        .max(in_force)
        .checked_add(1)
        .ok_or_else(|| refused("the generation number would pass 4294967295".to_string()))?;
    Ok(CommitPlan {
        slot,
        generation,
        replaces: in_force,
        entries: n,
        template,
    })
}

/// Creates the plan's inner map and fills it: the entries with
/// UPDATE_BATCH, then the generation entry. Nothing is published; on error
/// the new map goes with its descriptor.
pub fn build(plan: &CommitPlan, keys: &[u8], values: &[u8]) -> Result<MapFd, Error> {
    let t = &plan.template;
    let btf_fd = match t.btf {
        (0, _, _) | (_, 0, 0) => None,
        (id, _, _) => Some(sys::obj::btf_by_id(id)?),
    };
    let map = sys::map::create(&sys::map::MapCreate {
        map_type: t.map_type,
        key_size: t.key_size,
        value_size: t.value_size,
        max_entries: t.max_entries,
        map_flags: t.map_flags,
        name: &t.name,
        btf: btf_fd.as_ref().map(|fd| (fd.as_fd(), t.btf.1, t.btf.2)),
        ..Default::default()
    })?;
    let vs = t.value_size as usize;
    super::update_all(&map, keys, values)?;
    sys::map::update(
        &map,
        &t.generation_key(),
        &generation_value(vs, plan.generation),
        0,
    )?;
    Ok(map)
}

/// Publishes `inner` at `slot` of `outer`: one update of the slot. Returns
/// after the kernel's RCU grace period, when no running program still
/// uses the map it replaced.
pub fn publish(outer: impl AsFd, slot: u32, inner: impl AsFd) -> Result<(), Error> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&inner.as_fd()) as u32;
    sys::map::update(outer, &slot.to_ne_bytes(), &fd.to_ne_bytes(), 0)?;
    Ok(())
}

/// The inner map at a slot, opened, with its info and generation.
#[derive(Debug)]
pub struct InForce {
    /// A descriptor of the inner map.
    pub map: MapFd,
    /// Its kernel info.
    pub info: MapInfo,
    /// The generation it carries (0 when it has no generation entry).
    pub generation: u32,
}

/// The generation `inner` carries (0 without a generation entry).
pub fn generation_of(inner: impl AsFd, info: &MapInfo) -> Result<u32, Error> {
    let sizes = ElemSizes::from_info(info, info.kind().is_some_and(MapType::is_percpu))?;
    let Ok(template) = InnerTemplate::from_info(info) else {
        return Ok(0);
    };
    let mut v = vec![0u8; sizes.value()];
    match sys::map::lookup(inner, &template.generation_key(), &mut v, 0) {
        Ok(()) => Ok(u32::from_ne_bytes([v[0], v[1], v[2], v[3]])),
        Err(e) if e.is_not_found() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The inner map at `slot` of `outer` (a map-in-map with `u32` keys), or
/// `None` when the slot is empty.
pub fn in_force(outer: impl AsFd, slot: u32) -> Result<Option<InForce>, Error> {
    let mut id = [0u8; 4];
    match sys::map::lookup(outer, &slot.to_ne_bytes(), &mut id, 0) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let id = u32::from_ne_bytes(id);
    let map = sys::obj::map_by_id(id, sys::obj::open::RDONLY)?;
    let info = sys::info::map_info(&map)?;
    let generation = generation_of(&map, &info)?;
    Ok(Some(InForce {
        map,
        info,
        generation,
    }))
}

/// Checks that `outer` is a map-in-map whose slots are `u32` keys.
pub fn check_outer(info: &MapInfo) -> Result<(), Error> {
    if !matches!(
        info.kind(),
        Some(MapType::ArrayOfMaps | MapType::HashOfMaps)
    ) || info.key_size != 4
    {
        return Err(refused(format!(
            "map {} is a {} map with {}-byte keys; commit needs an array_of_maps or \
             hash_of_maps with u32 slots",
            info.id,
            info.type_name(),
            info.key_size
        )));
    }
    Ok(())
}

/// Generations kept for one slot: pins named by number in a bpffs
/// directory, `<outer pin>_generations/<slot>/<generation>` (bpffs refuses names with a dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The directory.
    pub dir: PathBuf,
}

impl Kept {
    /// The kept generations of `slot` of the outer map pinned at `outer_pin`.
    pub fn beside(outer_pin: &Path, slot: u32) -> Kept {
        let mut name = outer_pin.as_os_str().to_owned();
        name.push("_generations");
        Kept {
            dir: PathBuf::from(name).join(slot.to_string()),
        }
    }

    /// The kept generation numbers, newest first (none when the directory
    /// is not there).
    pub fn list(&self) -> Result<Vec<u32>, Error> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("read", e)),
        };
        let mut out: Vec<u32> = Vec::new();
        for e in rd {
            let e = e.map_err(|e| self.io("read", e))?;
            if let Some(g) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.push(g);
            }
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Pins `inner` as generation `g` (an existing pin of `g` is left).
    pub fn keep(&self, g: u32, inner: impl AsFd) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io("create", e))?;
        let path = self.path(g);
        match sys::obj::pin(inner, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens kept generation `g`.
    pub fn open(&self, g: u32) -> Result<MapFd, Error> {
        Ok(sys::obj::get_pinned_map(&self.path(g), 0)?)
    }

    /// Removes the pins of all but the `n` newest kept generations, and
    /// any of `in_force`; returns the generations still kept, newest first.
    pub fn prune(&self, n: usize, in_force: u32) -> Result<Vec<u32>, Error> {
        let mut left = Vec::new();
        for g in self.list()? {
            if g == in_force || left.len() >= n {
                std::fs::remove_file(self.path(g)).map_err(|e| self.io("unpin", e))?;
            } else {
                left.push(g);
            }
        }
        Ok(left)
    }

    fn path(&self, g: u32) -> PathBuf {
        self.dir.join(g.to_string())
    }

    fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::Sys(
            sys::Error::new("kept generations", e).on(format!("{what} {}", self.dir.display())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(max_entries: u32) -> InnerTemplate {
        InnerTemplate {
            map_type: MapType::Hash as u32,
            key_size: 4,
            value_size: 4,
            max_entries,
            map_flags: 0,
            name: "policy".into(),
            btf: (0, 0, 0),
        }
    }

    fn packed(keys: &[u32]) -> (Vec<u8>, Vec<u8>) {
        let k = keys.iter().flat_map(|k| k.to_ne_bytes()).collect();
        let v = keys.iter().flat_map(|_| 1u32.to_ne_bytes()).collect();
        (k, v)
    }

    #[test]
    fn an_array_template_reserves_its_last_index_for_the_generation() {
        let t = InnerTemplate {
            map_type: MapType::Array as u32,
            ..template(16)
        };
        assert_eq!(t.generation_key(), 15u32.to_ne_bytes());
        let (k, v) = packed(&[0, 14]);
        assert_eq!(plan_commit(t.clone(), 0, 0, 0, &k, &v).unwrap().entries, 2);
        for bad in [15, 16] {
            let (k, v) = packed(&[1, bad]);
            let e = plan_commit(t.clone(), 0, 0, 0, &k, &v)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("index {bad}")) && e.contains("0 to 14"),
                "{e}"
            );
        }
        let one = InnerTemplate {
            max_entries: 1,
            ..t.clone()
        };
        assert!(one.checked("x").is_err(), "no index to spare");
        let percpu = InnerTemplate {
            map_type: MapType::PercpuArray as u32,
            ..t
        };
        assert!(percpu.checked("x").is_err());
    }

    #[test]
    fn next_generation_is_one_above_the_newest_known() {
        let (k, v) = packed(&[1000, 1001]);
        let p = plan_commit(template(16), 0, 4, 9, &k, &v).unwrap();
        assert_eq!((p.generation, p.replaces, p.entries), (10, 4, 2));
        let p = plan_commit(template(16), 0, 0, 0, &k, &v).unwrap();
        assert_eq!(p.generation, 1);
        let (k, v) = packed(&[1000, 1001, 1000]);
        let p = plan_commit(template(3), 0, 0, 0, &k, &v).unwrap();
        assert_eq!(p.entries, 2, "a key given twice counts once");
    }

    #[test]
    fn the_reserved_key_is_refused_naming_the_entry() {
        let (k, v) = packed(&[7, u32::MAX]);
        let e = plan_commit(template(16), 0, 0, 0, &k, &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entry 2: the all-ones key is reserved for the generation number"
        );
    }

    #[test]
    fn entries_must_leave_room_for_the_generation() {
        let (k, v) = packed(&[1, 2, 3, 4]);
        assert!(plan_commit(template(5), 0, 0, 0, &k, &v).is_ok());
        let e = plan_commit(template(4), 0, 0, 0, &k, &v).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
    }

    #[test]
    fn torn_buffers_and_a_full_counter_are_refused() {
        let e = plan_commit(template(16), 0, 0, 0, &[0; 6], &[0; 4]).unwrap_err();
        assert!(e.to_string().contains("not whole entries"), "{e}");
        let (k, v) = packed(&[1]);
        assert!(plan_commit(template(16), 0, 0, u32::MAX, &k, &v).is_err());
    }

    fn info(t: MapType, value_size: u32) -> MapInfo {
        MapInfo {
            map_type: t as u32,
            id: 9,
            key_size: 4,
            value_size,
            max_entries: 64,
            map_flags: 1,
            name: "policy".into(),
            btf_id: 3,
            btf_key_type_id: 4,
            btf_value_type_id: 5,
            map_extra: 0,
        }
    }

    #[test]
    fn the_template_copies_a_hash_or_array_inner_map_and_refuses_the_rest() {
        let t = InnerTemplate::from_info(&info(MapType::Hash, 4)).unwrap();
        assert_eq!(
            (t.max_entries, t.map_flags, t.btf, t.name.as_str()),
            (64, 1, (3, 4, 5), "policy")
        );
        let t = InnerTemplate::from_info(&info(MapType::Array, 4)).unwrap();
        assert_eq!(
            (t.is_array(), t.generation_key()),
            (true, 63u32.to_ne_bytes().to_vec())
        );
        for kind in [MapType::LruHash, MapType::PercpuArray, MapType::PercpuHash] {
            let e = InnerTemplate::from_info(&info(kind, 4)).unwrap_err();
            assert!(
                e.to_string()
                    .contains("commit builds hash and array inner maps"),
                "{e}"
            );
        }
        let e = InnerTemplate::from_info(&info(MapType::Hash, 2)).unwrap_err();
        assert!(e.to_string().contains("2-byte values"), "{e}");
    }

    #[test]
    fn the_outer_map_must_hold_maps_under_u32_slots() {
        assert!(check_outer(&info(MapType::ArrayOfMaps, 4)).is_ok());
        assert!(check_outer(&info(MapType::HashOfMaps, 4)).is_ok());
        assert!(check_outer(&info(MapType::Hash, 4)).is_err());
    }

    #[test]
    fn generation_value_is_a_native_u32_then_zeros() {
        assert_eq!(generation_key(3), vec![0xff; 3]);
        let mut want = 7u32.to_ne_bytes().to_vec();
        want.extend([0; 4]);
        assert_eq!(generation_value(8, 7), want);
    }

    #[test]
    fn kept_generations_live_beside_the_outer_pin() {
        let k = Kept::beside(Path::new("/sys/fs/bpf/tc/globals/policy"), 2);
        assert_eq!(
            k.dir,
            PathBuf::from("/sys/fs/bpf/tc/globals/policy_generations/2")
        );
    }
}

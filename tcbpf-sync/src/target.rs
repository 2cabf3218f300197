//! One followed map: opened once, its own types read from the kernel
//! (`tcbpf::maps::types_of`, untyped integers/bytes when it has no BTF),
//! desired entries encoded from the policy's JSON by the library's typed
//! codec. Full re-reads go through `tcbpf::maps::apply`; deltas through
//! lookups and one batch update (see `write_puts`). A generation
//! ([`MapTarget::apply_generation`]) is encoded whole before anything is
//! written; into a map-in-map slot it is built and swapped in by
//! `tcbpf::maps::generation`. Nothing here talks to etcd.

use crate::args::Follow;
use crate::error::SyncError;
use std::collections::BTreeMap;
use tcbpf::abi::MapType;
use tcbpf::maps::{generation, ApplyReport};
use tcbpf::sys::{self, MapFd};
use tcbpf::value::typed::MapTypes;

/// The largest policy value (JSON text) followed: a larger one is rejected
/// for its key, and the rest applies. Generous for any map value (a
/// 64 KiB value as a JSON byte array is about 256 KiB) and below etcd's
/// default request limit (1.5 MiB), so that a few large values cannot make
/// every read pass the read limit.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// What a policy entry asks for one key: a value, or its absence, or
/// nothing the follower can apply (a key that does not unescape, a value
/// over [`MAX_VALUE_BYTES`]): counted as rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    Put(Vec<u8>),
    Del,
    Reject(String),
}

impl Desired {
    /// A put of `value`, or its rejection when it is over the bound.
    pub fn put(value: Vec<u8>) -> Desired {
        if value.len() > MAX_VALUE_BYTES {
            Desired::Reject(too_large(Some(value.len())))
        } else {
            Desired::Put(value)
        }
    }
}

/// Why a value over the bound is rejected (`None`: its size is unknown,
/// too large to read at all).
pub fn too_large(bytes: Option<usize>) -> String {
    match bytes {
        Some(n) => format!("value of {n} bytes, over the bound of {MAX_VALUE_BYTES} bytes"),
        None => format!(
            "value too large to read (over {} bytes; the bound is {MAX_VALUE_BYTES} bytes)",
            crate::snapshot::READ_MESSAGE_LIMIT
        ),
    }
}

/// Why a generation did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenFailure {
    /// The policy cannot go into this map (an entry that does not fit,
    /// too many entries): nothing was written.
    Refused(String),
    /// A kernel call failed: a plain map may hold part of it (a retry
    /// applies it again).
    Failed(String),
}

impl std::fmt::Display for GenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenFailure::Refused(m) | GenFailure::Failed(m) => f.write_str(m),
        }
    }
}

/// A map being kept equal to `PREFIX/maps/NAME/`.
pub struct MapTarget {
    /// The NAME the policy lives under.
    pub name: String,
    /// The kernel's map id (for the status).
    pub id: u32,
    fd: MapFd,
    types: MapTypes,
    is_array: bool,
    /// For a map-in-map target: the slot whose inner map holds the policy
    /// (the map followed is then the outer map; generations only).
    pub slot: Option<u32>,
    /// For a map-in-map target: the inner map template, taken at start
    /// (used while the slot is empty).
    template: Option<generation::InnerTemplate>,
    /// Entries the map holds as far as sync knows (set by the last full
    /// apply, moved by each delta).
    pub entries: usize,
}

/// Why an entry of the policy cannot go into the map (bad policy, not a
/// map failure): named by its etcd key part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub key: String,
    pub reason: String,
}

impl MapTarget {
    /// Opens the map `f` names, read-write, and reads its types.
    pub fn open(f: &Follow) -> Result<MapTarget, SyncError> {
        let what = f.map.to_string();
        let fd = f.map.open_with(sys::obj::open::RDWR)?;
        let info =
            sys::info::map_info(&fd).map_err(|e| SyncError::other(format!("map {what}: {e}")))?;
        let kind = info.kind();
        let outer = matches!(kind, Some(MapType::ArrayOfMaps | MapType::HashOfMaps));
        if !outer && kind.is_some_and(|k| k.holds_fds() || k.is_queue_or_stack()) {
            return Err(SyncError::usage(format!(
                "map {what}: a {} map has no key/value entries to follow",
                info.type_name()
            )));
        }
        if !outer && f.slot.is_some() {
            return Err(SyncError::usage(format!(
                "map {what}: 'slot' goes with a map-in-map (array_of_maps or hash_of_maps), \
                 not a {} map",
                info.type_name()
            )));
        }
        // A map-in-map's entries are its inner map's: typed by the one in
        // force, or for an empty slot by an empty one made (never
        // published) from the inner definition in a program's BTF.
        let (typed_by, template) = if outer {
            let slot = f.slot.unwrap_or(0);
            let bad =
                |e: tcbpf::maps::Error| SyncError::usage(format!("map {what} slot {slot}: {e}"));
            generation::check_outer(&info)
                .map_err(|e| SyncError::usage(format!("map {what}: {e}")))?;
            match generation::in_force(&fd, slot)
                .map_err(|e| SyncError::other(format!("map {what} slot {slot}: {e}")))?
            {
                Some(inner) => (
                    inner.info.clone(),
                    Some(generation::InnerTemplate::from_info(&inner.info).map_err(bad)?),
                ),
                None => {
                    let t = generation::template_from_users(&info)
                        .map_err(bad)?
                        .ok_or_else(|| {
                            SyncError::not_found(format!(
                                "map {what}: slot {slot} holds no inner map, and no program \
                                 using the map carries the BTF definition of its inner map"
                            ))
                        })?;
                    let plan =
                        generation::plan_commit(t.clone(), slot, 0, 0, &[], &[]).map_err(bad)?;
                    let empty = generation::build(&plan, &[], &[]).map_err(bad)?;
                    let empty_info = sys::info::map_info(&empty)
                        .map_err(|e| SyncError::other(format!("map {what}: {e}")))?;
                    (empty_info, Some(t))
                }
            }
        } else {
            (info.clone(), None)
        };
        let types = tcbpf::maps::types_or_untyped(&typed_by)
            .map_err(|e| SyncError::other(format!("map {what}: types: {e}")))?;
        let name = f.name.clone().unwrap_or_else(|| info.name.clone());
        crate::layout::check_name("map name", &name)?;
        Ok(MapTarget {
            name,
            id: info.id,
            fd,
            types,
            is_array: matches!(kind, Some(MapType::Array | MapType::PercpuArray)),
            slot: outer.then(|| f.slot.unwrap_or(0)),
            template,
            entries: 0,
        })
    }

    /// The map's types as published for writers to check against.
    pub fn types_json(&self) -> String {
        crate::types::describe(&self.types).to_string()
    }

    /// Encodes one policy entry: the key's JSON text and the value's JSON.
    pub fn encode(&self, key_json: &str, value_json: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let k: serde_json::Value =
            serde_json::from_str(key_json).map_err(|e| format!("key is not JSON: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(value_json).map_err(|e| format!("value is not JSON: {e}"))?;
        let key = self.types.encode_key(&k).map_err(|e| e.to_string())?;
        let value = self
            .types
            .encode_values(&v, false)
            .map_err(|e| e.to_string())?;
        Ok((key, value))
    }

    /// Encodes a key alone (for deletes).
    pub fn encode_key(&self, key_json: &str) -> Result<Vec<u8>, String> {
        let k: serde_json::Value =
            serde_json::from_str(key_json).map_err(|e| format!("key is not JSON: {e}"))?;
        self.types.encode_key(&k).map_err(|e| e.to_string())
    }

    /// For a map-in-map target, the generation its slot's inner map
    /// carries (0: none, or an empty slot).
    pub fn slot_generation(&self) -> Option<u64> {
        let slot = self.slot?;
        Some(
            generation::in_force(&self.fd, slot)
                .ok()
                .flatten()
                .map_or(0, |f| u64::from(f.generation)),
        )
    }

    /// Makes the map hold generation `g`, all or nothing: every entry is
    /// encoded first and the first that does not fit refuses the whole
    /// generation, nothing written. A map-in-map slot gets a new inner map
    /// built and published in one update (the inner map carries `g` under
    /// its reserved key); a plain map is diff-applied, and holds `g` only
    /// when this returns `Ok`.
    pub fn apply_generation(
        &mut self,
        g: u64,
        entries: &crate::generation::Entries,
    ) -> Result<ApplyReport, GenFailure> {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut packed = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let (key, value) = self
                .encode(k, v.as_bytes())
                .map_err(|reason| GenFailure::Refused(format!("key {k}: {reason}")))?;
            if self.slot.is_some() {
                keys.extend_from_slice(&key);
                values.extend_from_slice(&value);
            } else {
                packed.push((key, value));
            }
        }
        let Some(slot) = self.slot else {
            let removed = if self.is_array {
                0
            } else {
                self.remove_absent(&packed).map_err(GenFailure::Failed)?
            };
            let mut report = tcbpf::maps::apply(&self.fd, &packed, true)
                .map_err(|e| GenFailure::Failed(e.to_string()))?;
            report.removed += removed;
            self.entries = entries.len();
            return Ok(report);
        };
        let g32 = u32::try_from(g)
            .map_err(|_| GenFailure::Refused(format!("generation {g} passes 4294967295")))?;
        let failed = |e: tcbpf::maps::Error| GenFailure::Failed(e.to_string());
        let (template, in_force) = match generation::in_force(&self.fd, slot).map_err(failed)? {
            Some(c) => (
                generation::InnerTemplate::from_info(&c.info).map_err(failed)?,
                c.generation,
            ),
            None => (
                self.template
                    .clone()
                    .ok_or_else(|| GenFailure::Failed(format!("slot {slot} holds no inner map")))?,
                0,
            ),
        };
        // Too many entries, or the reserved key: the policy's fault.
        let mut plan = generation::plan_commit(template, slot, in_force, 0, &keys, &values)
            .map_err(|e| GenFailure::Refused(e.to_string()))?;
        plan.generation = g32;
        let inner = generation::build(&plan, &keys, &values).map_err(failed)?;
        generation::publish(&self.fd, slot, &inner).map_err(failed)?;
        self.entries = plan.entries;
        Ok(ApplyReport {
            added: plan.entries,
            ..ApplyReport::default()
        })
    }

    /// Makes the map hold exactly `policy` ((revision, key JSON, what it
    /// asks) in revision order: of two spellings of one key, the later
    /// wins); entries rejected already or that do not encode are left out
    /// and returned as rejected.
    pub fn replace_all(
        &mut self,
        policy: &[(i64, String, Desired)],
    ) -> Result<(ApplyReport, Vec<Rejected>), String> {
        let mut entries = Vec::with_capacity(policy.len());
        let mut rejected = Vec::new();
        for (_, k, d) in policy {
            let encoded = match d {
                Desired::Put(v) => self.encode(k, v),
                Desired::Reject(reason) => Err(reason.clone()),
                Desired::Del => continue,
            };
            match encoded {
                Ok(e) => entries.push(e),
                Err(reason) => rejected.push(Rejected {
                    key: k.clone(),
                    reason,
                }),
            }
        }
        // Deletes first: a full map must make room before new keys go in
        // (tcbpf::maps::apply writes before it deletes).
        let removed = if self.is_array {
            0
        } else {
            self.remove_absent(&entries)?
        };
        let mut report = tcbpf::maps::apply(&self.fd, &entries, true).map_err(|e| e.to_string())?;
        report.removed += removed;
        self.entries = report.added + report.changed + report.unchanged;
        if !self.is_array {
            // Distinct keys: a key spelled twice in the policy counts once.
            self.entries = self.entries.min(entries.len());
        }
        Ok((report, rejected))
    }

    /// Writes the puts of a delta: each key looked up (new, changed or
    /// unchanged), the new and changed ones in one batch update. Not
    /// `tcbpf::maps::apply`, which reads the whole map to diff: per delta
    /// of 128 entries into a map of 100,000 that made convergence
    /// quadratic.
    fn write_puts(
        &self,
        puts: &[(Vec<u8>, Vec<u8>)],
        removed: usize,
    ) -> Result<ApplyReport, String> {
        let mut report = ApplyReport {
            removed,
            ..ApplyReport::default()
        };
        let sizes = sys::map::ElemSizes::of(&self.fd).map_err(|e| e.to_string())?;
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        let mut old = vec![0u8; self.types.value_buf_size()];
        // A key given twice: the last value wins (the map is a set of keys).
        let mut last: std::collections::HashMap<&[u8], &[u8]> = std::collections::HashMap::new();
        for (k, v) in puts {
            last.insert(k, v);
        }
        for (k, v) in last {
            match sys::map::lookup(&self.fd, k, &mut old, 0) {
                Ok(()) if old == v => {
                    report.unchanged += 1;
                    continue;
                }
                Ok(()) => report.changed += 1,
                Err(e) if e.is_not_found() => report.added += 1,
                Err(e) => return Err(e.to_string()),
            }
            keys.extend_from_slice(k);
            values.extend_from_slice(v);
        }
        if keys.is_empty() {
            return Ok(report);
        }
        match sys::map::update_batch(&self.fd, &sizes, &keys, &values, 0) {
            Ok(_) => Ok(report),
            Err(p) if p.done == 0 && sys::map::is_unsupported(&p.error) => {
                let (ks, vs) = (sizes.key(), sizes.value());
                for (k, v) in keys.chunks(ks).zip(values.chunks(vs)) {
                    sys::map::update(&self.fd, k, v, 0).map_err(|e| e.to_string())?;
                }
                Ok(report)
            }
            Err(p) => Err(format!(
                "{} ({} of {} written)",
                p.error,
                p.done,
                keys.len() / sizes.key()
            )),
        }
    }

    /// Deletes the keys of the map that `entries` does not name.
    fn remove_absent(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<usize, String> {
        let wanted: std::collections::HashSet<&[u8]> =
            entries.iter().map(|(k, _)| k.as_slice()).collect();
        let mut removed = 0;
        for (k, _) in tcbpf::maps::read_all(&self.fd).map_err(|e| e.to_string())? {
            if wanted.contains(k.as_slice()) {
                continue;
            }
            match sys::map::delete(&self.fd, &k) {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(removed)
    }

    /// Applies the changes of one or more revisions: deletes (zeroed
    /// values in array maps), then puts by batch update. Returns the
    /// report and the rejected entries; an `Err` means the map may hold
    /// part of the change.
    pub fn apply_delta(
        &mut self,
        changes: &BTreeMap<String, Desired>,
    ) -> Result<(ApplyReport, Vec<Rejected>), String> {
        let mut puts = Vec::new();
        let mut dels = Vec::new();
        let mut rejected = Vec::new();
        for (k, d) in changes {
            let r = match d {
                Desired::Put(v) => self.encode(k, v).map(|e| puts.push(e)),
                Desired::Del => self.encode_key(k).map(|e| dels.push(e)),
                Desired::Reject(reason) => Err(reason.clone()),
            };
            if let Err(reason) = r {
                rejected.push(Rejected {
                    key: k.clone(),
                    reason,
                });
            }
        }
        // Deletes first, so that a full map has room for the new keys.
        let zero = vec![0u8; self.types.value_buf_size()];
        let mut removed = 0;
        for key in &dels {
            let r = if self.is_array {
                sys::map::update(&self.fd, key, &zero, 0)
            } else {
                sys::map::delete(&self.fd, key)
            };
            match r {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(format!(
                        "{e} (after {removed} of {} deletes of this change)",
                        dels.len()
                    ))
                }
            }
        }
        let report = self
            .write_puts(&puts, removed)
            .map_err(|e| format!("{e} (after the {removed} deletes of this change)"))?;
        if !self.is_array {
            self.entries = (self.entries + report.added).saturating_sub(report.removed);
        }
        Ok((report, rejected))
    }
}

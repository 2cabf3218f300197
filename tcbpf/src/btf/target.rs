//! `TargetBtf`: the BTF relocations are resolved against (the kernel's
//! vmlinux, module BTF split on it), kept as the raw blob and decoded one
//! type at a time. vmlinux holds ~150k types of which CO-RE touches a few
//! hundred, so parsing only checks the blob (the same checks as
//! `Btf::parse`) and records where each type starts; names are matched
//! only for the essential names asked for. Pure: the caller passes the
//! bytes (read or mapped); no syscalls, no files.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::error::{Error, Result};
use super::parse::{parse_type, Reader, Sections};
use super::type_set::essential_bytes;
use super::types::{Type, TypeId};
use super::view::TypeView;

/// The bytes of a blob: owned, or mapped by the caller.
pub type BlobBytes = Box<dyn AsRef<[u8]> + Send + Sync>;

/// A checked BTF blob whose types are decoded on demand.
pub struct TargetBtf {
    data: BlobBytes,
    sections: Sections,
    base: Option<Arc<TargetBtf>>,
    first_id: TypeId,
    first_str_off: u32,
    /// Own type ids by essential name, for the names indexed so far.
    by_essential_name: Mutex<HashMap<Vec<u8>, Vec<TypeId>>>,
}

impl fmt::Debug for TargetBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetBtf")
            .field("bytes", &self.bytes().len())
            .field("first_id", &self.first_id)
            .field("end_id", &self.end_id())
            .field("split", &self.base.is_some())
            .finish()
    }
}

impl TargetBtf {
    /// Checks a standalone BTF blob (vmlinux); fails exactly where
    /// `Btf::parse` would, with the same error.
    pub fn parse(data: BlobBytes) -> Result<TargetBtf> {
        TargetBtf::new(data, None)
    }

    /// Checks a split BTF blob (module BTF) on top of `base`.
    pub fn parse_split(data: BlobBytes, base: Arc<TargetBtf>) -> Result<TargetBtf> {
        TargetBtf::new(data, Some(base))
    }

    fn new(data: BlobBytes, base: Option<Arc<TargetBtf>>) -> Result<TargetBtf> {
        let first_id = base.as_ref().map_or(1, |b| b.end_id());
        let first_str_off = base.as_ref().map_or(0, |b| b.end_str_off());
        let sections = Sections::parse((*data).as_ref(), base.is_some(), first_id, first_str_off)?;
        Ok(TargetBtf {
            data,
            sections,
            base,
            first_id,
            first_str_off,
            by_essential_name: Mutex::new(HashMap::new()),
        })
    }

    fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// The base BTF of a split BTF.
    pub fn base(&self) -> Option<&Arc<TargetBtf>> {
        self.base.as_ref()
    }

    /// The first id this BTF defines (1 standalone, after the base's when split).
    pub fn first_id(&self) -> TypeId {
        self.first_id
    }

    /// One past the last valid id (counting the base).
    pub fn end_id(&self) -> TypeId {
        self.first_id + self.sections.offsets.len() as u32
    }

    fn end_str_off(&self) -> u32 {
        self.first_str_off + self.sections.str_len as u32
    }

    /// The string section from offset `off` (base strings first when
    /// split) to its end: the string at `off`, its NUL and what follows.
    fn str_tail(&self, off: u32) -> Option<&[u8]> {
        if off < self.first_str_off {
            return self.base.as_ref()?.str_tail(off);
        }
        let rel = (off - self.first_str_off) as usize;
        self.sections.strings(self.bytes()).get(rel..)
    }

    /// The essential-name index; a lock poisoned by a panic elsewhere
    /// still holds a consistent map (entries are inserted whole).
    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Vec<TypeId>>> {
        self.by_essential_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Indexes own types by essential name for every name of `names` not
    /// indexed yet, in one pass over the types. Lookups of names indexed
    /// here cost a hash lookup; others index their name on first use.
    pub fn index_essential_names<'n>(&self, names: impl IntoIterator<Item = &'n str>) {
        let mut index = self.index();
        let mut wanted: Vec<&[u8]> = names
            .into_iter()
            .map(str::as_bytes)
            .filter(|n| !n.is_empty() && !index.contains_key(*n))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return;
        }
        let mut first_bytes = [false; 256];
        for w in &wanted {
            first_bytes[w[0] as usize] = true;
        }
        let mut found: Vec<Vec<TypeId>> = vec![Vec::new(); wanted.len()];
        let types = self.sections.types(self.bytes());
        for (i, &off) in self.sections.offsets.iter().enumerate() {
            let off = off as usize;
            let Some(h) = types.get(off..off + 8) else {
                continue;
            };
            let name_off = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if name_off == 0 || !is_candidate_kind(h[7] as u32 & 0x1f) {
                continue;
            }
            let Some(rest) = self.str_tail(name_off) else {
                continue;
            };
            if !rest.first().is_some_and(|&b| first_bytes[b as usize])
                || !wanted.iter().any(|w| rest.starts_with(w))
            {
                continue;
            }
            let Some(end) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            if let Ok(k) = wanted.binary_search(&essential_bytes(&rest[..end])) {
                found[k].push(self.first_id + i as u32);
            }
        }
        for (w, ids) in wanted.into_iter().zip(found) {
            index.insert(w.to_vec(), ids);
        }
    }
}

impl TargetBtf {
    /// Own types of kind `kind` whose name is one of `names`, in one pass
    /// over the types (for kfuncs and kernel variables, which the
    /// essential-name index leaves out): (name, id) pairs, in id order.
    pub fn find_named(&self, names: &[&str], kind: super::types::BtfKind) -> Vec<(String, TypeId)> {
        let mut out = Vec::new();
        if names.is_empty() {
            return out;
        }
        let types = self.sections.types(self.bytes());
        for (i, &off) in self.sections.offsets.iter().enumerate() {
            let off = off as usize;
            let Some(h) = types.get(off..off + 8) else {
                continue;
            };
            let name_off = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if name_off == 0 || u32::from(h[7] & 0x1f) != kind as u32 {
                continue;
            }
            let Some(rest) = self.str_tail(name_off) else {
                continue;
            };
            let Some(end) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            if let Some(n) = names.iter().find(|n| n.as_bytes() == &rest[..end]) {
                out.push((n.to_string(), self.first_id + i as u32));
            }
        }
        out
    }
}

/// Kinds that can be CO-RE candidates (not FUNC, VAR, DATASEC, DECL_TAG).
fn is_candidate_kind(kind: u32) -> bool {
    !matches!(kind, 12 | 14 | 15 | 17)
}

impl TypeView for TargetBtf {
    fn ty(&self, id: TypeId) -> Result<Cow<'_, Type>> {
        if id < self.first_id {
            if let Some(b) = &self.base {
                return b.ty(id);
            }
        }
        if id == 0 {
            return Ok(Cow::Owned(Type {
                name_off: 0,
                kind: super::types::Kind::Void,
            }));
        }
        let start = id
            .checked_sub(self.first_id)
            .and_then(|i| self.sections.offsets.get(i as usize))
            .ok_or(Error::TypeIdOutOfRange {
                id,
                end: self.end_id(),
            })?;
        let start = *start as usize;
        let types = self.sections.types(self.bytes());
        let rest = types.get(start..).ok_or(Error::TypeIdOutOfRange {
            id,
            end: self.end_id(),
        })?;
        let mut r = Reader::new(rest, self.sections.type_start + start);
        parse_type(&mut r, id).map(Cow::Owned)
    }

    fn str_at(&self, off: u32) -> Result<&str> {
        let tail = self.str_tail(off).ok_or(Error::BadString(off))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::BadString(off))?;
        std::str::from_utf8(&tail[..end]).map_err(|_| Error::BadString(off))
    }

    fn own_ids_by_essential_name(&self, essential: &str) -> Vec<TypeId> {
        self.index_essential_names([essential]);
        self.index()
            .get(essential.as_bytes())
            .cloned()
            .unwrap_or_default()
    }
}

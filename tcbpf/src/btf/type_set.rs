//! `Btf`: a parsed set of types and strings, standalone or split on top of a
//! base (module BTF over vmlinux). Ids and string offsets of a split BTF
//! continue after its base's, exactly as the kernel numbers them.

use std::sync::{Arc, OnceLock};

use super::error::{Error, Result};
use super::strings::Strings;
use super::types::{Kind, Type, TypeId};

static VOID: Type = Type {
    name_off: 0,
    kind: Kind::Void,
};

/// A BTF type set: types, strings and, for split BTF, the base it extends.
#[derive(Debug, Clone)]
pub struct Btf {
    pub(crate) types: Vec<Type>,
    pub(crate) strings: Strings,
    pub(crate) base: Option<Arc<Btf>>,
    /// Header flags, kept for round trips.
    pub(crate) flags: u8,
    /// Own named types by hash of their name, built on first use.
    by_name: OnceLock<NameIndex>,
    /// Own named types by hash of their essential name (`___flavor` stripped).
    by_essential_name: OnceLock<NameIndex>,
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new()
    }
}

impl Btf {
    /// An empty standalone BTF (only `void` and the empty string).
    pub fn new() -> Self {
        Btf::from_parts(Vec::new(), Strings::new(), None, 0)
    }

    /// An empty split BTF on top of `base`.
    pub fn new_split(base: Arc<Btf>) -> Self {
        Btf::from_parts(
            Vec::new(),
            Strings::from_bytes(Vec::new()).unwrap_or_default(),
            Some(base),
            0,
        )
    }

    pub(crate) fn from_parts(
        types: Vec<Type>,
        strings: Strings,
        base: Option<Arc<Btf>>,
        flags: u8,
    ) -> Self {
        Btf {
            types,
            strings,
            base,
            flags,
            by_name: OnceLock::new(),
            by_essential_name: OnceLock::new(),
        }
    }

    /// The base BTF of a split BTF.
    pub fn base(&self) -> Option<&Arc<Btf>> {
        self.base.as_ref()
    }

    /// The first id this BTF defines (1 standalone, after the base's when split).
    pub fn first_id(&self) -> TypeId {
        match &self.base {
            Some(b) => b.end_id(),
            None => 1,
        }
    }

    /// One past the last valid id (counting the base).
    pub fn end_id(&self) -> TypeId {
        self.first_id() + self.types.len() as u32
    }

    /// Offset where this BTF's own strings start (the base's length when split).
    pub fn first_str_off(&self) -> u32 {
        match &self.base {
            Some(b) => b.end_str_off(),
            None => 0,
        }
    }

    pub(crate) fn end_str_off(&self) -> u32 {
        self.first_str_off() + self.strings.len()
    }

    /// The types this BTF defines itself, with their ids.
    pub fn own_types(&self) -> impl Iterator<Item = (TypeId, &Type)> {
        let first = self.first_id();
        self.types
            .iter()
            .enumerate()
            .map(move |(i, t)| (first + i as u32, t))
    }

    /// All types, base first, with their ids (void excluded).
    pub fn all_types(&self) -> Box<dyn Iterator<Item = (TypeId, &Type)> + '_> {
        match &self.base {
            Some(b) => Box::new(b.all_types().chain(self.own_types())),
            None => Box::new(self.own_types()),
        }
    }

    /// The type of `id` (0 is void).
    pub fn ty(&self, id: TypeId) -> Result<&Type> {
        if id == 0 {
            return Ok(&VOID);
        }
        let first = self.first_id();
        if id < first {
            if let Some(b) = &self.base {
                return b.ty(id);
            }
        }
        self.types
            .get((id - first) as usize)
            .ok_or(Error::TypeIdOutOfRange {
                id,
                end: self.end_id(),
            })
    }

    /// Mutable access to a type this BTF defines itself (not the base's).
    pub fn ty_mut(&mut self, id: TypeId) -> Result<&mut Type> {
        let first = self.first_id();
        let end = self.end_id();
        if id < first {
            return Err(Error::invalid(format!(
                "BTF type [{id}] belongs to the base BTF and cannot be changed"
            )));
        }
        self.by_name = OnceLock::new();
        self.by_essential_name = OnceLock::new();
        self.types
            .get_mut((id - first) as usize)
            .ok_or(Error::TypeIdOutOfRange { id, end })
    }

    /// The string at offset `off` (base strings first when split).
    pub fn str_at(&self, off: u32) -> Result<&str> {
        let first = self.first_str_off();
        if off < first {
            if let Some(b) = &self.base {
                return b.str_at(off);
            }
        }
        self.strings
            .get(off - first)
            .map_err(|_| Error::BadString(off))
    }

    /// The name of type `id` ("" when anonymous).
    pub fn name(&self, id: TypeId) -> Result<&str> {
        let t = self.ty(id)?;
        self.str_at(t.name_off)
    }

    /// Adds a string to this BTF's own strings and returns its offset.
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            if self.base.is_some() {
                return 0;
            }
            if self.strings.is_empty() {
                self.strings = Strings::new();
            }
            return 0;
        }
        self.first_str_off() + self.strings.add(s)
    }

    /// Appends a type and returns its id.
    pub fn add_type(&mut self, t: Type) -> TypeId {
        self.types.push(t);
        self.by_name = OnceLock::new();
        self.by_essential_name = OnceLock::new();
        self.end_id() - 1
    }

    /// The bytes of the string at `off` (base strings first), unchecked UTF-8.
    pub(crate) fn str_bytes_at(&self, off: u32) -> Option<&[u8]> {
        let first = self.first_str_off();
        if off < first {
            return self.base.as_ref()?.str_bytes_at(off);
        }
        self.strings.get_bytes(off - first)
    }

    fn build_index(&self, key: fn(&[u8]) -> &[u8], types_only: bool) -> NameIndex {
        let mut entries = Vec::with_capacity(self.types.len());
        for (id, t) in self.own_types() {
            if t.name_off == 0 {
                continue;
            }
            // Functions, variables, sections and tags are never CO-RE candidates.
            if types_only
                && matches!(
                    t.kind,
                    Kind::Func(_) | Kind::Var(_) | Kind::Datasec(_) | Kind::DeclTag(_)
                )
            {
                continue;
            }
            if let Some(n) = self.str_bytes_at(t.name_off) {
                entries.push((fnv1a(key(n)), id));
            }
        }
        entries.sort_unstable();
        NameIndex(entries)
    }

    /// Ids of this BTF's own types whose `key(name)` is `wanted`.
    fn lookup_index(
        &self,
        index: &NameIndex,
        wanted: &[u8],
        key: fn(&[u8]) -> &[u8],
    ) -> Vec<TypeId> {
        let h = fnv1a(wanted);
        let start = index.0.partition_point(|&(x, _)| x < h);
        index.0[start..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .map(|&(_, id)| id)
            .filter(|&id| {
                self.ty(id)
                    .ok()
                    .and_then(|t| self.str_bytes_at(t.name_off))
                    .is_some_and(|n| key(n) == wanted)
            })
            .collect()
    }

    /// Ids of this BTF's own types named exactly `name`.
    pub(crate) fn own_ids_named(&self, name: &str) -> Vec<TypeId> {
        let index = self.by_name.get_or_init(|| self.build_index(|n| n, false));
        self.lookup_index(index, name.as_bytes(), |n| n)
    }

    /// Ids of this BTF's own types whose essential name (the name without
    /// a `___flavor` suffix) is `essential` (functions, variables, data
    /// sections and declaration tags excluded: they are never CO-RE roots).
    pub fn own_ids_by_essential_name(&self, essential: &str) -> Vec<TypeId> {
        let index = self
            .by_essential_name
            .get_or_init(|| self.build_index(essential_bytes, true));
        self.lookup_index(index, essential.as_bytes(), essential_bytes)
    }

    /// Ids of all types (base included) named exactly `name`.
    pub fn ids_named(&self, name: &str) -> Vec<TypeId> {
        let mut ids = match &self.base {
            Some(b) => b.ids_named(name),
            None => Vec::new(),
        };
        ids.extend(self.own_ids_named(name));
        ids
    }
}

/// Sorted (name hash, id) pairs; lookups confirm the name itself.
#[derive(Debug, Clone, Default)]
struct NameIndex(Vec<(u64, TypeId)>);

/// FNV-1a: a fast, stable hash for the name index.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `essential_name` on raw bytes.
pub(crate) fn essential_bytes(b: &[u8]) -> &[u8] {
    // The last "X___Y": scan backwards for the middle underscore of "___".
    let n = b.len();
    let mut j = n.saturating_sub(3);
    while j >= 2 {
        if b[j] == b'_' && b[j - 1] == b'_' && b[j + 1] == b'_' {
            let (x, y) = (j - 2, j + 2);
            if y < n && b[x] != b'_' && b[y] != b'_' {
                return &b[..x + 1];
            }
        }
        j -= 1;
    }
    b
}

/// The name without its `___flavor` suffix, as CO-RE matches names: the
/// cut is at the last `X___Y` where X and Y are not underscores.
pub fn essential_name(name: &str) -> &str {
    let len = essential_bytes(name.as_bytes()).len();
    &name[..len]
}

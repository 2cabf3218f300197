//! Reading a live map for statistics, on the library's typed map access:
//! each key decoded (`tcbpf::maps::types_or_untyped`) and split into
//! labelled parts, each value's per-CPU copies summed (`typed::sum_values`)
//! and cut into its integer fields (`typed::int_fields`). Entries stream
//! through the library's batch walker (`tcbpf::front::Map::for_each_batch`)
//! to the caller one at a time: a scrape of a million entries must not
//! hold them all (`maps::read_all` returns them all at once, which is
//! right for diff-apply, not here).
//!
//! Read-only: nothing here writes to a map. Formatting for Prometheus or
//! the terminal is the callers' job.

use crate::keys::{key_parts, KeyPart};
use tcbpf::abi::MapType;
use tcbpf::btf::fmt::BtfValue;
use tcbpf::front::Map;
use tcbpf::maps;
use tcbpf::sys::{self, info::MapInfo, map::ElemSizes};
use tcbpf::value::typed::{int_fields, sum_values, MapTypes};
use tcbpf::value::{FieldType, Layout};

/// A map opened for statistics.
pub struct StatMap {
    /// The kernel's info.
    pub info: MapInfo,
    map: Map,
    types: MapTypes,
    sizes: ElemSizes,
    fields: Vec<String>,
    key_layout: Option<Layout>,
    value_layout: Option<Layout>,
}

/// Why a map cannot be read for statistics.
#[derive(Debug)]
pub enum ReadError {
    /// The map type holds no countable values (program arrays, ring buffers…).
    Unsupported(String),
    /// The kernel (or the map's BTF) said no.
    Maps(maps::Error),
    /// The map's info could not be read.
    Open(tcbpf::front::Error),
}

impl ReadError {
    /// True when the map is gone (ENOENT).
    pub fn is_not_found(&self) -> bool {
        match self {
            ReadError::Maps(maps::Error::Sys(e)) => e.is_not_found(),
            ReadError::Open(e) => e.kind() == tcbpf::ErrorKind::NotFound,
            _ => false,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unsupported(m) => f.write_str(m),
            ReadError::Maps(e) => write!(f, "{e}"),
            ReadError::Open(e) => write!(f, "{e}"),
        }
    }
}

impl From<sys::Error> for ReadError {
    fn from(e: sys::Error) -> Self {
        ReadError::Maps(maps::Error::Sys(e))
    }
}

impl From<tcbpf::front::Error> for ReadError {
    fn from(e: tcbpf::front::Error) -> Self {
        ReadError::Open(e)
    }
}

impl From<maps::Error> for ReadError {
    fn from(e: maps::Error) -> Self {
        ReadError::Maps(e)
    }
}

fn readable(t: Option<MapType>) -> bool {
    use MapType::*;
    matches!(
        t,
        Some(Hash | Array | PercpuHash | PercpuArray | LruHash | LruPercpuHash | LpmTrie)
    )
}

impl StatMap {
    /// Prepares `map` for reading: its typed codec.
    pub fn new(map: Map) -> Result<StatMap, ReadError> {
        let info = map.info.clone();
        if !readable(info.kind()) {
            return Err(ReadError::Unsupported(format!(
                "map '{}' (id {}) is a {} map: no counters to read",
                info.name,
                info.id,
                info.type_name()
            )));
        }
        let types = maps::types_or_untyped(&info)?;
        let sizes = map.sizes;
        let zero = vec![0u8; info.value_size as usize];
        let fields = types
            .decode_value(&zero)
            .map(|v| int_fields(&v).into_iter().map(|(p, _)| p).collect())
            .unwrap_or_default();
        Ok(StatMap {
            map,
            info,
            types,
            sizes,
            fields,
            key_layout: None,
            value_layout: None,
        })
    }

    /// Reads keys and values by the map helper's TYPES words instead of
    /// BTF (for maps without BTF, or to see them another way). Value types
    /// must be integers; their fields are named `value` (one) or `v0`, `v1`….
    pub fn with_types(
        mut self,
        key: Option<&[FieldType]>,
        value: Option<&[FieldType]>,
    ) -> Result<StatMap, String> {
        if let Some(k) = key {
            let l =
                Layout::new(k, self.info.key_size as usize, "key").map_err(|e| e.to_string())?;
            self.key_layout = Some(l);
        }
        if let Some(v) = value {
            let l = Layout::new(v, self.info.value_size as usize, "value")
                .map_err(|e| e.to_string())?;
            if !l.is_integer() {
                return Err("value TYPES must be integer types to count".into());
            }
            self.fields = if v.len() == 1 {
                vec![String::new()]
            } else {
                (0..v.len()).map(|i| format!("v{i}")).collect()
            };
            self.value_layout = Some(l);
        }
        Ok(self)
    }

    fn key_by_layout(l: &Layout, key: &[u8]) -> Vec<(String, KeyPart)> {
        let many = l.fields().len() > 1;
        let mut at = 0;
        let mut parts = Vec::new();
        for (i, &(ty, size)) in l.fields().iter().enumerate() {
            let mut text = Vec::new();
            if let Ok(one) = Layout::new(&[ty], size, "key") {
                one.write_text(&key[at..at + size], &mut text);
            }
            let name = if many {
                format!("key{i}")
            } else {
                "key".into()
            };
            let text = String::from_utf8_lossy(&text).into_owned();
            // An integer TYPE is an integer part (a JSON number in `watch
            // -j`, as in `map lookup -j`), written as its text is.
            let part = match text.parse::<i128>() {
                Ok(n) if ty.is_integer() => KeyPart::Int(n),
                _ => KeyPart::Name(text),
            };
            parts.push((name, part));
            at += size;
        }
        parts
    }

    /// The paths of the value's integer fields (`packets`, `in.port`,
    /// `hist[2]`; empty string for a scalar value). Empty when it has none.
    pub fn field_names(&self) -> &[String] {
        &self.fields
    }

    /// A key's labelled parts: by the `key TYPES` layout when given, else
    /// by the map's BTF (raw bytes when it does not decode).
    pub fn parts_of(&self, key: &[u8]) -> Vec<(String, KeyPart)> {
        match &self.key_layout {
            Some(l) => Self::key_by_layout(l, key),
            None => key_parts(
                &self
                    .types
                    .decode_key(key)
                    .unwrap_or_else(|_| BtfValue::Bytes(key.to_vec())),
            ),
        }
    }

    /// Calls `f(raw key, summed integer fields)` for every entry, holding
    /// one batch of entries at a time; keys are not decoded (a caller that
    /// shows only some entries decodes those with [`StatMap::parts_of`]).
    pub fn for_each_value(&self, mut f: impl FnMut(&[u8], &[i128])) -> Result<(), ReadError> {
        let mut values = vec![0i128; self.fields.len()];
        self.for_each_raw(|key, value| {
            match &self.value_layout {
                Some(l) => {
                    let sums = l
                        .sum_cpus(value, self.sizes.cpu_stride(), self.sizes.cpus())
                        .unwrap_or_default();
                    values.iter_mut().for_each(|v| *v = 0);
                    for (slot, n) in values.iter_mut().zip(sums) {
                        *slot = n;
                    }
                }
                None => Self::btf_values(&self.types, value, &mut values),
            }
            f(key, &values)
        })
    }

    /// The value's integer fields by BTF, per-CPU values summed.
    fn btf_values(types: &MapTypes, value: &[u8], values: &mut [i128]) {
        values.iter_mut().for_each(|v| *v = 0);
        let summed = types.decode_values(value).ok().and_then(|v| sum_values(&v));
        if let Some(v) = summed {
            for (slot, (_, n)) in values.iter_mut().zip(int_fields(&v)) {
                *slot = n;
            }
        }
    }

    /// Calls `f(key, value)` for every entry (value: all CPUs' values),
    /// by the library's one batch walker.
    fn for_each_raw(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), ReadError> {
        let (ks, vs) = (self.sizes.key(), self.sizes.value());
        self.map.for_each_batch(|keys, vals, n| {
            for i in 0..n {
                f(&keys[i * ks..(i + 1) * ks], &vals[i * vs..(i + 1) * vs]);
            }
            Ok::<(), ReadError>(())
        })
    }
}

//! Reading a live map for statistics, on the library's typed map access:
//! every entry (`tcbpf::maps::read_all`: batched), each key decoded and
//! split into labelled parts, each value's per-CPU copies summed
//! (`typed::sum_values`) and cut into its integer fields
//! (`typed::int_fields`). Maps without BTF are read as untyped integers.
//!
//! Read-only: nothing here writes to a map. Formatting for Prometheus or
//! the terminal is the callers' job.

use crate::keys::{key_parts, KeyPart};
use tcbpf::btf::fmt::BtfValue;
use tcbpf::maps;
use tcbpf::sys::{self, info::MapInfo, map::MapType, MapFd};
use tcbpf::value::typed::{int_fields, sum_values, MapTypes};

/// A map opened for statistics.
pub struct StatMap {
    /// The descriptor.
    pub fd: MapFd,
    /// The kernel's info.
    pub info: MapInfo,
    types: MapTypes,
    fields: Vec<String>,
}

/// One entry: the key's labelled parts and the value's integer fields
/// (summed over CPUs), in the order of [`StatMap::field_names`].
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The raw key (identity of the row across reads).
    pub key: Vec<u8>,
    /// The key as label name/value parts.
    pub parts: Vec<(String, KeyPart)>,
    /// Integer value fields.
    pub values: Vec<i128>,
}

/// Why a map cannot be read for statistics.
#[derive(Debug)]
pub enum ReadError {
    /// The map type holds no countable values (program arrays, ring buffers…).
    Unsupported(String),
    /// The kernel (or the map's BTF) said no.
    Maps(maps::Error),
}

impl ReadError {
    /// True when the map is gone (ENOENT).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Maps(maps::Error::Sys(e)) if e.is_not_found())
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unsupported(m) => f.write_str(m),
            ReadError::Maps(e) => write!(f, "{e}"),
        }
    }
}

impl From<sys::Error> for ReadError {
    fn from(e: sys::Error) -> Self {
        ReadError::Maps(maps::Error::Sys(e))
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
    /// Prepares `fd` for reading: its info and typed codec.
    pub fn new(fd: MapFd) -> Result<StatMap, ReadError> {
        let info = sys::info::map_info(&fd)?;
        if !readable(info.kind()) {
            return Err(ReadError::Unsupported(format!(
                "map '{}' (id {}) is a {} map: no counters to read",
                info.name,
                info.id,
                info.type_name()
            )));
        }
        let types = maps::types_or_untyped(&info)?;
        let zero = vec![0u8; info.value_size as usize];
        let fields = types
            .decode_value(&zero)
            .map(|v| int_fields(&v).into_iter().map(|(p, _)| p).collect())
            .unwrap_or_default();
        Ok(StatMap {
            fd,
            info,
            types,
            fields,
        })
    }

    /// The paths of the value's integer fields (`packets`, `in.port`,
    /// `hist[2]`; empty string for a scalar value). Empty when it has none.
    pub fn field_names(&self) -> &[String] {
        &self.fields
    }

    /// Every entry, read now.
    pub fn rows(&self) -> Result<Vec<Row>, ReadError> {
        let entries = maps::read_all(&self.fd)?;
        let mut rows = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let k = self
                .types
                .decode_key(&key)
                .unwrap_or_else(|_| BtfValue::Bytes(key.clone()));
            let mut values = vec![0i128; self.fields.len()];
            let summed = self
                .types
                .decode_values(&value)
                .ok()
                .and_then(|v| sum_values(&v));
            if let Some(v) = summed {
                for (slot, (_, n)) in values.iter_mut().zip(int_fields(&v)) {
                    *slot = n;
                }
            }
            rows.push(Row {
                parts: key_parts(&k),
                key,
                values,
            });
        }
        Ok(rows)
    }
}

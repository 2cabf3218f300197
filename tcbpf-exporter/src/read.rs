//! Reading a live map for statistics: its info and BTF, every entry in
//! batches (LOOKUP_BATCH, growing on ENOSPC; GET_NEXT_KEY + LOOKUP for types
//! without batch support), each key split into labelled parts and each value
//! into its integer fields, per-CPU values summed.
//!
//! Read-only: nothing here writes to a map. Formatting for Prometheus or
//! the terminal is the callers' job.

use crate::typed::{self, KeyPart, MapTypes};
use tcbpf::btf::fmt::BtfValue;
use tcbpf::sys::{self, info::MapInfo, map as sysmap, map::ElemSizes, map::MapType, MapFd};

/// Bytes of keys and values asked for per LOOKUP_BATCH call.
const BATCH_BYTES: usize = 1 << 20;

/// A map opened for statistics.
pub struct StatMap {
    /// The descriptor.
    pub fd: MapFd,
    /// The kernel's info.
    pub info: MapInfo,
    sizes: ElemSizes,
    types: Option<MapTypes>,
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
    /// The kernel refused.
    Sys(sys::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unsupported(m) => f.write_str(m),
            ReadError::Sys(e) => write!(f, "{e}"),
        }
    }
}

impl From<sys::Error> for ReadError {
    fn from(e: sys::Error) -> Self {
        ReadError::Sys(e)
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
    /// Prepares `fd` for reading: its info, element sizes and BTF (a map
    /// without BTF is read with scalar keys and values).
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
        let percpu = info.kind().is_some_and(MapType::is_percpu);
        let sizes = ElemSizes::from_info(&info, percpu)?;
        let types = typed::types_of(&info)?;
        Ok(StatMap {
            fd,
            info,
            sizes,
            types,
        })
    }

    /// The names of the value's integer fields (`packets`, `bytes`; empty
    /// string for a scalar value). Empty when the value has none.
    pub fn field_names(&self) -> Vec<String> {
        let zero = vec![0u8; self.info.value_size as usize];
        typed::int_fields(&self.decode_value(&zero))
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    fn decode_value(&self, bytes: &[u8]) -> BtfValue {
        match &self.types {
            Some(t) => t.value(bytes),
            None => typed::scalar(bytes),
        }
    }

    /// Every entry, read now.
    pub fn rows(&self) -> Result<Vec<Row>, ReadError> {
        let nfields = self.field_names().len();
        let mut rows = Vec::new();
        self.for_each_raw(|key, value| {
            let parts = match &self.types {
                Some(t) => typed::key_parts(&t.key(key)),
                None => typed::key_parts(&typed::scalar(key)),
            };
            let mut values = vec![0i128; nfields];
            let stride = self.sizes.cpu_stride();
            let vsize = self.info.value_size as usize;
            for cpu in 0..self.sizes.cpus() {
                let at = cpu * stride;
                let v = self.decode_value(&value[at..at + vsize]);
                for (slot, (_, n)) in values.iter_mut().zip(typed::int_fields(&v)) {
                    *slot = slot.wrapping_add(n);
                }
            }
            rows.push(Row {
                key: key.to_vec(),
                parts,
                values,
            });
        })?;
        Ok(rows)
    }

    /// Calls `f(key, value)` for every entry (value: all CPUs' values).
    fn for_each_raw(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), ReadError> {
        let (ks, vs) = (self.sizes.key(), self.sizes.value());
        let count = (BATCH_BYTES / (ks + vs).max(1))
            .clamp(64, 1 << 15)
            .min((self.info.max_entries as usize).max(1));
        let mut keys = vec![0u8; count * ks];
        let mut values = vec![0u8; count * vs];
        let mut cursor = sysmap::BatchCursor::new(&self.sizes);
        let mut any = false;
        while !cursor.is_done() {
            match sysmap::lookup_batch(&self.fd, &self.sizes, &mut cursor, &mut keys, &mut values) {
                Ok(n) => {
                    any = true;
                    for i in 0..n {
                        f(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs]);
                    }
                }
                Err(e) if e.errno() == Some(libc::ENOSPC) => {
                    keys.resize(keys.len() * 2, 0);
                    values.resize(values.len() * 2, 0);
                }
                Err(e) if !any && sysmap::is_unsupported(&e) => return self.each_element(f),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// GET_NEXT_KEY + LOOKUP, for map types without LOOKUP_BATCH.
    fn each_element(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), ReadError> {
        let mut key: Option<Vec<u8>> = None;
        let mut next = vec![0u8; self.sizes.key()];
        let mut value = vec![0u8; self.sizes.value()];
        while sysmap::next_key(&self.fd, key.as_deref(), &mut next)? {
            match sysmap::lookup(&self.fd, &next, &mut value, 0) {
                Ok(()) => f(&next, &value),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            key = Some(next.clone());
        }
        Ok(())
    }
}

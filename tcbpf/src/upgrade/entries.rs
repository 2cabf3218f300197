//! A map's entries as two flat buffers (keys, whole values), read and
//! written with large LOOKUP_BATCH / UPDATE_BATCH calls: the upgrade copies
//! and compares a million entries without one allocation per entry.

use std::collections::HashMap;
use std::os::fd::AsFd;

use crate::sys::map::{self as sysmap, ElemSizes};

/// Elements per batch call.
const CHUNK: usize = 1 << 16;

/// Entries of one map, in the kernel's walk order.
#[derive(Debug, Default)]
pub(super) struct Entries {
    keys: Vec<u8>,
    values: Vec<u8>,
    ks: usize,
    vs: usize,
}

impl Entries {
    /// Every entry of `map` (whole values: every CPU's copy).
    pub(super) fn read(map: impl AsFd, sizes: &ElemSizes) -> Result<Entries, crate::maps::Error> {
        let map = map.as_fd();
        let (ks, vs) = (sizes.key(), sizes.value());
        let mut out = Entries {
            keys: Vec::new(),
            values: Vec::new(),
            ks,
            vs,
        };
        let mut count = CHUNK;
        let mut keys = vec![0u8; count * ks];
        let mut values = vec![0u8; count * vs];
        let mut cursor = sysmap::BatchCursor::new(sizes);
        while !cursor.is_done() {
            match sysmap::lookup_batch(map, sizes, &mut cursor, &mut keys, &mut values) {
                Ok(n) => {
                    out.keys.extend_from_slice(&keys[..n * ks]);
                    out.values.extend_from_slice(&values[..n * vs]);
                }
                Err(e) if e.errno() == Some(libc::ENOSPC) && count < (1 << 22) => {
                    count *= 2;
                    keys.resize(count * ks, 0);
                    values.resize(count * vs, 0);
                }
                Err(e) if out.is_empty() && sysmap::is_unsupported(&e) => {
                    for (k, v) in crate::maps::read_all(map)? {
                        out.keys.extend_from_slice(&k);
                        out.values.extend_from_slice(&v);
                    }
                    return Ok(out);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// An empty table for entries of these sizes.
    pub(super) fn with_sizes(sizes: &ElemSizes, capacity: usize) -> Entries {
        Entries {
            keys: Vec::with_capacity(capacity * sizes.key()),
            values: Vec::with_capacity(capacity * sizes.value()),
            ks: sizes.key(),
            vs: sizes.value(),
        }
    }

    /// How many entries.
    pub(super) fn len(&self) -> usize {
        self.keys.len() / self.ks.max(1)
    }

    /// True when there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of entry `i`.
    pub(super) fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * self.ks..(i + 1) * self.ks]
    }

    /// The whole value of entry `i`.
    pub(super) fn value(&self, i: usize) -> &[u8] {
        &self.values[i * self.vs..(i + 1) * self.vs]
    }

    /// Appends an entry; the value is zeroed for the caller to fill.
    pub(super) fn push_zeroed(&mut self, key: &[u8]) -> &mut [u8] {
        self.keys.extend_from_slice(key);
        let start = self.values.len();
        self.values.resize(start + self.vs, 0);
        &mut self.values[start..]
    }

    /// Entry index by key.
    pub(super) fn index(&self) -> HashMap<&[u8], usize> {
        (0..self.len()).map(|i| (self.key(i), i)).collect()
    }

    /// Writes every entry into `map` (create or replace).
    pub(super) fn write(
        &self,
        map: impl AsFd,
        sizes: &ElemSizes,
    ) -> Result<(), crate::maps::Error> {
        let map = map.as_fd();
        let n = self.len();
        let mut i = 0;
        while i < n {
            let end = (i + CHUNK).min(n);
            let keys = &self.keys[i * self.ks..end * self.ks];
            let values = &self.values[i * self.vs..end * self.vs];
            match sysmap::update_batch(map, sizes, keys, values, sysmap::update::ANY) {
                Ok(_) => {}
                Err(p) if p.done == 0 && sysmap::is_unsupported(&p.error) => {
                    crate::maps::update_all(map, keys, values)?;
                }
                Err(p) => return Err(p.error.into()),
            }
            i = end;
        }
        Ok(())
    }
}

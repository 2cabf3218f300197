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

    /// Replaces the whole value of entry `i`.
    pub(super) fn set_value(&mut self, i: usize, value: &[u8]) {
        self.values[i * self.vs..(i + 1) * self.vs].copy_from_slice(value);
    }

    /// The table as bytes: entries, key size and value size (three native
    /// u64), then the keys, then the values ([`Entries::from_bytes`]).
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.keys.len() + self.values.len());
        for n in [self.len(), self.ks, self.vs] {
            out.extend_from_slice(&(n as u64).to_ne_bytes());
        }
        out.extend_from_slice(&self.keys);
        out.extend_from_slice(&self.values);
        out
    }

    /// The table [`Entries::to_bytes`] wrote (trailing bytes ignored);
    /// None when the bytes are too short for what the header says.
    pub(super) fn from_bytes(b: &[u8]) -> Option<Entries> {
        let word = |i: usize| -> Option<usize> {
            let w = b.get(i * 8..i * 8 + 8)?;
            usize::try_from(u64::from_ne_bytes(w.try_into().ok()?)).ok()
        };
        let (n, ks, vs) = (word(0)?, word(1)?, word(2)?);
        let keys_end = 24usize.checked_add(n.checked_mul(ks)?)?;
        let end = keys_end.checked_add(n.checked_mul(vs)?)?;
        Some(Entries {
            keys: b.get(24..keys_end)?.to_vec(),
            values: b.get(keys_end..end)?.to_vec(),
            ks,
            vs,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_survives_bytes_and_short_bytes_are_refused() {
        let mut e = Entries {
            ks: 4,
            vs: 8,
            ..Default::default()
        };
        e.push_zeroed(&1u32.to_ne_bytes())
            .copy_from_slice(&10u64.to_ne_bytes());
        e.push_zeroed(&2u32.to_ne_bytes())
            .copy_from_slice(&20u64.to_ne_bytes());
        let mut bytes = e.to_bytes();
        bytes.extend_from_slice(&[0; 100]); // padding to a whole chunk
        let back = Entries::from_bytes(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.key(1), 2u32.to_ne_bytes());
        assert_eq!(back.value(1), 20u64.to_ne_bytes());
        assert!(Entries::from_bytes(&e.to_bytes()[..30]).is_none());
        let mut huge = e.to_bytes();
        huge[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(Entries::from_bytes(&huge).is_none());
    }
}

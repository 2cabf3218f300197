//! Reading every entry of a map and diff-applying a set of entries:
//! unchanged entries are not written, new and changed ones go in
//! UPDATE_BATCH calls, and with `replace` the keys not named go in
//! DELETE_BATCH calls (array maps cannot delete: their unnamed slots are
//! zeroed). Each batch command falls back to per-element calls where the
//! map type has none. Everything is checked before the first write.

use std::collections::HashMap;
use std::os::fd::AsFd;

use super::Error;
use crate::abi::MapType;
use crate::sys::{
    self,
    map::{self as sysmap, ElemSizes},
};
use crate::value::typed::TypedError;

/// Elements per batch call.
const CHUNK: usize = 4096;

/// One entry as bytes: the key and the whole value buffer.
pub type Entry = (Vec<u8>, Vec<u8>);

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Keys that were not in the map.
    pub added: usize,
    /// Keys whose value differed.
    pub changed: usize,
    /// Keys whose value was already the one given.
    pub unchanged: usize,
    /// Keys not given that were deleted (zeroed in array maps); only with `replace`.
    pub removed: usize,
}

/// Every entry of `map`: `(key, whole value buffer)` pairs (all CPUs for
/// per-CPU maps), by the one streaming walk ([`crate::front::map::for_each_batch`]:
/// LOOKUP_BATCH, or GET_NEXT_KEY + LOOKUP where the map type has no batch
/// command).
pub fn read_all(map: impl AsFd) -> Result<Vec<Entry>, Error> {
    let map = map.as_fd();
    let info = sys::info::map_info(map)?;
    let sizes = ElemSizes::from_info(&info, info.kind().is_some_and(MapType::is_percpu))?;
    let (ks, vs) = (sizes.key(), sizes.value());
    let mut out = Vec::new();
    crate::front::map::for_each_batch(map, &sizes, info.max_entries, "", |keys, values, n| {
        for i in 0..n {
            out.push((
                keys[i * ks..(i + 1) * ks].to_vec(),
                values[i * vs..(i + 1) * vs].to_vec(),
            ));
        }
        Ok::<(), Error>(())
    })?;
    Ok(out)
}

/// Makes `map` hold `entries` (`(key, whole value buffer)`, the sizes
/// [`ElemSizes`] gives; a key given twice: the last wins). With `replace`,
/// also deletes every key not given, before writing, so a full map has
/// room for the new keys. Checks every entry's sizes before writing
/// anything. Per-CPU values compare by each CPU's value bytes.
pub fn apply(map: impl AsFd, entries: &[Entry], replace: bool) -> Result<ApplyReport, Error> {
    let map = map.as_fd();
    let info = sys::info::map_info(map)?;
    let kind = info.kind();
    let sizes = ElemSizes::from_info(&info, kind.is_some_and(MapType::is_percpu))?;
    let (ks, vs) = (sizes.key(), sizes.value());
    if kind.is_some_and(|k| k.holds_fds() || k.is_queue_or_stack()) {
        return Err(Error::Typed(TypedError::new(
            "",
            format!("cannot apply entries to a {} map", info.type_name()),
        )));
    }
    let mut wanted: HashMap<&[u8], &[u8]> = HashMap::with_capacity(entries.len());
    for (n, (k, v)) in entries.iter().enumerate() {
        if k.len() != ks || v.len() != vs {
            return Err(Error::Typed(TypedError::new(
                format!("entry {}", n + 1),
                format!(
                    "key of {} and value of {} bytes; the map takes {ks} and {vs}",
                    k.len(),
                    v.len()
                ),
            )));
        }
        wanted.insert(k, v);
    }
    let current: HashMap<Vec<u8>, Vec<u8>> = read_all(map)?.into_iter().collect();
    let value_size = info.value_size as usize;
    let stride = sizes.cpu_stride();
    let same = |a: &[u8], b: &[u8]| {
        (0..sizes.cpus()).all(|c| {
            let r = c * stride..c * stride + value_size;
            a.get(r.clone()) == b.get(r)
        })
    };
    let mut report = ApplyReport::default();
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    // In input order, each key once (its last value).
    let mut done: HashMap<&[u8], ()> = HashMap::with_capacity(wanted.len());
    for (k, _) in entries.iter().rev() {
        if done.insert(k, ()).is_some() {
            continue;
        }
        let v = wanted[k.as_slice()];
        match current.get(k.as_slice()) {
            None => report.added += 1,
            Some(old) if same(old, v) => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.changed += 1,
        }
        keys.extend_from_slice(k);
        values.extend_from_slice(v);
    }
    // Keys that go are deleted first: a full map then has room for the
    // new ones (a policy swapped whole on a map at max_entries).
    if replace {
        let is_array = matches!(kind, Some(MapType::Array) | Some(MapType::PercpuArray));
        let (mut gone, mut zeros) = (Vec::new(), Vec::new());
        for (k, v) in &current {
            if wanted.contains_key(k.as_slice()) {
                continue;
            }
            if is_array {
                if v.iter().all(|&b| b == 0) {
                    continue;
                }
                zeros.resize(zeros.len() + vs, 0);
            }
            gone.extend_from_slice(k);
            report.removed += 1;
        }
        if is_array {
            write(map, &sizes, &gone, &zeros)?;
        } else {
            delete(map, &sizes, &gone)?;
        }
    }
    write(map, &sizes, &keys, &values)?;
    Ok(report)
}

/// Writes packed entries (keys and whole value buffers at the map's
/// [`ElemSizes`]) with UPDATE_BATCH in chunks, or per element where the
/// map type has none; returns how many. Checks the buffers hold whole
/// elements first.
pub fn update_all(map: impl AsFd, keys: &[u8], values: &[u8]) -> Result<usize, Error> {
    let map = map.as_fd();
    let sizes = ElemSizes::of(map)?;
    let (ks, vs) = (sizes.key(), sizes.value());
    let n = keys.len() / ks.max(1);
    if keys.len() != n * ks || values.len() != n * vs {
        return Err(Error::Typed(TypedError::new(
            "",
            format!(
                "{} key bytes and {} value bytes are not whole entries of {ks} and {vs}",
                keys.len(),
                values.len()
            ),
        )));
    }
    write(map, &sizes, keys, values)?;
    Ok(n)
}

/// UPDATE_BATCH in chunks; per element where unsupported.
fn write(
    map: std::os::fd::BorrowedFd<'_>,
    sizes: &ElemSizes,
    keys: &[u8],
    values: &[u8],
) -> Result<(), Error> {
    let (ks, vs) = (sizes.key(), sizes.value());
    let n = keys.len() / ks.max(1);
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let (k, v) = (&keys[i * ks..end * ks], &values[i * vs..end * vs]);
        match sysmap::update_batch(map, sizes, k, v, 0) {
            Ok(_) => {}
            Err(p) if p.done == 0 && sysmap::is_unsupported(&p.error) => {
                for j in 0..end - i {
                    sysmap::update(map, &k[j * ks..(j + 1) * ks], &v[j * vs..(j + 1) * vs], 0)?;
                }
            }
            Err(p) => return Err(p.error.into()),
        }
        i = end;
    }
    Ok(())
}

/// DELETE_BATCH in chunks; per element where unsupported (a key already
/// gone is not an error).
fn delete(map: std::os::fd::BorrowedFd<'_>, sizes: &ElemSizes, keys: &[u8]) -> Result<(), Error> {
    let ks = sizes.key();
    let n = keys.len() / ks.max(1);
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let k = &keys[i * ks..end * ks];
        match sysmap::delete_batch(map, sizes, k) {
            Ok(_) => {}
            Err(p) if sysmap::is_unsupported(&p.error) || p.error.is_not_found() => {
                for j in p.done..end - i {
                    match sysmap::delete(map, &k[j * ks..(j + 1) * ks]) {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(p) => return Err(p.error.into()),
        }
        i = end;
    }
    Ok(())
}

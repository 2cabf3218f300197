//! Reading every entry of a map in chunks, as fast as the kernel allows:
//!
//! - small maps: LOOKUP_BATCH on the calling thread;
//! - large maps: a walker thread fills chunks while the caller formats the
//!   previous ones;
//! - large hash-family maps on several CPUs: two walkers, one from the first
//!   bucket and one from the middle bucket, since the kernel's batch token
//!   for these maps is the bucket index. The lower walker stops once it
//!   passes the middle; the entries of its last step that the upper walker
//!   also returned are dropped (a key lives in one bucket, so the overlap is
//!   exact);
//! - map types without batch support: GET_NEXT_KEY + LOOKUP per element.
//!
//! A hash bucket holding more entries than a chunk makes the kernel say
//! ENOSPC: the chunk grows and the same step is retried. Nothing here
//! formats or writes output: the caller's function gets the raw chunks.

use super::super::error::CliError;
use super::OpenMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use tcbpf::sys::{self, map as sysmap, map::MapType};

/// Bytes of keys and values asked for per LOOKUP_BATCH call.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks each walker may have filled ahead of the formatting thread, so a
/// formatter that is briefly off the CPU does not stop the walk.
const AHEAD: usize = 4;
/// Maps at least this large are walked by a second thread.
const PIPELINE_MIN: usize = 1 << 14;
/// Hash maps at least this large are walked from two buckets at once.
const SPLIT_MIN: usize = 1 << 16;

/// How a walk ended: `Err((any_read, error))` on a kernel error, so the
/// caller can fall back to the per-element walk when nothing was read.
type Walked = Result<(), (bool, sys::Error)>;

/// Calls `f(keys, values, n)` for every chunk of the map's entries, `n`
/// elements packed at the map's element sizes (see the module doc for how).
pub fn for_each_batch(
    m: &OpenMap,
    mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let max = m.info.max_entries as usize;
    let count = (BATCH_BYTES / (ks + vs).max(1))
        .clamp(64, 1 << 15)
        .min(max.max(1));
    // Asked only for large maps: it reads cgroup files.
    let several_cpus = || std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let walked = if max < PIPELINE_MIN {
        on_this_thread(m, count, &mut f)?
    } else if max >= SPLIT_MIN && is_hash_family(m) && several_cpus() {
        split(m, count, &mut f)?
    } else {
        pipelined(m, count, &mut f)?
    };
    match walked {
        Ok(()) => Ok(()),
        Err((false, e)) if sysmap::is_unsupported(&e) => for_each_element(m, f),
        Err((_, e)) => Err(m.err(e)),
    }
}

/// The maps whose batch token is the bucket index (`kernel/bpf/hashtab.c`).
fn is_hash_family(m: &OpenMap) -> bool {
    matches!(
        m.kind,
        Some(MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash)
    )
}

/// Buffers for one LOOKUP_BATCH call.
struct Chunk {
    keys: Vec<u8>,
    values: Vec<u8>,
    n: usize,
}

impl Chunk {
    fn new(count: usize, m: &OpenMap) -> Chunk {
        Chunk {
            keys: vec![0; count * m.sizes.key()],
            values: vec![0; count * m.sizes.value()],
            n: 0,
        }
    }

    /// The next elements of the walk; grows on ENOSPC and retries the step.
    fn fill(&mut self, m: &OpenMap, cursor: &mut sysmap::BatchCursor) -> Result<usize, sys::Error> {
        loop {
            match sysmap::lookup_batch(&m.fd, &m.sizes, cursor, &mut self.keys, &mut self.values) {
                Ok(n) => {
                    self.n = n;
                    return Ok(n);
                }
                Err(e) if e.errno() == Some(libc::ENOSPC) => {
                    let grown = self.keys.len().max(1) * 2;
                    self.keys.resize(grown, 0);
                    let grown = self.values.len().max(1) * 2;
                    self.values.resize(grown, 0);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn on_this_thread(
    m: &OpenMap,
    count: usize,
    f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<Walked, CliError> {
    let mut chunk = Chunk::new(count, m);
    let mut cursor = sysmap::BatchCursor::new(&m.sizes);
    let mut any = false;
    while !cursor.is_done() {
        match chunk.fill(m, &mut cursor) {
            Ok(n) => {
                any |= n > 0;
                f(&chunk.keys, &chunk.values, n)?;
            }
            Err(e) => return Ok(Err((any, e))),
        }
    }
    Ok(Ok(()))
}

/// One walker thread handing filled chunks over and getting them back.
fn pipelined(
    m: &OpenMap,
    count: usize,
    f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<Walked, CliError> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(AHEAD);
        let (free_tx, free_rx) = mpsc::channel::<Chunk>();
        for _ in 0..AHEAD {
            let _ = free_tx.send(Chunk::new(count, m));
        }
        let walker = scope.spawn(move || {
            let mut cursor = sysmap::BatchCursor::new(&m.sizes);
            let mut any = false;
            while !cursor.is_done() {
                // The consumer hung up (its own error): stop quietly.
                let Ok(mut chunk) = free_rx.recv() else {
                    return Ok(());
                };
                match chunk.fill(m, &mut cursor) {
                    Ok(0) => {}
                    Ok(_) => {
                        any = true;
                        if full_tx.send(chunk).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => return Err((any, e)),
                }
            }
            Ok(())
        });
        let consumed = (|| {
            for chunk in full_rx {
                f(&chunk.keys, &chunk.values, chunk.n)?;
                let _ = free_tx.send(chunk);
            }
            Ok(())
        })();
        drop(free_tx);
        let walked = walker
            .join()
            .map_err(|_| CliError::failure("map walker thread panicked"))?;
        consumed.map(|()| walked)
    })
}

/// The kernel's hash batch token: a native-order u32 bucket index.
fn bucket(cursor: &sysmap::BatchCursor) -> u32 {
    match cursor.position() {
        _ if cursor.is_done() => u32::MAX,
        Some(p) if p.len() >= 4 => u32::from_ne_bytes([p[0], p[1], p[2], p[3]]),
        _ => 0,
    }
}

/// Two walkers over a hash-family map: buckets [0, middle) and [middle, end).
fn split(
    m: &OpenMap,
    count: usize,
    f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<Walked, CliError> {
    // The kernel sizes the table to max_entries rounded up to a power of two;
    // a wrong guess only unbalances the halves.
    let buckets = m
        .info
        .max_entries
        .max(2)
        .checked_next_power_of_two()
        .unwrap_or(1 << 31);
    let middle = buckets / 2;
    let lower_end = AtomicU32::new(u32::MAX);
    let ks = m.sizes.key();
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<(usize, Chunk)>(2 * AHEAD);
        let (free_lo_tx, free_lo_rx) = mpsc::channel::<Chunk>();
        let (free_hi_tx, free_hi_rx) = mpsc::channel::<Chunk>();
        for _ in 0..AHEAD {
            let _ = free_lo_tx.send(Chunk::new(count, m));
            let _ = free_hi_tx.send(Chunk::new(count, m));
        }
        let lower_end = &lower_end;
        let lo_tx = full_tx.clone();
        // The lower half: stops after the step that reaches the middle and
        // keeps that step's chunk back for de-duplication.
        let lower = scope.spawn(
            move || -> Result<Option<(Chunk, u32)>, (bool, sys::Error)> {
                let mut cursor = sysmap::BatchCursor::new(&m.sizes);
                let mut any = false;
                loop {
                    let Ok(mut chunk) = free_lo_rx.recv() else {
                        return Ok(None);
                    };
                    let n = chunk.fill(m, &mut cursor).map_err(|e| (any, e))?;
                    any |= n > 0;
                    let end = bucket(&cursor);
                    if end >= middle {
                        lower_end.store(end, Ordering::Release);
                        return Ok(Some((chunk, end)));
                    }
                    if n > 0 && lo_tx.send((0, chunk)).is_err() {
                        return Ok(None);
                    }
                }
            },
        );
        let hi_tx = full_tx;
        // The upper half: keeps the keys of the steps that began before the
        // lower walker's end (all of them while that end is unknown), with
        // each step's first bucket: only those steps can repeat entries of
        // the lower walker's last step.
        let upper = scope.spawn(move || -> Result<Overlap, (bool, sys::Error)> {
            let mut cursor = sysmap::BatchCursor::at(&m.sizes, &middle.to_ne_bytes());
            let mut any = false;
            let mut seen = Overlap::default();
            while !cursor.is_done() {
                let start = bucket(&cursor);
                let Ok(mut chunk) = free_hi_rx.recv() else {
                    return Ok(seen);
                };
                let n = chunk.fill(m, &mut cursor).map_err(|e| (any, e))?;
                any |= n > 0;
                if n > 0 && start < lower_end.load(Ordering::Acquire) {
                    seen.keys.extend_from_slice(&chunk.keys[..n * ks]);
                    seen.steps.push((start, seen.keys.len()));
                }
                if n > 0 && hi_tx.send((1, chunk)).is_err() {
                    return Ok(seen);
                }
            }
            Ok(seen)
        });
        let consumed = (|| -> Result<(), CliError> {
            for (from, chunk) in full_rx {
                f(&chunk.keys, &chunk.values, chunk.n)?;
                let _ = if from == 0 {
                    free_lo_tx.send(chunk)
                } else {
                    free_hi_tx.send(chunk)
                };
            }
            Ok(())
        })();
        drop((free_lo_tx, free_hi_tx));
        let panicked = |_| CliError::failure("map walker thread panicked");
        let lower = lower.join().map_err(panicked)?;
        let upper = upper.join().map_err(panicked)?;
        consumed?;
        let (last, seen) = match (lower, upper) {
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            (Ok(last), Ok(seen)) => (last, seen),
        };
        if let Some((mut last, end)) = last {
            let kept = keep_unseen(&mut last, ks, m.sizes.value(), seen.before(end));
            f(&last.keys, &last.values, kept)?;
        }
        Ok(Ok(()))
    })
}

/// Keys the upper walker returned, and where each of its steps began.
#[derive(Default)]
struct Overlap {
    keys: Vec<u8>,
    /// (first bucket of the step, end of its keys in `keys`).
    steps: Vec<(u32, usize)>,
}

impl Overlap {
    /// The keys of the steps that began before bucket `end`.
    fn before(&self, end: u32) -> &[u8] {
        let len = self
            .steps
            .iter()
            .take_while(|(start, _)| *start < end)
            .last()
            .map_or(0, |(_, len)| *len);
        &self.keys[..len]
    }
}

/// Drops the entries of `chunk` whose key is among `seen` (packed keys),
/// packing the rest to its front; returns how many remain. Indexes the
/// chunk (one step, thousands of keys) rather than `seen`.
fn keep_unseen(chunk: &mut Chunk, ks: usize, vs: usize, seen: &[u8]) -> usize {
    let ks1 = ks.max(1);
    let mut dropped = vec![false; chunk.n];
    {
        let index: HashMap<&[u8], usize> = (0..chunk.n)
            .map(|i| (&chunk.keys[i * ks..(i + 1) * ks], i))
            .collect();
        for key in seen.chunks_exact(ks1) {
            if let Some(&i) = index.get(key) {
                dropped[i] = true;
            }
        }
    }
    let mut kept = 0;
    for (i, _) in dropped.iter().enumerate().filter(|(_, d)| !**d) {
        if kept != i {
            chunk.keys.copy_within(i * ks..(i + 1) * ks, kept * ks);
            chunk.values.copy_within(i * vs..(i + 1) * vs, kept * vs);
        }
        kept += 1;
    }
    kept
}

/// The per-element walk: GET_NEXT_KEY then LOOKUP, in chunks for `f`.
/// Entries deleted between the two calls are skipped.
fn for_each_element(
    m: &OpenMap,
    mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<(), CliError> {
    const CHUNK: usize = 1024;
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let mut keys = vec![0u8; CHUNK * ks];
    let mut values = vec![0u8; CHUNK * vs];
    let mut prev: Option<Vec<u8>> = None;
    let mut next = vec![0u8; ks];
    let mut n = 0;
    loop {
        let more = sysmap::next_key(&m.fd, prev.as_deref(), &mut next).map_err(|e| m.err(e))?;
        if !more {
            break;
        }
        let (k, v) = (
            &mut keys[n * ks..(n + 1) * ks],
            &mut values[n * vs..(n + 1) * vs],
        );
        match sysmap::lookup(&m.fd, &next, v, 0) {
            Ok(()) => {
                k.copy_from_slice(&next);
                n += 1;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(m.err(e)),
        }
        prev.get_or_insert_with(Vec::new).clone_from(&next);
        if n == CHUNK {
            f(&keys, &values, n)?;
            n = 0;
        }
    }
    if n > 0 {
        f(&keys, &values, n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_unseen_packs_the_remaining_entries_in_order() {
        let mut chunk = Chunk {
            keys: [1u32, 2, 3, 4]
                .iter()
                .flat_map(|k| k.to_ne_bytes())
                .collect(),
            values: vec![10, 20, 30, 40],
            n: 4,
        };
        let seen: Vec<u8> = [9u32, 3, 2].iter().flat_map(|k| k.to_ne_bytes()).collect();
        assert_eq!(keep_unseen(&mut chunk, 4, 1, &seen), 2);
        assert_eq!(
            &chunk.keys[..8],
            [1u32.to_ne_bytes(), 4u32.to_ne_bytes()].concat()
        );
        assert_eq!(&chunk.values[..2], [10, 40]);
    }

    #[test]
    fn overlap_keeps_only_steps_that_began_before_the_end() {
        let seen = Overlap {
            keys: vec![1, 2, 3, 4, 5, 6],
            steps: vec![(8, 2), (12, 4), (20, 6)],
        };
        assert_eq!(seen.before(8), &[] as &[u8]);
        assert_eq!(seen.before(9), &[1, 2]);
        assert_eq!(seen.before(20), &[1, 2, 3, 4]);
        assert_eq!(seen.before(u32::MAX), &[1, 2, 3, 4, 5, 6]);
    }
}

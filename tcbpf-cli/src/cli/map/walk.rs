//! Reading every entry of a map in chunks, as fast as the kernel allows:
//!
//! - small maps: LOOKUP_BATCH on the calling thread;
//! - large maps: a walker thread fills chunks while the caller formats the
//!   previous ones (the batch token stays opaque: one walk, in the kernel's
//!   order);
//! - map types without batch support: GET_NEXT_KEY + LOOKUP per element.
//!
//! A hash bucket holding more entries than a chunk makes the kernel say
//! ENOSPC: the chunk grows and the same step is retried. Nothing here
//! formats or writes output: the caller's function gets the raw chunks.

use super::super::error::CliError;
use super::OpenMap;
use std::sync::mpsc;
use tcbpf::sys::{self, map as sysmap};

/// Bytes of keys and values asked for per LOOKUP_BATCH call.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks each walker may have filled ahead of the formatting thread, so a
/// formatter that is briefly off the CPU does not stop the walk.
const AHEAD: usize = 4;
/// Maps at least this large are walked by a second thread.
const PIPELINE_MIN: usize = 1 << 14;

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
    let walked = if max < PIPELINE_MIN {
        on_this_thread(m, count, &mut f)?
    } else {
        pipelined(m, count, &mut f)?
    };
    match walked {
        Ok(()) => Ok(()),
        Err((false, e)) if sysmap::is_unsupported(&e) => for_each_element(m, f),
        Err((_, e)) => Err(m.err(e)),
    }
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

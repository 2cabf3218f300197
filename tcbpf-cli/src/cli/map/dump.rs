//! `dump MAP [key TYPES] [value TYPES] [sum]`: every entry, read with
//! LOOKUP_BATCH in chunks of thousands and formatted a chunk at a time into
//! one buffer; map types without batch support are walked per element
//! (GET_NEXT_KEY + LOOKUP).

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{choose, Words};
use super::args;
use super::elem::{emit, entry_format};
use super::OpenMap;
use std::io::Write;
use std::sync::mpsc;
use tcbpf::sys::{self, map as sysmap};

/// Bytes of keys and values asked for per LOOKUP_BATCH call.
const BATCH_BYTES: usize = 2 << 20;
/// Output is written when the buffer passes this size.
const FLUSH_BYTES: usize = 1 << 20;

/// Runs `tcbpf map dump …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    if m.is_queue_or_stack() {
        return Err(CliError::usage(format!(
            "{}: a {} has no keys to dump: use pop or peek",
            m.label,
            m.info.type_name()
        )));
    }
    let (mut key_types, mut value_types, mut sum) = (None, None, false);
    while let Some(word) = w.next() {
        match choose(&word, &["key", "value", "sum"], "dump option")? {
            "key" => key_types = Some(args::types(w, "key")?),
            "value" => value_types = Some(args::types(w, "value")?),
            _ => sum = true,
        }
    }
    let format = entry_format(g, &m, key_types, value_types, sum)?;
    let mut out = Vec::with_capacity(FLUSH_BYTES + (64 << 10));
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    if g.json {
        out.push(b'[');
    }
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    for_each_batch(&m, |keys, values, n| {
        for i in 0..n {
            if g.json && !std::mem::take(&mut first) {
                out.push(b',');
            }
            format.write_entry(
                Some(&keys[i * ks..(i + 1) * ks]),
                &values[i * vs..(i + 1) * vs],
                &mut out,
            );
        }
        if !g.pretty && out.len() >= FLUSH_BYTES {
            stdout.write_all(&out)?;
            out.clear();
        }
        Ok(())
    })?;
    if g.json {
        out.push(b']');
    }
    if g.pretty {
        return emit(g, out);
    }
    if g.json {
        out.push(b'\n');
    }
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// Calls `f(keys, values, n)` for every chunk of the map's entries, `n`
/// elements laid out at the map's element sizes. Uses LOOKUP_BATCH, growing
/// the chunk when a hash bucket does not fit (ENOSPC), and falls back to a
/// per-element walk when the map type has no batch support. For large maps
/// a second thread walks the map while `f` works on the previous chunk.
pub fn for_each_batch(
    m: &OpenMap,
    mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let count = (BATCH_BYTES / (ks + vs).max(1))
        .clamp(64, 1 << 15)
        .min(m.info.max_entries.max(1) as usize);
    let walked = if (m.info.max_entries as usize) < PIPELINE_MIN {
        let mut chunk = Chunk::new(count, m);
        let mut cursor = sysmap::BatchCursor::new(&m.sizes);
        let mut any = false;
        loop {
            match chunk.fill(m, &mut cursor) {
                Ok(0) if cursor.is_done() => break Ok(()),
                Ok(n) => {
                    any = true;
                    f(&chunk.keys, &chunk.values, n)?;
                }
                Err(e) => break Err((any, e)),
            }
        }
    } else {
        pipelined(m, count, &mut f)?
    };
    match walked {
        Ok(()) => Ok(()),
        Err((false, e)) if sysmap::is_unsupported(&e) => for_each_element(m, f),
        Err((_, e)) => Err(m.err(e)),
    }
}

/// Maps at least this large are walked by a second thread.
const PIPELINE_MIN: usize = 1 << 14;

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

    /// The next elements of the walk; grows on ENOSPC (a hash bucket
    /// larger than the buffers) and retries the same step.
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

/// The walk on a second thread, handing filled chunks over and getting
/// them back empty. Returns how the walk ended: `Err((any_read, error))`
/// for a kernel error, so the caller can fall back.
fn pipelined(
    m: &OpenMap,
    count: usize,
    f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<Result<(), (bool, sys::Error)>, CliError> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(3);
        let (free_tx, free_rx) = mpsc::channel::<Chunk>();
        for _ in 0..3 {
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

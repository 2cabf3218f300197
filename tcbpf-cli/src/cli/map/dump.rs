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
use tcbpf::sys::map as sysmap;

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
            format.write_entry(Some(&keys[i * ks..(i + 1) * ks]), &values[i * vs..(i + 1) * vs], &mut out);
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
/// per-element walk when the map type has no batch support.
pub fn for_each_batch(
    m: &OpenMap,
    mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let mut count = (BATCH_BYTES / (ks + vs).max(1)).clamp(64, 1 << 16).min(m.info.max_entries.max(1) as usize);
    let mut keys = vec![0u8; count * ks];
    let mut values = vec![0u8; count * vs];
    let mut cursor = sysmap::BatchCursor::new(&m.sizes);
    let mut any = false;
    while !cursor.is_done() {
        match sysmap::lookup_batch(&m.fd, &m.sizes, &mut cursor, &mut keys, &mut values) {
            Ok(n) => {
                any = true;
                if n > 0 {
                    f(&keys, &values, n)?;
                }
            }
            Err(e) if e.errno() == Some(libc::ENOSPC) => {
                count *= 2;
                keys.resize(count * ks, 0);
                values.resize(count * vs, 0);
            }
            Err(e) if !any && sysmap::is_unsupported(&e) => return for_each_element(m, f),
            Err(e) => return Err(m.err(e)),
        }
    }
    Ok(())
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
        let (k, v) = (&mut keys[n * ks..(n + 1) * ks], &mut values[n * vs..(n + 1) * vs]);
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

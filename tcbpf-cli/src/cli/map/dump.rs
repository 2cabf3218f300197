//! `dump MAP [key TYPES] [value TYPES] [sum] [raw]`: every entry (typed by
//! the map's BTF unless TYPES or `raw` say otherwise; with `-j`, a map
//! printed by its BTF alone is in bpftool's shape: hex `key`/`value` and the
//! typed entry as `formatted`), as [`walk`]
//! reads them in chunks of thousands, formatted a chunk at a time into one
//! buffer that is written when it passes a megabyte.
//!
//! [`walk`]: super::walk

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::args;
use super::elem::{emit, entry_format};

use super::OpenMap;
use std::io::Write;

/// Output is written when the buffer passes this size.
const FLUSH_BYTES: usize = 1 << 20;

keywords! {
    /// The options of `map dump`.
    pub(crate) enum DumpOption("dump option") { Key = "key", Value = "value", Sum = "sum", Raw = "raw" }
}

/// Runs `tcbpf map dump …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse_read(w)?;
    if m.is_queue_or_stack() {
        return Err(CliError::usage(format!(
            "{}: a {} has no keys to dump: use pop or peek",
            m.label,
            m.info.type_name()
        )));
    }
    let (mut key_types, mut value_types, mut sum, mut raw) = (None, None, false, false);
    while let Some(word) = w.next() {
        match DumpOption::choose(&word)? {
            DumpOption::Key => key_types = Some(args::types(w, "key")?),
            DumpOption::Value => value_types = Some(args::types(w, "value")?),
            DumpOption::Raw => raw = true,
            DumpOption::Sum => sum = true,
        }
    }
    let mut format = entry_format(g, &m, key_types, value_types, sum, raw)?;
    format.bpftool = true;
    let mut out = Vec::with_capacity(FLUSH_BYTES + (64 << 10));
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    if g.json {
        out.push(b'[');
    }
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    m.for_each_batch(|keys, values, n| {
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
        Ok::<(), CliError>(())
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

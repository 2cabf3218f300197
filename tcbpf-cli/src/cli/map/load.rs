//! `load MAP key TYPES value TYPES [from FILE|-] [any|exist|noexist]`:
//! one entry per line, every line parsed before anything is written (a bad
//! line changes nothing), then written with UPDATE_BATCH in chunks of
//! thousands, or per element where the map type has no batch update.

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{choose, Words};
use super::args::{self, bad};
use super::OpenMap;
use std::io::Read;
use tcbpf::sys::map::{self as sysmap, update as flags};
use tcbpf::value::Layout;

/// Elements per UPDATE_BATCH call.
const CHUNK: usize = 1 << 16;

/// Runs `tcbpf map load …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    if m.is_queue_or_stack() {
        return Err(CliError::usage(format!("{}: load needs keys; use push for a {}", m.label, m.info.type_name())));
    }
    let (mut key_types, mut value_types, mut source, mut elem_flags) = (None, None, None, flags::ANY);
    while let Some(word) = w.next() {
        match choose(&word, &["key", "value", "from", "any", "exist", "noexist"], "load option")? {
            "key" => key_types = Some(args::types(w, "key")?),
            "value" => value_types = Some(args::types(w, "value")?),
            "from" => source = Some(w.expect("a file name (or -) after 'from'")?),
            "any" => elem_flags = flags::ANY,
            "exist" => elem_flags = flags::EXIST,
            _ => elem_flags = flags::NOEXIST,
        }
    }
    let key_types = key_types.ok_or_else(|| CliError::usage("load: expected 'key TYPES'"))?;
    let value_types = value_types.ok_or_else(|| CliError::usage("load: expected 'value TYPES'"))?;
    let key = args::layout(&key_types, m.info.key_size, "key")?;
    let value = args::layout(&value_types, m.info.value_size, "value")?;
    let input = read_input(source.as_deref())?;
    let (keys, values, n) = parse_lines(&input, &key, &value, &m)?;
    let written = write(&m, &keys, &values, n, elem_flags)?;
    if g.verbose {
        eprintln!("tcbpf: loaded {written} entries into {}", m.label);
    }
    Ok(())
}

fn read_input(source: Option<&str>) -> Result<Vec<u8>, CliError> {
    match source {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf).map_err(|e| CliError::from(e).context("standard input"))?;
            Ok(buf)
        }
        Some(path) => std::fs::read(path).map_err(|e| CliError::from(e).context(path)),
    }
}

/// Parses every line into packed keys and values (per-CPU values copied to
/// every CPU), returning them and the number of entries.
fn parse_lines(input: &[u8], key: &Layout, value: &Layout, m: &OpenMap) -> Result<(Vec<u8>, Vec<u8>, usize), CliError> {
    let lines_hint = input.len() / 8 + 1;
    let mut keys = Vec::with_capacity(lines_hint.min(1 << 22) * key.size());
    let mut values = Vec::with_capacity(lines_hint.min(1 << 22) * m.sizes.value());
    let mut scratch = Vec::with_capacity(value.size());
    let (stride, cpus) = (m.sizes.cpu_stride(), m.sizes.cpus());
    let percpu = m.is_percpu();
    let mut n = 0;
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty() && *t != b"key:" && *t != b"value:");
        let Some(first) = words.next() else { continue };
        if first.starts_with(b"#") {
            continue;
        }
        let at_line = |e: tcbpf::value::Error| bad(e).context(format!("line {}", i + 1));
        let mut words = std::iter::once(first).chain(words);
        key.encode_words(&mut words, "key", &mut keys).map_err(at_line)?;
        if percpu {
            scratch.clear();
            value.encode_words(&mut words, "value", &mut scratch).map_err(at_line)?;
            for _ in 0..cpus {
                values.extend_from_slice(&scratch);
                values.resize(values.len() + stride - scratch.len(), 0);
            }
        } else {
            value.encode_words(&mut words, "value", &mut values).map_err(at_line)?;
        }
        if let Some(extra) = words.next() {
            return Err(CliError::usage(format!(
                "line {}: unexpected word '{}' after the value",
                i + 1,
                String::from_utf8_lossy(extra)
            )));
        }
        n += 1;
    }
    Ok((keys, values, n))
}

/// Writes `n` packed entries: UPDATE_BATCH in chunks, or one by one when
/// the map type has no batch update.
fn write(m: &OpenMap, keys: &[u8], values: &[u8], n: usize, elem_flags: u64) -> Result<usize, CliError> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        match sysmap::update_batch(&m.fd, &m.sizes, &keys[done * ks..end * ks], &values[done * vs..end * vs], elem_flags) {
            Ok(k) => done += k,
            Err(p) if done == 0 && p.done == 0 && sysmap::is_unsupported(&p.error) => {
                return write_each(m, keys, values, n, elem_flags)
            }
            Err(p) => {
                return Err(m.err(p.error).context(format!("entry {} of {n} ({} written)", done + p.done + 1, done + p.done)))
            }
        }
    }
    Ok(done)
}

fn write_each(m: &OpenMap, keys: &[u8], values: &[u8], n: usize, elem_flags: u64) -> Result<usize, CliError> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    for i in 0..n {
        sysmap::update(&m.fd, &keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs], elem_flags)
            .map_err(|e| m.err(e).context(format!("entry {} of {n} ({i} written)", i + 1)))?;
    }
    Ok(n)
}

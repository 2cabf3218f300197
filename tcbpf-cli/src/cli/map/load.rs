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
        return Err(CliError::usage(format!(
            "{}: load needs keys; use push for a {}",
            m.label,
            m.info.type_name()
        )));
    }
    let (mut key_types, mut value_types, mut source, mut elem_flags) =
        (None, None, None, flags::ANY);
    while let Some(word) = w.next() {
        match choose(
            &word,
            &["key", "value", "from", "any", "exist", "noexist"],
            "load option",
        )? {
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
    let parsed = parse_lines(&input, &key, &value, &m)?;
    let written = write_parts(&m, &parsed, elem_flags)?;
    if g.verbose {
        eprintln!("tcbpf: loaded {written} entries into {}", m.label);
    }
    Ok(())
}

fn read_input(source: Option<&str>) -> Result<Vec<u8>, CliError> {
    match source {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::from(e).context("standard input"))?;
            Ok(buf)
        }
        Some(path) => std::fs::read(path).map_err(|e| CliError::from(e).context(path)),
    }
}

/// Entries parsed from the input, packed at the map's element sizes, in
/// one or more parts. A key always lands in the same part, so parts can be
/// written in parallel and a key given twice still ends with its last value.
struct Parsed {
    parts: Vec<Part>,
    total: usize,
}

#[derive(Default)]
struct Part {
    keys: Vec<u8>,
    values: Vec<u8>,
    n: usize,
}

/// Inputs larger than this are split into parts written by several threads.
const PARALLEL_MIN_BYTES: usize = 256 << 10;

/// Parses every line into packed keys and values (per-CPU values copied to
/// every CPU). Nothing is written until every line parsed.
fn parse_lines(
    input: &[u8],
    key: &Layout,
    value: &Layout,
    m: &OpenMap,
) -> Result<Parsed, CliError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let nparts = if input.len() >= PARALLEL_MIN_BYTES {
        threads
    } else {
        1
    };
    let lines_hint = (input.len() / 8 + 1).min(1 << 22) / nparts;
    let mut parts: Vec<Part> = (0..nparts)
        .map(|_| Part {
            keys: Vec::with_capacity(lines_hint * key.size()),
            values: Vec::with_capacity(lines_hint * m.sizes.value()),
            n: 0,
        })
        .collect();
    let mut kbuf = Vec::with_capacity(key.size());
    let mut vbuf = Vec::with_capacity(m.sizes.value());
    let mut scratch = Vec::with_capacity(value.size());
    let (stride, cpus) = (m.sizes.cpu_stride(), m.sizes.cpus());
    let percpu = m.is_percpu();
    let mut total = 0;
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
        kbuf.clear();
        vbuf.clear();
        key.encode_words(&mut words, "key", &mut kbuf)
            .map_err(at_line)?;
        if percpu {
            scratch.clear();
            value
                .encode_words(&mut words, "value", &mut scratch)
                .map_err(at_line)?;
            for _ in 0..cpus {
                vbuf.extend_from_slice(&scratch);
                vbuf.resize(vbuf.len() + stride - scratch.len(), 0);
            }
        } else {
            value
                .encode_words(&mut words, "value", &mut vbuf)
                .map_err(at_line)?;
        }
        if let Some(extra) = words.next() {
            return Err(CliError::usage(format!(
                "line {}: unexpected word '{}' after the value",
                i + 1,
                String::from_utf8_lossy(extra)
            )));
        }
        let part = &mut parts[if nparts == 1 {
            0
        } else {
            fnv1a(&kbuf) % nparts
        }];
        part.keys.extend_from_slice(&kbuf);
        part.values.extend_from_slice(&vbuf);
        part.n += 1;
        total += 1;
    }
    Ok(Parsed { parts, total })
}

/// FNV-1a over the key bytes: spreads keys over parts.
fn fnv1a(bytes: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    (h ^ (h >> 32)) as usize
}

/// Writes every part, in parallel when there are several; returns how
/// many entries were written or the first error with the count written.
fn write_parts(m: &OpenMap, parsed: &Parsed, elem_flags: u64) -> Result<usize, CliError> {
    let results: Vec<Result<usize, (usize, CliError)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parsed.parts[1..]
            .iter()
            .map(|p| scope.spawn(move || write(m, &p.keys, &p.values, p.n, elem_flags)))
            .collect();
        let first = &parsed.parts[0];
        let mut results = vec![write(m, &first.keys, &first.values, first.n, elem_flags)];
        for h in handles {
            results.push(
                h.join()
                    .unwrap_or_else(|_| Err((0, CliError::failure("load thread panicked")))),
            );
        }
        results
    });
    let written: usize = results
        .iter()
        .map(|r| match r {
            Ok(n) | Err((n, _)) => *n,
        })
        .sum();
    match results.into_iter().find_map(Result::err) {
        None => Ok(written),
        Some((_, e)) => Err(e.context(format!("{written} of {} entries written", parsed.total))),
    }
}

/// Writes `n` packed entries: UPDATE_BATCH in chunks, or one by one when
/// the map type has no batch update or `exist`/`noexist` was asked. On error, says how many were written.
fn write(
    m: &OpenMap,
    keys: &[u8],
    values: &[u8],
    n: usize,
    elem_flags: u64,
) -> Result<usize, (usize, CliError)> {
    if elem_flags != flags::ANY {
        // The kernel takes only ANY (and F_LOCK) for batches.
        return write_each(m, keys, values, n, elem_flags);
    }
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let mut done = 0;
    while done < n {
        let end = (done + CHUNK).min(n);
        match sysmap::update_batch(
            &m.fd,
            &m.sizes,
            &keys[done * ks..end * ks],
            &values[done * vs..end * vs],
            elem_flags,
        ) {
            Ok(k) => done += k,
            Err(p) if done == 0 && p.done == 0 && sysmap::is_unsupported(&p.error) => {
                return write_each(m, keys, values, n, elem_flags)
            }
            Err(p) => return Err((done + p.done, m.err(p.error))),
        }
    }
    Ok(done)
}

fn write_each(
    m: &OpenMap,
    keys: &[u8],
    values: &[u8],
    n: usize,
    elem_flags: u64,
) -> Result<usize, (usize, CliError)> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    for i in 0..n {
        sysmap::update(
            &m.fd,
            &keys[i * ks..(i + 1) * ks],
            &values[i * vs..(i + 1) * vs],
            elem_flags,
        )
        .map_err(|e| (i, m.err(e)))?;
    }
    Ok(n)
}

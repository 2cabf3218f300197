//! `load MAP json [from FILE|-] [replace] [partial]`: entries in the map's
//! own types, as `-j dump` prints them (one JSON array) or one
//! `{"key": …, "value": …}` object per line. Every entry is checked and
//! encoded before anything is written (a bad one names its line or entry
//! and the member path, exit 2); then UPDATE_BATCH. With `replace`, the
//! map ends equal to the input (keys not named are deleted, or zeroed in
//! arrays) and the counts of added, changed, unchanged and removed entries
//! are printed. Large NDJSON inputs are parsed by several threads.

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::load::{read_input, split_at_lines};
use super::typed::types;
use super::OpenMap;
use serde_json::Value;
use tcbpf::value::typed::{MapTypes, TypedError};

/// Inputs larger than this are parsed by several threads.
const PARALLEL_MIN_BYTES: usize = 256 << 10;

/// Entries packed at the map's element sizes.
#[derive(Default)]
pub(super) struct Packed {
    pub(super) keys: Vec<u8>,
    pub(super) values: Vec<u8>,
    n: usize,
}

keywords! {
    /// The options of `map load MAP json`.
    pub(crate) enum JsonOption("load json option") { From = "from", Replace = "replace", Partial = "partial" }
}

/// Runs `tcbpf map load MAP json …` (the `json` word already taken).
pub fn run(g: &Global, w: &mut Words, m: &OpenMap) -> Result<(), CliError> {
    let (mut source, mut replace, mut partial) = (None, false, false);
    while let Some(word) = w.next() {
        match JsonOption::choose(&word)? {
            JsonOption::From => source = Some(w.expect("a file name (or -) after 'from'")?),
            JsonOption::Replace => replace = true,
            JsonOption::Partial => partial = true,
        }
    }
    let untyped;
    let t = match types(g.verbose, m) {
        Some(t) => t,
        None => {
            let cpus = m.is_percpu().then(|| m.sizes.cpus());
            untyped = MapTypes::untyped(m.info.key_size as usize, m.info.value_size as usize, cpus);
            &untyped
        }
    };
    let input = read_input(g, source.as_deref())?;
    let packed = parse(&input, t, partial)?;
    if replace {
        let (ks, vs) = (m.sizes.key(), m.sizes.value());
        let entries: Vec<tcbpf::maps::Entry> = (0..packed.n)
            .map(|i| {
                (
                    packed.keys[i * ks..(i + 1) * ks].to_vec(),
                    packed.values[i * vs..(i + 1) * vs].to_vec(),
                )
            })
            .collect();
        return replace_with(g, m, &entries);
    }
    let n =
        tcbpf::maps::update_all(&m.fd, &packed.keys, &packed.values).map_err(|e| maps_err(m, e))?;
    if g.verbose {
        eline!("tcbpf: loaded {n} entries into {}", m.label);
    }
    Ok(())
}

/// Makes the map hold exactly `entries` and prints what changed
/// (`added 1, changed 2, unchanged 3, removed 4`, or that as JSON).
pub(super) fn replace_with(
    g: &Global,
    m: &OpenMap,
    entries: &[tcbpf::maps::Entry],
) -> Result<(), CliError> {
    let r = tcbpf::maps::apply(&m.fd, entries, true).map_err(|e| maps_err(m, e))?;
    if g.json {
        g.print_json(&serde_json::json!({
            "added": r.added, "changed": r.changed,
            "unchanged": r.unchanged, "removed": r.removed,
        }))?;
    } else {
        println!(
            "added {}, changed {}, unchanged {}, removed {}",
            r.added, r.changed, r.unchanged, r.removed
        );
    }
    Ok(())
}

fn maps_err(m: &OpenMap, e: tcbpf::maps::Error) -> CliError {
    match e {
        tcbpf::maps::Error::Sys(e) => CliError::from(m.err(e)),
        other => CliError::usage(format!("{}: {other}", m.label)),
    }
}

fn bad(e: TypedError) -> CliError {
    CliError::usage(e.to_string())
}

/// Every entry of the input, checked and packed; the first bad one is the
/// error (`line N: value.packets: …`, `entry N: …` in an array).
pub(super) fn parse(input: &[u8], t: &MapTypes, partial: bool) -> Result<Packed, CliError> {
    let start = input.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| input[i] == b'[') {
        let all: Vec<Value> = serde_json::from_slice(input)
            .map_err(|e| CliError::usage(format!("line {}: bad JSON: {e}", e.line())))?;
        let mut out = Packed::default();
        for (i, v) in all.iter().enumerate() {
            let (k, val) = t
                .entry_from_json(v, partial)
                .map_err(|e| bad(e.within(&format!("entry {}", i + 1))))?;
            out.keys.extend_from_slice(&k);
            out.values.extend_from_slice(&val);
            out.n += 1;
        }
        return Ok(out);
    }
    let threads = if input.len() >= PARALLEL_MIN_BYTES {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    } else {
        1
    };
    let stretches = split_at_lines(input, threads);
    let results: Vec<Result<(Packed, usize), (usize, CliError)>> = if stretches.len() == 1 {
        vec![parse_lines(stretches[0], t, partial)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = stretches
                .iter()
                .map(|s| scope.spawn(move || parse_lines(s, t, partial)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err((0, CliError::failure("parser thread panicked"))))
                })
                .collect()
        })
    };
    let mut out = Packed::default();
    let mut lines_before = 0;
    for r in results {
        match r {
            Ok((p, lines)) => {
                out.keys.extend_from_slice(&p.keys);
                out.values.extend_from_slice(&p.values);
                out.n += p.n;
                lines_before += lines;
            }
            Err((line, e)) => return Err(e.context(format!("line {}", lines_before + line))),
        }
    }
    Ok(out)
}

/// One stretch of NDJSON: its entries and its line count; an error gives
/// the line number within the stretch (1-based).
fn parse_lines(
    text: &[u8],
    t: &MapTypes,
    partial: bool,
) -> Result<(Packed, usize), (usize, CliError)> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut out = Packed::default();
    let mut lines = 0;
    if body.is_empty() {
        return Ok((out, 0));
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        lines = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        t.entry_from_json_line(line, partial, &mut out.keys, &mut out.values)
            .map_err(|e| (i + 1, bad(e)))?;
        out.n += 1;
    }
    Ok((out, lines))
}

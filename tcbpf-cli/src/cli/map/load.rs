//! `load MAP key TYPES value TYPES [from FILE|-] [any|exist|noexist] [replace]`:
//! one entry per line, every line parsed before anything is written (a bad
//! line changes nothing), then written with UPDATE_BATCH in chunks of
//! thousands, or per element where the map type has no batch update;
//! `replace` diff-applies them instead (keys not given are deleted).
//! `load MAP json …` is [`super::load_json`].

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::args::{self, bad};
use super::OpenMap;
use std::io::Read;
use tcbpf::sys::map::{self as sysmap, update as flags};
use tcbpf::value::Layout;

/// Elements per UPDATE_BATCH call.
const CHUNK: usize = 1 << 16;

keywords! {
    /// The options of `map load`.
    pub(crate) enum LoadOption("load option") {
        Key = "key",
        Value = "value",
        From = "from",
        Any = "any",
        Exist = "exist",
        NoExist = "noexist",
        Replace = "replace",
    }
}

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
    if w.peek() == Some("json") {
        w.next();
        return super::load_json::run(g, w, &m);
    }
    let (mut key_types, mut value_types, mut source, mut elem_flags) =
        (None, None, None, flags::ANY);
    let mut replace = false;
    while let Some(word) = w.next() {
        match LoadOption::choose(&word)? {
            LoadOption::Key => key_types = Some(args::types(w, "key")?),
            LoadOption::Value => value_types = Some(args::types(w, "value")?),
            LoadOption::From => source = Some(w.expect("a file name (or -) after 'from'")?),
            LoadOption::Replace => replace = true,
            LoadOption::Any => elem_flags = flags::ANY,
            LoadOption::Exist => elem_flags = flags::EXIST,
            LoadOption::NoExist => elem_flags = flags::NOEXIST,
        }
    }
    let key_types = key_types.ok_or_else(|| CliError::usage("load: expected 'key TYPES'"))?;
    let value_types = value_types.ok_or_else(|| CliError::usage("load: expected 'value TYPES'"))?;
    let key = args::layout(&key_types, m.info.key_size, "key")?;
    let value = args::layout(&value_types, m.info.value_size, "value")?;
    let input = read_input(g, source.as_deref())?;
    let parsed = parse_lines(&input, &key, &value, &m)?;
    if replace {
        return super::load_json::replace_with(g, &m, &parsed.entries(&m));
    }
    let written = write_parts(&m, &parsed, elem_flags)?;
    if g.verbose {
        eline!("tcbpf: loaded {written} entries into {}", m.label);
    }
    Ok(())
}

/// Longest `load` line: a stream without newlines is an error after this
/// many bytes, not a read until memory runs out.
pub const MAX_LINE_BYTES: usize = 1 << 20;

pub(super) fn read_input(g: &Global, source: Option<&str>) -> Result<Vec<u8>, CliError> {
    match source {
        None | Some("-") if g.stdin_taken => Err(CliError::usage(
            "load: standard input holds the batch's own commands: inside a batch, load reads only 'from FILE'",
        )),
        None | Some("-") => read_lines_bounded(&mut std::io::stdin().lock())
            .map_err(|e| e.context("standard input")),
        Some(path) => {
            let mut file =
                std::fs::File::open(path).map_err(|e| CliError::from(e).context(path))?;
            read_lines_bounded(&mut file).map_err(|e| e.context(path))
        }
    }
}

/// Reads everything, failing as soon as one line passes [`MAX_LINE_BYTES`],
/// or, in a JSON array (a `dump -j`, printed on one line), one element.
fn read_lines_bounded(input: &mut dyn Read) -> Result<Vec<u8>, CliError> {
    const CHUNK_BYTES: usize = 1 << 20;
    let mut buf: Vec<u8> = Vec::new();
    let mut line_start = 0;
    // The input's first byte that is not white space, once it has come:
    // `[` is a JSON array, bounded per element.
    let mut first: Option<u8> = None;
    let mut array: Option<ArrayScan> = None;
    loop {
        let old = buf.len();
        buf.resize(old + CHUNK_BYTES, 0);
        let n = loop {
            match input.read(&mut buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CliError::from(e)),
            }
        };
        buf.truncate(old + n);
        if n == 0 {
            return Ok(buf);
        }
        if first.is_none() {
            first = buf[old..]
                .iter()
                .copied()
                .find(|b| !b.is_ascii_whitespace());
            if first == Some(b'[') {
                array = Some(ArrayScan::default());
            }
        }
        if let Some(scan) = &mut array {
            scan.feed(&buf, old);
            if buf.len() - scan.element_start > MAX_LINE_BYTES {
                return Err(CliError::usage(format!(
                    "element {} of the JSON array is longer than {MAX_LINE_BYTES} bytes",
                    scan.elements + 1
                )));
            }
            continue;
        }
        if let Some(p) = buf[old..].iter().rposition(|&b| b == b'\n') {
            line_start = old + p + 1;
        }
        if buf.len() - line_start > MAX_LINE_BYTES {
            let line = buf[..line_start].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(CliError::usage(format!(
                "line {line} is longer than {MAX_LINE_BYTES} bytes (no newline within the bound)"
            )));
        }
    }
}

/// Where the elements of a top-level JSON array start, found as the input
/// arrives: a comma at depth 1, outside strings, ends one. Only bounds the
/// read; the parser checks the JSON.
#[derive(Default)]
struct ArrayScan {
    depth: usize,
    in_string: bool,
    escaped: bool,
    element_start: usize,
    elements: usize,
}

impl ArrayScan {
    /// Scans `buf[from..]`, the bytes that arrived.
    fn feed(&mut self, buf: &[u8], from: usize) {
        for (i, &b) in buf.iter().enumerate().skip(from) {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b',' if self.depth == 1 => {
                    self.element_start = i + 1;
                    self.elements += 1;
                }
                _ => {}
            }
        }
    }
}

/// Entries parsed from the input, packed at the map's element sizes: for
/// each stretch of lines, one part per writer. A key always goes to the same
/// writer, which writes its parts in input order, so parts can be written
/// in parallel and a key given twice still ends with its last value.
pub(super) struct Parsed {
    /// `stretches[s][w]`: the entries of stretch `s` for writer `w`.
    stretches: Vec<Vec<Part>>,
    total: usize,
}

impl Parsed {
    /// Every entry packed in one key buffer and one value buffer, a key
    /// given twice still in input order (so the last one wins a batch).
    pub(super) fn packed(&self) -> (Vec<u8>, Vec<u8>) {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for p in self.stretches.iter().flatten() {
            keys.extend_from_slice(&p.keys);
            values.extend_from_slice(&p.values);
        }
        (keys, values)
    }

    /// The entries in input order per key (for `replace`).
    fn entries(&self, m: &OpenMap) -> Vec<tcbpf::maps::Entry> {
        let (ks, vs) = (m.sizes.key(), m.sizes.value());
        let mut out = Vec::with_capacity(self.total);
        for p in self.stretches.iter().flatten() {
            for i in 0..p.n {
                out.push((
                    p.keys[i * ks..(i + 1) * ks].to_vec(),
                    p.values[i * vs..(i + 1) * vs].to_vec(),
                ));
            }
        }
        out
    }
}

#[derive(Default)]
struct Part {
    keys: Vec<u8>,
    values: Vec<u8>,
    n: usize,
}

/// Inputs larger than this are parsed and written by several threads.
const PARALLEL_MIN_BYTES: usize = 256 << 10;

/// Why a line did not parse: the line's number within its stretch, and the error.
struct LineError {
    line: usize,
    error: CliError,
}

/// Parses every line into packed keys and values (per-CPU values copied to
/// every CPU). Nothing is written until every line parsed; the error of the
/// first bad line names its line number.
pub(super) fn parse_lines(
    input: &[u8],
    key: &Layout,
    value: &Layout,
    m: &OpenMap,
) -> Result<Parsed, CliError> {
    // Asked only for large inputs: it reads cgroup files.
    let writers = if input.len() >= PARALLEL_MIN_BYTES {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    } else {
        1
    };
    let stretches = split_at_lines(input, writers);
    let results: Vec<Result<(Vec<Part>, usize), LineError>> = if stretches.len() == 1 {
        vec![parse_stretch(stretches[0], key, value, m, writers)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = stretches
                .iter()
                .map(|text| scope.spawn(move || parse_stretch(text, key, value, m, writers)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LineError {
                            line: 0,
                            error: CliError::failure("parser thread panicked"),
                        })
                    })
                })
                .collect()
        })
    };
    let mut parsed = Parsed {
        stretches: Vec::new(),
        total: 0,
    };
    let mut lines_before = 0;
    for result in results {
        match result {
            Ok((parts, lines)) => {
                parsed.total += parts.iter().map(|p| p.n).sum::<usize>();
                parsed.stretches.push(parts);
                lines_before += lines;
            }
            Err(LineError { line, error }) => {
                return Err(error.context(format!("line {}", lines_before + line + 1)))
            }
        }
    }
    Ok(parsed)
}

/// Cuts `input` into up to `n` stretches of whole lines of about equal size.
pub(super) fn split_at_lines(input: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = input;
    for i in (1..=n).rev() {
        if i == 1 || rest.is_empty() {
            out.push(rest);
            break;
        }
        let target = rest.len() / i;
        let Some(p) = rest[target..].iter().position(|&b| b == b'\n') else {
            out.push(rest);
            break;
        };
        let cut = target + p + 1;
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// Parses one stretch of lines into one part per writer; returns the parts
/// and the number of lines (blank and comment lines included).
fn parse_stretch(
    text: &[u8],
    key: &Layout,
    value: &Layout,
    m: &OpenMap,
    writers: usize,
) -> Result<(Vec<Part>, usize), LineError> {
    let lines_hint = (text.len() / 8 + 1).min(1 << 22) / writers;
    let mut parts: Vec<Part> = (0..writers)
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
    let lpm = m.kind == Some(tcbpf::abi::MapType::LpmTrie);
    let mut masked = Vec::new();
    // A final newline ends the last line rather than starting another.
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut lines = 0;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        lines = i + 1;
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|t| !t.is_empty() && *t != b"key:" && *t != b"value:");
        let Some(first) = words.next() else { continue };
        if first.starts_with(b"#") {
            continue;
        }
        let at_line = |e: tcbpf::value::Error| LineError {
            line: i,
            error: bad(e),
        };
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
            return Err(LineError {
                line: i,
                error: CliError::usage(format!(
                    "unexpected word '{}' after the value",
                    tcbpf::value::shown(extra)
                )),
            });
        }
        let part = &mut parts[if writers == 1 {
            0
        } else if lpm {
            // Keys that differ only in host bits are one trie entry: they
            // must meet in the same writer for the last line to win.
            lpm_entry_key(&kbuf, &mut masked);
            fnv1a(&masked) % writers
        } else {
            fnv1a(&kbuf) % writers
        }];
        part.keys.extend_from_slice(&kbuf);
        part.values.extend_from_slice(&vbuf);
        part.n += 1;
    }
    Ok((parts, lines))
}

/// An LPM trie key (`u32` prefix length in host order, then the data) as
/// the kernel stores it: the prefix length capped at the data's bits and
/// every bit after the prefix cleared.
fn lpm_entry_key(key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(key);
    if key.len() < 4 {
        return;
    }
    let data_bits = (key.len() - 4) * 8;
    let prefix = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]) as usize;
    let bits = prefix.min(data_bits);
    out[..4].copy_from_slice(&(bits as u32).to_ne_bytes());
    let data = &mut out[4..];
    let (whole, rest) = (bits / 8, bits % 8);
    if whole < data.len() {
        data[whole] &= !(0xffu8 >> rest);
        data[whole + 1..].fill(0);
    }
}

/// FNV-1a over the key bytes: spreads keys over writers.
fn fnv1a(bytes: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    (h ^ (h >> 32)) as usize
}

/// Writes every writer's parts, writers in parallel when there are
/// several; returns how many entries were written or the first error with
/// the count written.
fn write_parts(m: &OpenMap, parsed: &Parsed, elem_flags: u64) -> Result<usize, CliError> {
    let writers = parsed.stretches.first().map_or(0, Vec::len);
    let write_one = |w: usize| -> Result<usize, (usize, CliError)> {
        let mut written = 0;
        for parts in &parsed.stretches {
            let p = &parts[w];
            written +=
                write(m, &p.keys, &p.values, p.n, elem_flags).map_err(|(n, e)| (written + n, e))?;
        }
        Ok(written)
    };
    let results: Vec<Result<usize, (usize, CliError)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..writers)
            .map(|w| scope.spawn(move || write_one(w)))
            .collect();
        let mut results = vec![if writers > 0 { write_one(0) } else { Ok(0) }];
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
            Err(p) => return Err((done + p.done, CliError::from(m.err(p.error)))),
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
        .map_err(|e| (i, CliError::from(m.err(e))))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lpm_entry_key_clears_host_bits_and_caps_the_prefix() {
        let mut out = Vec::new();
        let key = |len: u32, ip: [u8; 4]| {
            let mut k = len.to_ne_bytes().to_vec();
            k.extend_from_slice(&ip);
            k
        };
        super::lpm_entry_key(&key(26, [10, 1, 2, 0xff]), &mut out);
        assert_eq!(out, key(26, [10, 1, 2, 0xc0]));
        super::lpm_entry_key(&key(24, [10, 1, 2, 3]), &mut out);
        assert_eq!(out, key(24, [10, 1, 2, 0]));
        super::lpm_entry_key(&key(99, [10, 1, 2, 3]), &mut out);
        assert_eq!(out, key(32, [10, 1, 2, 3]));
        super::lpm_entry_key(&key(0, [10, 1, 2, 3]), &mut out);
        assert_eq!(out, key(0, [0, 0, 0, 0]));
    }

    use super::*;

    #[test]
    fn stretches_hold_whole_lines_and_cover_the_input() {
        let input = b"1 10\n22 220\n333 3300\n4 40\n55 550";
        for n in 1..=4 {
            let parts = split_at_lines(input, n);
            assert!(parts.len() <= n);
            assert_eq!(parts.concat(), input.to_vec(), "{n}");
            for p in &parts[..parts.len() - 1] {
                assert_eq!(
                    p.last(),
                    Some(&b'\n'),
                    "{n}: {:?}",
                    String::from_utf8_lossy(p)
                );
            }
        }
        assert_eq!(split_at_lines(b"", 3), vec![b"".as_slice()]);
    }

    #[test]
    fn keys_spread_over_writers() {
        let mut seen = [0usize; 2];
        for k in 0u32..1000 {
            seen[fnv1a(&k.to_ne_bytes()) % 2] += 1;
        }
        assert!(seen[0] > 400 && seen[1] > 400, "{seen:?}");
    }
}

//! `events MAP [value TYPES | type NAME [btf FILE]] [count N] [timeout SECS]
//! [pages N]`: prints the events a program writes to a ring buffer or a
//! perf event array, one line each as they arrive, typed by TYPES, by a
//! BTF type, or as hex. Lost samples and a full ring buffer are printed
//! as their own lines. Stops after `count` events, after `timeout`
//! seconds, on SIGINT/SIGTERM (also while its output pipe is full), or when
//! the output pipe closes; sleeps in epoll when idle. The reading is `tcbpf::events`; this file is words
//! and formatting.

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::args;
use super::OpenMap;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tcbpf::btf::{Btf, Kind, TypeId};
use tcbpf::events::{EventReader, Record, Wake, DEFAULT_PERF_PAGES};
use tcbpf::sys;
use tcbpf::value::{format, FieldType, Layout};

/// How event bytes are shown.
enum Shape {
    Hex,
    Types(Vec<FieldType>, HashMap<usize, Option<Layout>>),
    Btf(Btf, TypeId, usize),
}

keywords! {
    /// The options of `map events`.
    pub(crate) enum EventsOption("events option") {
        Value = "value",
        Type = "type",
        Btf = "btf",
        Count = "count",
        Timeout = "timeout",
        Pages = "pages",
    }
}

/// Runs `tcbpf map events …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    let (mut types, mut type_name, mut btf_file) = (None, None, None);
    let (mut count, mut timeout, mut pages) = (None, None, DEFAULT_PERF_PAGES);
    while let Some(word) = w.next() {
        match EventsOption::choose(&word)? {
            EventsOption::Value => types = Some(args::types(w, "value")?),
            EventsOption::Type => type_name = Some(w.expect("a BTF type name after 'type'")?),
            EventsOption::Btf => btf_file = Some(PathBuf::from(w.expect("a file after 'btf'")?)),
            EventsOption::Count => {
                count = Some(w.number::<u64>("a number of events after 'count'")?)
            }
            EventsOption::Timeout => {
                let s: String = w.expect("seconds after 'timeout'")?;
                let secs: f64 = s
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| CliError::usage(format!("timeout: bad seconds '{s}'")))?;
                timeout = Some(Duration::from_secs_f64(secs));
            }
            EventsOption::Pages => {
                pages = w.number::<usize>("a number of pages after 'pages'")?;
                if pages == 0 || !pages.is_power_of_two() || pages > 1 << 16 {
                    return Err(CliError::usage("pages: a power of 2 from 1 to 65536"));
                }
            }
        }
    }
    if types.is_some() && type_name.is_some() {
        return Err(CliError::usage(
            "give 'value TYPES' or 'type NAME', not both",
        ));
    }
    if btf_file.is_some() && type_name.is_none() {
        return Err(CliError::usage("'btf FILE' goes with 'type NAME'"));
    }
    let shape = match (types, type_name) {
        (Some(t), _) => Shape::Types(t, HashMap::new()),
        (None, Some(name)) => {
            let btf = match &btf_file {
                Some(f) => btf_from_file(f)?,
                None => btf_of_programs_using(&m)?,
            };
            let id = find_type(&btf, &name)?;
            let size = btf
                .resolve_size(id)
                .map_err(|e| CliError::usage(format!("type '{name}': {e}")))?
                as usize;
            Shape::Btf(btf, id, size)
        }
        _ => Shape::Hex,
    };
    let mut reader = EventReader::open(&m.fd, &m.info, pages).map_err(|e| match e {
        tcbpf::events::Error::NotAStream(_) => CliError::usage(format!("{}: {e}", m.label)),
        tcbpf::events::Error::Sys(s) => CliError::from(m.err(s)),
    })?;
    reader
        .watch_stop_signals()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let stdout = std::io::stdout();
    reader.watch_output(stdout.as_fd());
    if g.verbose {
        // Scripts wait for this line: from here on no event is missed.
        eline!(
            "{}: reading {} events ({} ring{})",
            m.label,
            m.info.type_name(),
            reader.rings(),
            if reader.rings() == 1 { "" } else { "s" }
        );
    }
    let perf = m.kind == Some(tcbpf::abi::MapType::PerfEventArray);
    let mut shape = shape;
    let (mut seen, mut lost, mut full) = (0u64, 0u64, 0u64);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let stop_reason = loop {
        if count.is_some_and(|c| seen >= c) {
            break "count reached";
        }
        let left = match deadline {
            Some(d) => {
                let l = d.saturating_duration_since(Instant::now());
                if l.is_zero() {
                    break "timeout";
                }
                Some(l)
            }
            None => None,
        };
        let wake = reader
            .poll(left, |rec| {
                match rec {
                    Record::Sample { cpu, data } => {
                        write_event(g.json, perf, cpu, data, &mut shape, &mut buf);
                        seen += 1;
                    }
                    Record::Lost { cpu, count: n } => {
                        lost += n;
                        if g.json {
                            let _ = writeln!(buf, "{{\"lost\":{n},\"cpu\":{cpu}}}");
                        } else {
                            let _ = writeln!(buf, "lost {n} samples (cpu {cpu})");
                        }
                    }
                    Record::RingFull { pending } => {
                        full += 1;
                        if g.json {
                            let _ = writeln!(buf, "{{\"ring_full\":{{\"pending\":{pending}}}}}");
                        } else {
                            let _ = writeln!(buf, "ring buffer full ({pending} bytes pending)");
                        }
                    }
                }
                count.map_or(true, |c| seen < c)
            })
            .map_err(|e| CliError::failure(format!("{}: {e}", m.label)))?;
        if !buf.is_empty() {
            // Written without blocking past SIGINT/SIGTERM: a full pipe
            // nobody reads does not keep the reader alive.
            let stopped = reader
                .write_output(stdout.as_fd(), &buf)
                .map_err(|e| CliError::failure(format!("{}: {e}", m.label)))?;
            buf.clear();
            match stopped {
                Some(Wake::Signal(_)) => break "interrupted",
                Some(_) => break "output closed",
                None => {}
            }
        }
        match wake {
            Wake::Signal(_) => break "interrupted",
            Wake::OutputClosed => break "output closed",
            Wake::Timeout | Wake::Records => {}
        }
    };
    if g.verbose {
        eline!("{}: stopped ({stop_reason}) after {seen} events", m.label);
    }
    if lost > 0 || full > 0 {
        eline!(
            "{}: {seen} events, {lost} lost samples, ring buffer found full {full} times",
            m.label
        );
    }
    Ok(())
}

/// Appends one event line.
fn write_event(
    json: bool,
    perf: bool,
    cpu: Option<u32>,
    data: &[u8],
    shape: &mut Shape,
    out: &mut Vec<u8>,
) {
    if json {
        out.push(b'{');
        if let Some(c) = cpu {
            let _ = write!(out, "\"cpu\":{c},");
        }
        out.extend_from_slice(b"\"value\":");
    } else if let Some(c) = cpu {
        let _ = write!(out, "cpu {c}: ");
    }
    match shape {
        Shape::Hex => hex(json, data, out),
        Shape::Types(types, layouts) => {
            let layout = layouts
                .entry(data.len())
                .or_insert_with(|| layout_for(types, data.len(), perf));
            match layout {
                Some(l) if json => l.write_json(&data[..l.size()], out),
                Some(l) => l.write_text(&data[..l.size()], out),
                None => hex(json, data, out),
            }
        }
        Shape::Btf(btf, id, size) => {
            match (data.len() >= *size).then(|| tcbpf::btf::fmt::decode(btf, *id, &data[..*size])) {
                Some(Ok(v)) if json => out.extend_from_slice(v.to_json().as_bytes()),
                // The text form of dumps and lookups (`{seq: 6}`), not
                // the C-like `{.seq = 6}` of BtfValue's Display.
                Some(Ok(v)) => tcbpf::value::typed::write_text(&v, out),
                _ => hex(json, data, out),
            }
        }
    }
    if json {
        out.push(b'}');
    }
    out.push(b'\n');
}

fn hex(json: bool, data: &[u8], out: &mut Vec<u8>) {
    if json {
        format::write_hex_json(data, out);
    } else {
        format::write_hex_spaced(data, out);
    }
}

/// The layout of TYPES for a record of `len` bytes: exact, or (perf, whose
/// samples the kernel pads to 8 bytes) the fixed types' size when fewer
/// than 8 bytes of padding follow. `None`: shown as hex.
fn layout_for(types: &[FieldType], len: usize, perf: bool) -> Option<Layout> {
    if let Ok(l) = Layout::new(types, len, "event") {
        return Some(l);
    }
    let fixed: Option<usize> = types.iter().map(|t| t.fixed_size()).sum();
    match fixed {
        Some(f) if perf && len > f && len - f < 8 => Layout::new(types, f, "event").ok(),
        _ => None,
    }
}

/// The BTF of an object file (ELF with `.BTF`) or a raw BTF file.
fn btf_from_file(path: &PathBuf) -> Result<Btf, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::from(e).context(path.display()))?;
    if bytes.starts_with(b"\x7fELF") {
        let spec = tcbpf::elf::ObjectSpec::parse(&path.display().to_string(), &bytes)
            .map_err(|e| CliError::usage(e.to_string()))?;
        return spec
            .btf
            .ok_or_else(|| CliError::usage(format!("{}: the object has no BTF", path.display())));
    }
    Btf::parse(&bytes).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// The BTF of the first loaded program that uses the map.
fn btf_of_programs_using(m: &OpenMap) -> Result<Btf, CliError> {
    let mut id = 0;
    while let Some(next) = sys::obj::next_prog_id(id).map_err(CliError::from)? {
        id = next;
        let Ok(prog) = sys::obj::prog_by_id(id) else {
            continue;
        };
        let Ok(info) = sys::info::prog_info(&prog) else {
            continue;
        };
        if info.btf_id == 0 || !info.map_ids.contains(&m.info.id) {
            continue;
        }
        let btf = sys::obj::btf_by_id(info.btf_id).map_err(CliError::from)?;
        let data = sys::info::btf_data(&btf).map_err(CliError::from)?;
        return Btf::parse(&data)
            .map_err(|e| CliError::failure(format!("BTF of program {}: {e}", info.name)));
    }
    Err(CliError::not_found(format!(
        "{}: no loaded program with BTF uses this map (give 'btf FILE')",
        m.label
    )))
}

/// The type called `name` (`struct NAME`, `union NAME`, `enum NAME` or a
/// bare name: struct, union, typedef, integer, enum).
fn find_type(btf: &Btf, name: &str) -> Result<TypeId, CliError> {
    let (want, bare) = match name.split_once(' ') {
        Some((k @ ("struct" | "union" | "enum"), n)) => (Some(k), n.trim()),
        _ => (None, name),
    };
    btf.ids_named(bare)
        .into_iter()
        .find(|&id| {
            let Ok(t) = btf.ty(id) else { return false };
            matches!(
                (want, &t.kind),
                (Some("struct") | None, Kind::Struct(_))
                    | (Some("union") | None, Kind::Union(_))
                    | (Some("enum") | None, Kind::Enum(_) | Kind::Enum64(_))
                    | (None, Kind::Typedef(_) | Kind::Int(_))
            )
        })
        .ok_or_else(|| CliError::not_found(format!("no BTF type '{name}'")))
}

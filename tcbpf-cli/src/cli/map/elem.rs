//! The one-element verbs: lookup, update, delete, next, and push/pop/peek
//! for queue and stack maps. Each is one bpf(2) call after opening the map:
//! a single update either happens whole or not at all.

use super::super::error::{CliError, Exit};
use super::super::output::Global;
use super::super::words::{choose, Words};
use super::args::{self, bad};
use super::entry::{write_side, EntryFormat};
use super::OpenMap;
use std::io::Write;
use tcbpf::sys::map::{self as sysmap, update as flags};
use tcbpf::value::{Data, Layout};

/// `lookup MAP key DATA [value TYPES] [sum] [lock]` (a queue or stack
/// takes no key and peeks).
pub fn lookup(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse_read(w)?;
    if m.is_queue_or_stack() && !w.eat("key") {
        return peek_or_pop(g, w, m, false);
    }
    if !w.eat("key") {
        return Err(CliError::usage("lookup: expected 'key DATA'"));
    }
    let (key, key_layout) = key_data(w, &m, &["value", "sum", "lock"])?;
    let mut value_types = None;
    let (mut sum, mut lock) = (false, false);
    while let Some(word) = w.next() {
        match choose(&word, &["value", "sum", "lock"], "lookup option")? {
            "value" => value_types = Some(args::types(w, "value")?),
            "sum" => sum = true,
            _ => lock = true,
        }
    }
    let format = entry_format(g, &m, None, value_types, sum)?;
    let mut value = vec![0u8; m.sizes.value()];
    let lookup_flags = if lock { flags::F_LOCK } else { 0 };
    sysmap::lookup(&m.fd, &key, &mut value, lookup_flags).map_err(|e| {
        if e.is_not_found() {
            key_not_found(&m, &key_layout, &key)
        } else if lock && e.errno() == Some(libc::EINVAL) {
            lock_refused(&m)
        } else {
            m.err(e)
        }
    })?;
    let format = EntryFormat {
        key: key_layout,
        ..format
    };
    let mut out = Vec::with_capacity(256);
    format.write_entry(Some(&key), &value, &mut out);
    emit(g, out)
}

/// `update MAP key DATA value DATA [any|exist|noexist] [lock]`.
pub fn update(w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    let stops = ["value", "any", "exist", "noexist", "lock"];
    if !w.eat("key") {
        return Err(CliError::usage("update: expected 'key DATA value DATA'"));
    }
    let (key, key_layout) = key_data(w, &m, &stops)?;
    if !w.eat("value") {
        return Err(CliError::usage(
            "update: expected 'value DATA' after the key",
        ));
    }
    let value = value_data(&m, args::data(w, "value", &stops)?)?;
    let mut update_flags = flags::ANY;
    while let Some(word) = w.next() {
        match choose(&word, &["any", "exist", "noexist", "lock"], "update flag")? {
            "any" => update_flags = (update_flags & flags::F_LOCK) | flags::ANY,
            "exist" => update_flags = (update_flags & flags::F_LOCK) | flags::EXIST,
            "noexist" => update_flags = (update_flags & flags::F_LOCK) | flags::NOEXIST,
            _ => update_flags |= flags::F_LOCK,
        }
    }
    sysmap::update(&m.fd, &key, &value, update_flags).map_err(|e| match e.errno() {
        Some(libc::ENOENT) if update_flags & 3 == flags::EXIST => {
            key_not_found(&m, &key_layout, &key)
        }
        Some(libc::EEXIST) => CliError::usage(format!(
            "{}: key {} exists already (noexist)",
            m.label,
            key_text(&key_layout, &key)
        )),
        Some(libc::E2BIG) => CliError::failure(format!(
            "{}: map is full ({} entries) or key out of range",
            m.label, m.info.max_entries
        )),
        Some(libc::EINVAL) if update_flags & flags::F_LOCK != 0 => lock_refused(&m),
        _ => m.err(e),
    })
}

/// The kernel's EINVAL for `lock` (BPF_F_LOCK) on a map whose value has no
/// `bpf_spin_lock`, said in the user's words.
fn lock_refused(m: &OpenMap) -> CliError {
    CliError::usage(format!(
        "{}: 'lock' needs a map whose BTF value type holds a bpf_spin_lock; this one has none (EINVAL)",
        m.label
    ))
}

/// `delete MAP key DATA`.
pub fn delete(w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    if !w.eat("key") {
        return Err(CliError::usage("delete: expected 'key DATA'"));
    }
    let (key, key_layout) = key_data(w, &m, &[])?;
    sysmap::delete(&m.fd, &key).map_err(|e| {
        if e.is_not_found() {
            key_not_found(&m, &key_layout, &key)
        } else {
            m.err(e)
        }
    })
}

/// `next MAP [key DATA]`: the key after the given one, or the first key.
pub fn next(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse_read(w)?;
    let given = if w.eat("key") {
        Some(key_data(w, &m, &[])?)
    } else {
        None
    };
    w.finish()?;
    let mut next = vec![0u8; m.sizes.key()];
    let found = sysmap::next_key(&m.fd, given.as_ref().map(|(k, _)| k.as_slice()), &mut next)
        .map_err(|e| m.err(e))?;
    let layout = given.as_ref().and_then(|(_, l)| l.clone());
    if !found {
        return Err(CliError::not_found(match &given {
            Some((k, l)) => format!("{}: no key after {}", m.label, key_text(l, k)),
            None => format!("{}: map is empty", m.label),
        }));
    }
    let mut out = Vec::with_capacity(128);
    if g.json {
        out.extend_from_slice(b"{\"next_key\":");
        write_side(&layout, &next, true, &mut out);
        out.push(b'}');
    } else {
        out.extend_from_slice(b"next key: ");
        write_side(&layout, &next, false, &mut out);
        out.push(b'\n');
    }
    emit(g, out)
}

/// `push MAP value DATA [exist]`: `exist` overwrites the oldest element of a full map.
pub fn push(w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    if !m.is_queue_or_stack() {
        return Err(CliError::usage(format!(
            "{}: push needs a queue or stack map",
            m.label
        )));
    }
    if !w.eat("value") {
        return Err(CliError::usage("push: expected 'value DATA'"));
    }
    let data = args::data(w, "value", &["exist"])?;
    let value = data
        .into_exact(m.info.value_size as usize, "value")
        .map_err(bad)?;
    let push_flags = if w.eat("exist") {
        flags::EXIST
    } else {
        flags::ANY
    };
    w.finish()?;
    sysmap::push(&m.fd, &value, push_flags).map_err(|e| match e.errno() {
        Some(libc::E2BIG) => CliError::failure(format!(
            "{}: {} is full ({} elements); 'exist' overwrites the oldest",
            m.label,
            m.info.type_name(),
            m.info.max_entries
        )),
        _ => m.err(e),
    })
}

/// `pop MAP [value TYPES]` and `peek MAP [value TYPES]`.
pub fn pop_or_peek(g: &Global, w: &mut Words, pop: bool) -> Result<(), CliError> {
    let m = if pop {
        OpenMap::parse(w)?
    } else {
        OpenMap::parse_read(w)?
    };
    if !m.is_queue_or_stack() {
        let verb = if pop { "pop" } else { "peek" };
        return Err(CliError::usage(format!(
            "{}: {verb} needs a queue or stack map",
            m.label
        )));
    }
    peek_or_pop(g, w, m, pop)
}

fn peek_or_pop(g: &Global, w: &mut Words, m: OpenMap, pop: bool) -> Result<(), CliError> {
    let value_types = if w.eat("value") {
        Some(args::types(w, "value")?)
    } else {
        None
    };
    w.finish()?;
    let format = entry_format(g, &m, None, value_types, false)?;
    let mut value = vec![0u8; m.sizes.value()];
    let done = if pop {
        sysmap::pop(&m.fd, &mut value)
    } else {
        sysmap::peek(&m.fd, &mut value)
    };
    done.map_err(|e| {
        if e.is_not_found() {
            CliError::not_found(format!("{}: {} is empty", m.label, m.info.type_name()))
        } else {
            m.err(e)
        }
    })?;
    let mut out = Vec::with_capacity(128);
    format.write_entry(None, &value, &mut out);
    emit(g, out)
}

/// The entry format for `m` with optional key and value types.
pub fn entry_format(
    g: &Global,
    m: &OpenMap,
    key_types: Option<Vec<tcbpf::value::FieldType>>,
    value_types: Option<Vec<tcbpf::value::FieldType>>,
    sum: bool,
) -> Result<EntryFormat, CliError> {
    let key = match key_types {
        Some(t) => Some(args::layout(&t, m.info.key_size, "key")?),
        None => None,
    };
    let value = match value_types {
        Some(t) => Some(args::layout(&t, m.info.value_size, "value")?),
        None => None,
    };
    let percpu = m.is_percpu().then(|| {
        (
            m.sizes.cpu_stride(),
            m.sizes.cpus(),
            m.info.value_size as usize,
        )
    });
    let format = EntryFormat {
        key,
        value,
        json: g.json,
        percpu,
        sum,
    };
    format.check()?;
    Ok(format)
}

/// Reads `DATA` for a key of `m`: the exact bytes, and the layout of its
/// types when every field was typed (to print the key back the same way).
pub(super) fn key_data(
    w: &mut Words,
    m: &OpenMap,
    stops: &[&str],
) -> Result<(Vec<u8>, Option<Layout>), CliError> {
    let data = args::data(w, "key", stops)?;
    let layout = data
        .types()
        .and_then(|t| Layout::new(t, m.info.key_size as usize, "key").ok());
    let key = data
        .into_exact(m.info.key_size as usize, "key")
        .map_err(bad)?;
    Ok((key, layout))
}

/// The value buffer for an update: exact for ordinary maps; for per-CPU
/// maps one value copied to every CPU, or one value per CPU.
fn value_data(m: &OpenMap, data: Data) -> Result<Vec<u8>, CliError> {
    let size = m.info.value_size as usize;
    if !m.is_percpu() {
        return data.into_exact(size, "value").map_err(bad);
    }
    let (stride, cpus) = (m.sizes.cpu_stride(), m.sizes.cpus());
    let per_cpu = !data.has_text() && data.fixed_len() == size * cpus && cpus > 1;
    let bytes = if per_cpu {
        data.into_bytes()
    } else {
        data.into_exact(size, "value").map_err(|e| {
            CliError::usage(format!(
                "{e} (or {} for one value per each of {cpus} CPUs)",
                size * cpus
            ))
        })?
    };
    let mut value = vec![0u8; m.sizes.value()];
    for cpu in 0..cpus {
        let src = if per_cpu {
            &bytes[cpu * size..(cpu + 1) * size]
        } else {
            &bytes[..]
        };
        value[cpu * stride..cpu * stride + size].copy_from_slice(src);
    }
    Ok(value)
}

pub(super) fn key_text(layout: &Option<Layout>, key: &[u8]) -> String {
    let mut out = Vec::new();
    write_side(layout, key, false, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn key_not_found(m: &OpenMap, layout: &Option<Layout>, key: &[u8]) -> CliError {
    CliError {
        exit: Exit::NotFound,
        message: format!("{}: key {} not found", m.label, key_text(layout, key)),
    }
}

/// Writes command output: as is, or re-indented for `-p`.
pub fn emit(g: &Global, out: Vec<u8>) -> Result<(), CliError> {
    if g.pretty {
        let value: serde_json::Value = serde_json::from_slice(&out)
            .map_err(|e| CliError::failure(format!("internal JSON error: {e}")))?;
        return g.print_json(&value).map_err(CliError::from);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    if g.json {
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

//! The one-element verbs: lookup, update, delete, next, and push/pop/peek
//! for queue and stack maps. Each is one bpf(2) call after opening the map:
//! a single update either happens whole or not at all.

use super::super::error::{CliError, Exit};
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::args::{self, bad};
use super::entry::{write_side, EntryFormat};
use super::typed::{self, TypedSides};
use super::typed_in::{self, Given, Side};
use super::OpenMap;
use std::io::Write;
use tcbpf::abi::MapType;
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
    let out = lookup_key(g, w, &m)?;
    emit(g, out)
}

keywords! {
    /// The options of `lookup` after the key.
    pub(crate) enum LookupOption("lookup option") { Value = "value", Sum = "sum", Lock = "lock", Raw = "raw" }
}

keywords! {
    /// The flags of `update` after the value.
    pub(crate) enum UpdateFlag("update flag") {
        Any = "any",
        Exist = "exist",
        NoExist = "noexist",
        Lock = "lock",
        Partial = "partial",
    }
}

keywords! {
    /// The flags of `push` after the value.
    pub(crate) enum PushFlag("push flag") { Exist = "exist", Partial = "partial" }
}

keywords! {
    /// The options of `pop` and `peek`.
    pub(crate) enum PopOption("option") { Value = "value", Raw = "raw" }
}

/// The rest of `lookup` after the word `key`, on an opened map: the
/// entry as text or JSON (not yet written).
pub fn lookup_key(g: &Global, w: &mut Words, m: &OpenMap) -> Result<Vec<u8>, CliError> {
    let (key, key_layout) = key_data(w, m, &["value", "sum", "lock", "raw"])?;
    let mut value_types = None;
    let (mut sum, mut lock, mut raw) = (false, false, false);
    while let Some(word) = w.next() {
        match LookupOption::choose(&word)? {
            LookupOption::Value => value_types = Some(args::types(w, "value")?),
            LookupOption::Sum => sum = true,
            LookupOption::Raw => raw = true,
            LookupOption::Lock => lock = true,
        }
    }
    let format = entry_format(g, m, None, value_types, sum, raw)?;
    let mut value = vec![0u8; m.sizes.value()];
    let lookup_flags = if lock { flags::F_LOCK } else { 0 };
    sysmap::lookup(&m.fd, &key, &mut value, lookup_flags).map_err(|e| {
        if e.is_not_found() {
            key_not_found(m, &key_layout, &key)
        } else if lock && e.errno() == Some(libc::EINVAL) {
            lock_refused(m)
        } else {
            CliError::from(m.err(e))
        }
    })?;
    let format = EntryFormat {
        key: key_layout,
        ..format
    };
    let mut out = Vec::with_capacity(256);
    format.write_entry(Some(&key), &value, &mut out);
    Ok(out)
}

/// `update MAP key DATA value DATA [any|exist|noexist] [lock] [partial]`.
pub fn update(w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    let op = parse_update(w, &m)?;
    apply_update(&m, &op)
}

/// One parsed update: the exact key and value buffer and the flags.
pub struct UpdateOp {
    /// Key bytes.
    pub key: Vec<u8>,
    /// The key's types when it was given typed (for messages).
    pub key_layout: Option<Layout>,
    /// The whole value buffer (every CPU for per-CPU maps).
    pub value: Vec<u8>,
    /// `update::*` flags.
    pub flags: u64,
}

/// The words of `update` after MAP, on an opened map.
pub fn parse_update(w: &mut Words, m: &OpenMap) -> Result<UpdateOp, CliError> {
    let stops = ["value", "any", "exist", "noexist", "lock", "partial"];
    if !w.eat("key") {
        return Err(CliError::usage("update: expected 'key DATA value DATA'"));
    }
    let (key, key_layout) = key_data(w, m, &stops)?;
    if !w.eat("value") {
        return Err(CliError::usage(
            "update: expected 'value DATA' after the key",
        ));
    }
    let given = typed_in::read(w, m, Side::Value, &stops)?;
    let mut update_flags = flags::ANY;
    let mut partial = false;
    while let Some(word) = w.next() {
        match UpdateFlag::choose(&word)? {
            UpdateFlag::Any => update_flags = (update_flags & flags::F_LOCK) | flags::ANY,
            UpdateFlag::Exist => update_flags = (update_flags & flags::F_LOCK) | flags::EXIST,
            UpdateFlag::NoExist => update_flags = (update_flags & flags::F_LOCK) | flags::NOEXIST,
            UpdateFlag::Partial => partial = true,
            UpdateFlag::Lock => update_flags |= flags::F_LOCK,
        }
    }
    let value = match given {
        Given::Data(d) => value_data(m, d)?,
        Given::Json(v) => typed_in::value_bytes(m, &v, partial)?,
    };
    Ok(UpdateOp {
        key,
        key_layout,
        value,
        flags: update_flags,
    })
}

/// Runs one parsed update.
pub fn apply_update(m: &OpenMap, op: &UpdateOp) -> Result<(), CliError> {
    sysmap::update(&m.fd, &op.key, &op.value, op.flags)
        .map_err(|e| update_error(m, e, op.flags, &op.key_layout, &op.key))
}

/// An update's kernel error in the user's words.
pub fn update_error(
    m: &OpenMap,
    e: tcbpf::sys::Error,
    update_flags: u64,
    key_layout: &Option<Layout>,
    key: &[u8],
) -> CliError {
    match e.errno() {
        Some(libc::ENOENT) if update_flags & 3 == flags::EXIST => key_not_found(m, key_layout, key),
        Some(libc::EEXIST) => CliError::usage(format!(
            "{}: key {} exists already (noexist)",
            m.label,
            key_text(m, key_layout, key)
        )),
        Some(libc::E2BIG) if m.kind.is_some_and(MapType::is_indexed) => CliError::usage(format!(
            "{}: key {} is out of range: the {} has {} entries (0 to {})",
            m.label,
            key_text(m, key_layout, key),
            m.info.type_name(),
            m.info.max_entries,
            m.info.max_entries.saturating_sub(1)
        )),
        Some(libc::E2BIG) => CliError::failure(format!(
            "{}: map is full ({} entries) or key out of range",
            m.label, m.info.max_entries
        )),
        Some(libc::EINVAL) if update_flags & flags::F_LOCK != 0 => lock_refused(m),
        _ => CliError::from(m.err(e)),
    }
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
    let (key, key_layout) = parse_delete(w, &m)?;
    sysmap::delete(&m.fd, &key).map_err(|e| delete_error(&m, e, &key_layout, &key))
}

/// The words of `delete` after MAP: the key and its types.
pub fn parse_delete(w: &mut Words, m: &OpenMap) -> Result<(Vec<u8>, Option<Layout>), CliError> {
    if !w.eat("key") {
        return Err(CliError::usage("delete: expected 'key DATA'"));
    }
    key_data(w, m, &[])
}

/// A delete's kernel error in the user's words.
pub fn delete_error(
    m: &OpenMap,
    e: tcbpf::sys::Error,
    key_layout: &Option<Layout>,
    key: &[u8],
) -> CliError {
    if e.is_not_found() {
        key_not_found(m, key_layout, key)
    } else {
        CliError::from(m.err(e))
    }
}

/// `next MAP [key DATA]`: the key after the given one, or the first key.
pub fn next(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse_read(w)?;
    let given = if w.eat("key") {
        Some(key_data(w, &m, &["raw"])?)
    } else {
        None
    };
    let raw = w.eat("raw");
    w.finish()?;
    let format = entry_format(g, &m, None, None, false, raw)?;
    let mut next = vec![0u8; m.sizes.key()];
    let found = sysmap::next_key(&m.fd, given.as_ref().map(|(k, _)| k.as_slice()), &mut next)
        .map_err(|e| CliError::from(m.err(e)))?;
    let layout = given.as_ref().and_then(|(_, l)| l.clone());
    let format = EntryFormat {
        key: layout.clone(),
        ..format
    };
    if !found {
        return Err(CliError::not_found(match &given {
            Some((k, l)) => format!("{}: no key after {}", m.label, key_text(&m, l, k)),
            None => format!("{}: map is empty", m.label),
        }));
    }
    let mut out = Vec::with_capacity(128);
    if g.json {
        out.extend_from_slice(b"{\"next_key\":");
        format.write_key(&next, true, &mut out);
        out.push(b'}');
    } else {
        out.extend_from_slice(b"next key: ");
        format.write_key(&next, false, &mut out);
        out.push(b'\n');
    }
    emit(g, out)
}

/// `push MAP value DATA [exist] [partial]`: `exist` overwrites the oldest element of a full map.
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
    let given = typed_in::read(w, &m, Side::Value, &["exist", "partial"])?;
    let (mut push_flags, mut partial) = (flags::ANY, false);
    while let Some(word) = w.next() {
        match PushFlag::choose(&word)? {
            PushFlag::Exist => push_flags = flags::EXIST,
            PushFlag::Partial => partial = true,
        }
    }
    let value = match given {
        Given::Data(d) => d
            .into_exact(m.info.value_size as usize, "value")
            .map_err(bad)?,
        Given::Json(v) => typed_in::value_bytes(&m, &v, partial)?,
    };
    sysmap::push(&m.fd, &value, push_flags).map_err(|e| match e.errno() {
        Some(libc::E2BIG) => CliError::failure(format!(
            "{}: {} is full ({} elements); 'exist' overwrites the oldest",
            m.label,
            m.info.type_name(),
            m.info.max_entries
        )),
        _ => CliError::from(m.err(e)),
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
    let (mut value_types, mut raw) = (None, false);
    while let Some(word) = w.next() {
        match PopOption::choose(&word)? {
            PopOption::Value => value_types = Some(args::types(w, "value")?),
            PopOption::Raw => raw = true,
        }
    }
    let format = entry_format(g, &m, None, value_types, false, raw)?;
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
            CliError::from(m.err(e))
        }
    })?;
    let mut out = Vec::with_capacity(128);
    format.write_entry(None, &value, &mut out);
    emit(g, out)
}

/// The entry format for `m` with optional key and value types; the sides
/// without types print by the map's BTF when it has some, unless `raw`.
pub fn entry_format(
    g: &Global,
    m: &OpenMap,
    key_types: Option<Vec<tcbpf::value::FieldType>>,
    value_types: Option<Vec<tcbpf::value::FieldType>>,
    sum: bool,
    raw: bool,
) -> Result<EntryFormat, CliError> {
    let btf = TypedSides::for_map(g, m, key_types.is_none(), value_types.is_none(), raw)?;
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
        btf,
        bpftool: false,
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
    let data = match typed_in::read(w, m, Side::Key, stops)? {
        Given::Data(d) => d,
        json => return Ok((typed_in::key_bytes(m, json)?, None)),
    };
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

pub(super) fn key_text(m: &OpenMap, layout: &Option<Layout>, key: &[u8]) -> String {
    let mut out = Vec::new();
    match (layout, typed::types(false, m).map(|t| t.decode_key(key))) {
        (None, Some(Ok(v))) => tcbpf::value::typed::write_text(&v, &mut out),
        _ => write_side(layout, key, false, &mut out),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A key in `-j` output, written as `lookup -j` and `dump -j` write it (by
/// its types, else by the map's BTF, else bpftool's hex array): one rule
/// for every command that prints a key.
pub(super) fn key_json(
    g: &Global,
    m: &OpenMap,
    layout: &Option<Layout>,
    key: &[u8],
) -> serde_json::Value {
    let f = EntryFormat {
        key: layout.clone(),
        value: None,
        json: true,
        percpu: None,
        sum: false,
        btf: TypedSides::for_map(g, m, layout.is_none(), false, false)
            .ok()
            .flatten(),
        bpftool: false,
    };
    let mut out = Vec::new();
    f.write_key(key, true, &mut out);
    serde_json::from_slice(&out).unwrap_or_else(|_| serde_json::Value::Null)
}

pub(super) fn key_not_found(m: &OpenMap, layout: &Option<Layout>, key: &[u8]) -> CliError {
    CliError {
        exit: Exit::NotFound,
        message: format!("{}: key {} not found", m.label, key_text(m, layout, key)),
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

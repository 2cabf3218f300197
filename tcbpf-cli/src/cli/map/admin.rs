//! Verbs about the map itself rather than its entries: show, create,
//! freeze, pin. Nothing here reads or writes entries.

use super::super::error::CliError;
use super::super::mapref::MapRef;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::OpenMap;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use tcbpf::abi::MapType;
use tcbpf::sys::{self, info::MapInfo};

/// `show [MAP]`: one map, or every map the kernel lets us open.
pub fn show(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if !w.is_empty() {
        let m = OpenMap::parse_read(w)?;
        w.finish()?;
        let mut shown = describe(&m.fd, &m.info);
        shown.slots = slots(&m)?;
        return print_maps(g, &[shown], false);
    }
    let mut maps = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::obj::next_map_id(id)? {
        id = next;
        let fd = match sys::obj::map_by_id(id, sys::obj::open::RDONLY) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let info = sys::info::map_info(&fd)?;
        maps.push(describe(&fd, &info));
    }
    print_maps(g, &maps, true)
}

/// What `show` prints about one map.
struct Shown {
    info: MapInfo,
    frozen: bool,
    memlock: u64,
    /// A map-in-map's filled slots, shown for one map.
    slots: Vec<Slot>,
}

/// One filled slot of a map-in-map: the inner map's id and the policy
/// generation it carries (`map commit`; 0 without one).
struct Slot {
    slot: u32,
    map_id: u32,
    generation: u32,
}

/// At most this many slots are shown.
const MAX_SLOTS_SHOWN: usize = 1024;

/// The filled slots of a map-in-map with `u32` keys (none for other maps).
fn slots(m: &OpenMap) -> Result<Vec<Slot>, CliError> {
    if !matches!(m.kind, Some(MapType::ArrayOfMaps | MapType::HashOfMaps)) || m.info.key_size != 4 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut prev: Option<[u8; 4]> = None;
    let mut next = [0u8; 4];
    while out.len() < MAX_SLOTS_SHOWN
        && sys::map::next_key(&m.fd, prev.as_ref().map(|k| &k[..]), &mut next)
            .map_err(|e| CliError::from(m.err(e)))?
    {
        prev = Some(next);
        let slot = u32::from_ne_bytes(next);
        let Some(inner) = tcbpf::maps::generation::in_force(&m.fd, slot)
            .map_err(|e| CliError::from(e).context(&m.label))?
        else {
            continue;
        };
        out.push(Slot {
            slot,
            map_id: inner.info.id,
            generation: inner.generation,
        });
    }
    Ok(out)
}

fn describe(fd: &sys::MapFd, info: &MapInfo) -> Shown {
    // fdinfo is best effort: without /proc the rest still shows.
    let extra = sys::info::map_fdinfo(fd).unwrap_or_default();
    Shown {
        info: info.clone(),
        frozen: extra.frozen,
        memlock: extra.memlock,
        slots: Vec::new(),
    }
}

fn print_maps(g: &Global, maps: &[Shown], list: bool) -> Result<(), CliError> {
    if g.json {
        let items: Vec<serde_json::Value> = maps.iter().map(to_json).collect();
        let value = if list {
            serde_json::Value::Array(items)
        } else {
            items.into_iter().next().unwrap_or_default()
        };
        return g.print_json(&value).map_err(CliError::from);
    }
    let mut out = Vec::new();
    for s in maps {
        let i = &s.info;
        let _ = write!(out, "{}: {}  ", i.id, i.type_name());
        if !i.name.is_empty() {
            let _ = write!(out, "name {}  ", i.name);
        }
        let _ = writeln!(out, "flags 0x{:x}", i.map_flags);
        let _ = write!(
            out,
            "\tkey {}B  value {}B  max_entries {}  memlock {}B",
            i.key_size, i.value_size, i.max_entries, s.memlock
        );
        if i.btf_id != 0 {
            let _ = write!(
                out,
                "\n\tbtf_id {}  btf_key_type_id {}  btf_value_type_id {}",
                i.btf_id, i.btf_key_type_id, i.btf_value_type_id
            );
        }
        if s.frozen {
            let _ = write!(out, "\n\tfrozen");
        }
        for slot in &s.slots {
            let _ = write!(
                out,
                "\n\tslot {}: map id {}  generation {}",
                slot.slot, slot.map_id, slot.generation
            );
        }
        out.push(b'\n');
    }
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}

fn to_json(s: &Shown) -> serde_json::Value {
    let i = &s.info;
    let mut v = json!({
        "id": i.id,
        "type": i.type_name(),
        "name": i.name,
        "flags": i.map_flags,
        "bytes_key": i.key_size,
        "bytes_value": i.value_size,
        "max_entries": i.max_entries,
        "bytes_memlock": s.memlock,
        // bpftool 7.1 prints 0/1.
        "frozen": u8::from(s.frozen),
        "btf_id": i.btf_id,
        "btf_key_type_id": i.btf_key_type_id,
        "btf_value_type_id": i.btf_value_type_id,
    });
    if matches!(i.kind(), Some(MapType::ArrayOfMaps | MapType::HashOfMaps)) && !s.slots.is_empty() {
        v["slots"] = s
            .slots
            .iter()
            .map(|x| json!({"slot": x.slot, "map_id": x.map_id, "generation": x.generation}))
            .collect();
    }
    v
}

keywords! {
    /// The words of `map create`.
    pub(crate) enum CreateOption("create option") {
        Type = "type",
        Key = "key",
        Value = "value",
        Entries = "entries",
        Flags = "flags",
        Name = "name",
        Pin = "pin",
    }
}

/// `create type TYPE key N value N entries N [flags N] [name NAME] [pin PATH]`.
pub fn create(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let mut map_type = None;
    let (mut key, mut value, mut entries, mut map_flags) = (None, None, None, None);
    let mut name = String::new();
    let mut pin_path: Option<PathBuf> = None;
    while let Some(word) = w.next() {
        match CreateOption::choose(&word)? {
            CreateOption::Type => {
                let t = w.expect("a map type after 'type'")?;
                let names: Vec<&str> = MapType::all().map(MapType::name).collect();
                map_type = Some(MapType::from_name(&t).ok_or_else(|| {
                    CliError::usage(format!(
                        "unknown map type '{t}' (expected one of: {})",
                        names.join(", ")
                    ))
                })?);
            }
            CreateOption::Key => key = Some(w.number::<u32>("a key size in bytes")?),
            CreateOption::Value => value = Some(w.number::<u32>("a value size in bytes")?),
            CreateOption::Entries => entries = Some(w.number::<u32>("a number of entries")?),
            CreateOption::Flags => map_flags = Some(w.number::<u32>("map flags")?),
            CreateOption::Name => name = w.expect("a name after 'name'")?,
            CreateOption::Pin => pin_path = Some(PathBuf::from(w.expect("a path after 'pin'")?)),
        }
    }
    let map_type = map_type.ok_or_else(|| CliError::usage("create: expected 'type TYPE'"))?;
    let value = value.ok_or_else(|| CliError::usage("create: expected 'value BYTES'"))?;
    let entries = entries.ok_or_else(|| CliError::usage("create: expected 'entries N'"))?;
    let key = match key {
        Some(k) => k,
        None if map_type.is_queue_or_stack() => 0,
        None => return Err(CliError::usage("create: expected 'key BYTES'")),
    };
    // No flags given means the type's defaults (an lpm_trie's
    // BPF_F_NO_PREALLOC, without which the kernel refuses it).
    let map_flags = map_flags.unwrap_or(map_type.default_flags());
    let fd = sys::map::create(&sys::map::MapCreate {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: entries,
        map_flags,
        name: &name,
        ..Default::default()
    })?;
    if let Some(path) = &pin_path {
        sys::obj::pin(&fd, path)?;
    }
    let info = sys::info::map_info(&fd)?;
    if g.json {
        let mut v = to_json(&describe(&fd, &info));
        v["pinned"] = json!(pin_path.as_ref().map(|p| p.display().to_string()));
        return g.print_json(&v).map_err(CliError::from);
    }
    print_maps(g, &[describe(&fd, &info)], false)
}

/// `freeze MAP`.
pub fn freeze(w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    w.finish()?;
    sys::map::freeze(&m.fd).map_err(|e| CliError::from(m.err(e)))
}

/// `pin MAP PATH`.
pub fn pin(w: &mut Words) -> Result<(), CliError> {
    let r = MapRef::parse(w)?;
    let path = PathBuf::from(w.expect("a bpffs path to pin at")?);
    w.finish()?;
    let fd = r.open()?;
    sys::obj::pin(&fd, &path).map_err(CliError::from)
}

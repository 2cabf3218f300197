//! The sets a keeper holds: each export becomes a set named by its object
//! file's name, holding every map descriptor (so program arrays stay
//! populated); a later export under the same name replaces it. With a
//! state directory on a bpffs, every set is also pinned there
//! (`DIR/<set>/<position>-<entry id>`, the set name escaped as
//! [`dir_name`] says, with a `record` of the set: [`set_record`] and its
//! generation) and picked up again at start, generation included.
//!
//! The state directory is taken on no faith: it must be the keeper's own
//! (owned by root or the keeper's uid, writable by nobody else, not a
//! symlink); it is opened once and every later step is relative to that
//! descriptor without following a symlink; an entry the keeper did not
//! make is skipped with a warning, never deleted; a set is picked up only
//! when its maps match the record the keeper wrote.
//!
//! It holds and pins descriptors; it does not speak to clients (that is
//! `server`) nor decide who may see what (`policy`).

use super::proto::{MapInfoLine, SetInfo};
use crate::exec::env::name_var;
use crate::scm::{MapDesc, ObjectId, Received};
use crate::sys::dir::Dir;
use crate::sys::info::{map_info, MapInfo};
use crate::sys::unix::own_uids;
use crate::sys::MapFd;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One map of a set.
#[derive(Debug)]
pub struct HeldMap {
    /// The entry as the exporter sent it (its `id` names `BPF_MAP<id>`).
    pub desc: MapDesc,
    /// The read-write descriptor the keeper holds.
    pub fd: MapFd,
    /// The kernel's info.
    pub info: MapInfo,
}

/// One set: an export's maps.
#[derive(Debug)]
pub struct Set {
    /// Its name (the object file's name, without directories).
    pub name: String,
    /// The object as the exporter named it.
    pub object: ObjectId,
    /// Its maps, in the order sent.
    pub maps: Vec<HeldMap>,
    /// Seconds since the epoch when it arrived (or was picked up).
    pub imported: u64,
    /// 1 for a new set, one more for each export that replaced it (a
    /// `filter upgrade … export` to the keeper): clients that re-attach
    /// can tell which maps they got. Sets picked up from the state
    /// directory start again at 1.
    pub generation: u64,
}

impl Set {
    /// The set as a listing shows it, with `access` for the asking client.
    pub fn info(&self, access: &str) -> SetInfo {
        SetInfo {
            name: self.name.clone(),
            object: self.object.name.clone(),
            dev: self.object.dev,
            ino: self.object.ino,
            access: access.to_string(),
            imported: self.imported,
            generation: self.generation,
            maps: self
                .maps
                .iter()
                .map(|m| MapInfoLine {
                    id: m.desc.id,
                    map_id: m.info.id,
                    map_type: m.info.type_name(),
                    key_size: m.info.key_size,
                    value_size: m.info.value_size,
                    max_entries: m.info.max_entries,
                    flags: m.info.map_flags,
                    name: m.info.name.clone(),
                })
                .collect(),
        }
    }

    /// The positions of the maps `wanted` names (kernel name, or the same
    /// name as `BPF_MAP_<NAME>` spells it), in the order asked; every map
    /// when `wanted` is empty. Err names the first map not in the set.
    pub fn select(&self, wanted: &[String]) -> Result<Vec<usize>, String> {
        if wanted.is_empty() {
            return Ok((0..self.maps.len()).collect());
        }
        let mut out = Vec::with_capacity(wanted.len());
        for w in wanted {
            let pos = self
                .maps
                .iter()
                .position(|m| m.info.name == *w)
                .or_else(|| {
                    let var = name_var(w)?;
                    self.maps
                        .iter()
                        .position(|m| name_var(&m.info.name).as_deref() == Some(&var))
                })
                .ok_or_else(|| w.clone())?;
            if !out.contains(&pos) {
                out.push(pos);
            }
        }
        Ok(out)
    }

    /// True when the set has a map `name` (see [`Set::select`]).
    pub fn has_map(&self, name: &str) -> bool {
        self.select(std::slice::from_ref(&name.to_string())).is_ok()
    }
}

/// The set name for an exported object: the last component of the name
/// the exporter sent (`bpf/verdict.o` → `verdict.o`); `unnamed` when that
/// is empty, `.` or `..`.
pub fn set_name_for(object: &str) -> String {
    let base = object.rsplit('/').next().unwrap_or("");
    let base: String = base
        .chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if base.is_empty() || base == "." || base == ".." {
        "unnamed".to_string()
    } else {
        base
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where warnings go (one line each): entries skipped, never deleted.
pub type Warn<'a> = &'a mut dyn FnMut(&str);

/// The state directory, checked once and held open: every later step is
/// relative to this descriptor, so what the path points at afterwards
/// does not matter.
#[derive(Debug)]
struct StateDir {
    path: PathBuf,
    dir: Dir,
    /// The keeper's effective uid: entries owned by it or by root are the
    /// keeper's own; any other is foreign.
    uid: u32,
}

/// Every set the keeper holds.
#[derive(Debug, Default)]
pub struct Store {
    sets: BTreeMap<String, Arc<Set>>,
    state: Option<StateDir>,
}

impl Store {
    /// An empty store; with `state`, the sets pinned there are picked up.
    /// `state` must be a directory on a bpffs (created, mode 0700, when
    /// absent), not a symlink, owned by root or the keeper's uid and not
    /// writable by group or others; otherwise the error says which.
    /// Entries the keeper did not make, and sets whose maps do not match
    /// the record the keeper wrote, are skipped with a line to `warn`.
    pub fn open(state: Option<&Path>, warn: Warn<'_>) -> Result<Store, String> {
        let mut store = Store {
            sets: BTreeMap::new(),
            state: None,
        };
        if let Some(path) = state {
            let sd = open_state(path)?;
            store.pick_up(&sd, warn);
            store.state = Some(sd);
        }
        Ok(store)
    }

    /// The sets, by name.
    pub fn sets(&self) -> impl Iterator<Item = &Set> {
        self.sets.values().map(|s| &**s)
    }

    /// The set called `name`.
    pub fn get(&self, name: &str) -> Option<&Set> {
        self.sets.get(name).map(|s| &**s)
    }

    /// The set called `name`, shared (a reply on its way keeps the maps
    /// of a set replaced meanwhile).
    pub fn shared(&self, name: &str) -> Option<Arc<Set>> {
        self.sets.get(name).cloned()
    }

    /// Every set, shared.
    pub fn shared_sets(&self) -> impl Iterator<Item = Arc<Set>> + '_ {
        self.sets.values().cloned()
    }

    /// How many maps the store holds.
    pub fn map_count(&self) -> usize {
        self.sets.values().map(|s| s.maps.len()).sum()
    }

    /// Adds a received export as a set, replacing the set of the same name
    /// (whose descriptors close, and whose pins are replaced, after the new
    /// set is in place). Returns the set's name and whether it replaced one.
    pub fn insert(&mut self, received: Received, warn: Warn<'_>) -> Result<(String, bool), String> {
        let name = set_name_for(&received.object.name);
        let set = Set {
            name: name.clone(),
            object: received.object,
            maps: received
                .maps
                .into_iter()
                .map(|m| HeldMap {
                    desc: m.desc,
                    fd: m.fd,
                    info: m.info,
                })
                .collect(),
            imported: now_secs(),
            generation: self.sets.get(&name).map_or(1, |old| old.generation + 1),
        };
        if let Some(sd) = &self.state {
            pin_set(sd, &set, warn)?;
        }
        let replaced = self.sets.insert(name.clone(), Arc::new(set)).is_some();
        Ok((name, replaced))
    }

    /// Reads back every set pinned in the state directory, finishing a
    /// replacement a crash interrupted.
    fn pick_up(&mut self, sd: &StateDir, warn: Warn<'_>) {
        let names = match sd.dir.entries() {
            Ok(n) => n,
            Err(e) => {
                warn(&format!("state directory {}: {e}", sd.path.display()));
                return;
            }
        };
        let exists = |n: &str| sd.dir.stat_at(OsStr::new(n)).is_ok();
        for n in names.iter().filter_map(|n| n.to_str()) {
            if let Some(set) = n.strip_prefix(OLD) {
                // Crashed between the two renames: the new set is at
                // `new~` or already in place; the old one is garbage
                // unless nothing replaced it.
                let fresh = format!("{NEW}{set}");
                if exists(set) {
                    remove_set_dir(sd, n, warn);
                } else if exists(&fresh) {
                    if sd.own_dir(&fresh, warn) {
                        let _ = sd.dir.rename_at(OsStr::new(&fresh), OsStr::new(set));
                    }
                    remove_set_dir(sd, n, warn);
                } else if sd.own_dir(n, warn) {
                    let _ = sd.dir.rename_at(OsStr::new(n), OsStr::new(set));
                }
            } else if n
                .strip_prefix(NEW)
                .is_some_and(|s| !exists(&format!("{OLD}{s}")))
            {
                // Crashed before the new set was complete: drop it.
                remove_set_dir(sd, n, warn);
            }
        }
        let names = match sd.dir.entries() {
            Ok(n) => n,
            Err(e) => {
                warn(&format!("state directory {}: {e}", sd.path.display()));
                return;
            }
        };
        for n in &names {
            let shown = n.to_string_lossy();
            let Some(name) = n.to_str() else {
                warn(&format!(
                    "state: skipping entry '{shown}': not a set directory (not UTF-8)"
                ));
                continue;
            };
            if name.starts_with(NEW) || name.starts_with(OLD) {
                continue;
            }
            let Some(set_name) = decode_dir_name(name) else {
                warn(&format!(
                    "state: skipping entry '{name}': not a set directory name"
                ));
                continue;
            };
            if let Some(set) = read_set(sd, name, &set_name, warn) {
                self.sets.insert(set_name, Arc::new(set));
            }
        }
    }
}

/// Opens and checks the state directory (creating it, mode 0700, when
/// absent).
fn open_state(path: &Path) -> Result<StateDir, String> {
    let shown = path.display();
    if std::fs::symlink_metadata(path).is_err() {
        // Refuse before creating anything: the nearest directory that
        // exists must already be on a bpffs.
        let existing = path.ancestors().find(|a| a.is_dir()).unwrap_or(path);
        if !crate::sys::fs::is_bpffs(existing) {
            return Err(format!(
                "state directory {shown} is not on a bpffs (mount one or pick a directory under /sys/fs/bpf)"
            ));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("state directory {shown}: {}", crate::sys::strip_os(&e)))?;
    }
    let dir = Dir::open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR)
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) =>
        {
            format!("state directory {shown} is a symlink: refused (a symlink is never followed)")
        }
        Some(libc::ENOTDIR) => format!("state directory {shown} is not a directory"),
        _ => format!("state directory {shown}: {e}"),
    })?;
    if !dir.is_bpffs() {
        return Err(format!(
            "state directory {shown} is not on a bpffs (mount one or pick a directory under /sys/fs/bpf)"
        ));
    }
    let (_, uid) = own_uids();
    let st = dir
        .stat()
        .map_err(|e| format!("state directory {shown}: {e}"))?;
    if st.uid != 0 && st.uid != uid {
        return Err(format!(
            "state directory {shown} is owned by uid {}, neither root nor the keeper (uid {uid}): refused (its owner could plant or swap sets)",
            st.uid
        ));
    }
    if st.mode & 0o022 != 0 {
        return Err(format!(
            "state directory {shown} is writable by group or others (mode {:04o}): refused (chmod go-w it, or pick a directory only the keeper writes)",
            st.mode & 0o7777
        ));
    }
    Ok(StateDir {
        path: path.to_path_buf(),
        dir,
        uid,
    })
}

impl StateDir {
    fn trusted(&self, owner: u32) -> bool {
        owner == 0 || owner == self.uid
    }

    /// Opens the set directory `name`, if it is the keeper's own: a real
    /// directory (not a symlink), owned by root or the keeper, writable by
    /// nobody else. Otherwise a warning and None.
    fn open_own(&self, name: &str, warn: Warn<'_>) -> Option<Dir> {
        let sub = match self.dir.open_at(OsStr::new(name)) {
            Ok(d) => d,
            Err(e) => {
                let why = match (e.raw_os_error(), self.dir.stat_at(OsStr::new(name))) {
                    (_, Ok(st)) if !st.is_dir() => format!("{}, not a set directory", st.kind()),
                    _ => e.to_string(),
                };
                warn(&format!("state: skipping entry '{name}': {why}"));
                return None;
            }
        };
        match sub.stat() {
            Ok(st) if !self.trusted(st.uid) => {
                warn(&format!(
                    "state: skipping entry '{name}': owned by uid {}, not the keeper",
                    st.uid
                ));
                None
            }
            Ok(st) if st.mode & 0o022 != 0 => {
                warn(&format!(
                    "state: skipping entry '{name}': writable by group or others (mode {:04o})",
                    st.mode & 0o7777
                ));
                None
            }
            Ok(_) => Some(sub),
            Err(e) => {
                warn(&format!("state: skipping entry '{name}': {e}"));
                None
            }
        }
    }

    fn own_dir(&self, name: &str, warn: Warn<'_>) -> bool {
        self.open_own(name, warn).is_some()
    }
}

/// Prefix of a set directory being written.
const NEW: &str = "new~";
/// Prefix of a set directory being replaced.
const OLD: &str = "old~";
/// The entry of a set directory holding the keeper's record of the set (a
/// symlink whose text is the record; read, never followed).
const RECORD: &str = "record";

/// A set name as a bpffs directory name: bpffs refuses names holding a
/// `.`, so `.`, `%`, `~` and `/` are written `%XX` (`verdict.o` →
/// `verdict%2eo`); the `new~`/`old~` prefixes cannot clash.
pub fn dir_name(set: &str) -> String {
    let mut out = String::with_capacity(set.len() + 4);
    for c in set.chars() {
        match c {
            '.' | '%' | '~' | '/' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The set name a directory name holds (see [`dir_name`]).
pub fn decode_dir_name(dir: &str) -> Option<String> {
    let bytes = dir.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The record a set directory holds: the directory's own name, the number
/// of maps and a SHA-1 over each map's pin name, kernel id, type, sizes,
/// flags and name. Picking a set up checks its maps against it, so a set
/// directory renamed or filled by anyone but the keeper is refused.
pub fn set_record(dir_name: &str, maps: &[(String, &MapInfo)]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    for (pin, i) in maps {
        h.update(
            format!(
                "{pin} {} {} {} {} {} {} {}\n",
                i.id, i.map_type, i.key_size, i.value_size, i.max_entries, i.map_flags, i.name
            )
            .as_bytes(),
        );
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("tcbpf-keeper-set 1 {dir_name} {} {digest}", maps.len())
}

fn pin_name(pos: usize, entry_id: u32) -> String {
    format!("{pos:04}-{entry_id}")
}

/// Pins `set` as `<state>/<set>/<position>-<entry id>` with its record,
/// replacing what was there by two renames (so a crash leaves the old or
/// the new set whole).
fn pin_set(sd: &StateDir, set: &Set, warn: Warn<'_>) -> Result<(), String> {
    let encoded = dir_name(&set.name);
    let fresh = format!("{NEW}{encoded}");
    let old = format!("{OLD}{encoded}");
    let at = |n: &str| format!("{}/{n}", sd.path.display());
    if sd.dir.stat_at(OsStr::new(&fresh)).is_ok() {
        remove_set_dir(sd, &fresh, warn);
    }
    sd.dir
        .mkdir_at(OsStr::new(&fresh), 0o700)
        .map_err(|e| format!("state: mkdir {}: {e}", at(&fresh)))?;
    let sub = sd
        .dir
        .open_at(OsStr::new(&fresh))
        .map_err(|e| format!("state: open {}: {e}", at(&fresh)))?;
    let mut record = Vec::with_capacity(set.maps.len());
    for (i, m) in set.maps.iter().enumerate() {
        let pin = pin_name(i, m.desc.id);
        if let Err(e) = sub.pin_at(m.fd.as_fd(), OsStr::new(&pin)) {
            drop(sub);
            remove_set_dir(sd, &fresh, warn);
            return Err(format!("state: BPF_OBJ_PIN {}/{pin}: {e}", at(&fresh)));
        }
        record.push((pin, &m.info));
    }
    let record = format!(
        "{} generation {}",
        set_record(&encoded, &record),
        set.generation
    );
    if let Err(e) = sub.symlink_at(record.as_bytes(), OsStr::new(RECORD)) {
        drop(sub);
        remove_set_dir(sd, &fresh, warn);
        return Err(format!("state: record {}/{RECORD}: {e}", at(&fresh)));
    }
    let had_old = sd.dir.stat_at(OsStr::new(&encoded)).is_ok();
    if had_old {
        if sd.dir.stat_at(OsStr::new(&old)).is_ok() {
            remove_set_dir(sd, &old, warn);
        }
        sd.dir
            .rename_at(OsStr::new(&encoded), OsStr::new(&old))
            .map_err(|e| format!("state: rename {}: {e}", at(&encoded)))?;
    }
    sd.dir
        .rename_at(OsStr::new(&fresh), OsStr::new(&encoded))
        .map_err(|e| format!("state: rename {}: {e}", at(&fresh)))?;
    if had_old {
        remove_set_dir(sd, &old, warn);
    }
    Ok(())
}

/// Reads one pinned set back, if it is the keeper's own and its maps match
/// its record; otherwise a warning and None (nothing is deleted).
fn read_set(sd: &StateDir, entry: &str, name: &str, warn: Warn<'_>) -> Option<Set> {
    let sub = sd.open_own(entry, warn)?;
    let skip = |warn: Warn<'_>, why: String| {
        warn(&format!("state: skipping set directory '{entry}': {why}"));
        None
    };
    let record = match sub.readlink_at(OsStr::new(RECORD)) {
        Ok(r) => r,
        Err(e) => {
            return skip(
                warn,
                format!("no record of the keeper's ({RECORD}: {e}); re-export the set"),
            )
        }
    };
    let entries = match sub.entries() {
        Ok(e) => e,
        Err(e) => return skip(warn, e.to_string()),
    };
    let mut pins: Vec<(String, u32)> = Vec::new();
    for e in &entries {
        let shown = e.to_string_lossy();
        if shown == RECORD {
            continue;
        }
        let parsed = e.to_str().and_then(|n| {
            let (pos, id) = n.split_once('-')?;
            (pos.len() == 4 && pos.bytes().all(|b| b.is_ascii_digit()))
                .then_some(())
                .and(id.parse::<u32>().ok())
                .map(|id| (n.to_string(), id))
        });
        let Some((pin, id)) = parsed else {
            warn(&format!(
                "state: skipping entry '{entry}/{shown}': not a pin of the keeper's"
            ));
            continue;
        };
        match sub.stat_at(e) {
            Ok(st) if st.is_file() && sd.trusted(st.uid) => pins.push((pin, id)),
            Ok(st) => warn(&format!(
                "state: skipping entry '{entry}/{shown}': {} owned by uid {}, not a pin of the keeper's",
                st.kind(),
                st.uid
            )),
            Err(err) => warn(&format!("state: skipping entry '{entry}/{shown}': {err}")),
        }
    }
    pins.sort();
    let mut maps = Vec::with_capacity(pins.len());
    for (pin, id) in &pins {
        let fd = match sub.get_map_at(OsStr::new(pin)) {
            Ok(fd) => fd,
            Err(e) => return skip(warn, format!("{pin}: not a pinned map ({e})")),
        };
        let info = match map_info(&fd) {
            Ok(i) => i,
            Err(e) => return skip(warn, format!("{pin}: {e}")),
        };
        maps.push(HeldMap {
            desc: MapDesc::from_info(&info, *id),
            fd,
            info,
        });
    }
    let seen: Vec<(String, &MapInfo)> = pins
        .iter()
        .zip(&maps)
        .map(|((p, _), m)| (p.clone(), &m.info))
        .collect();
    // The record, then the set's generation (a record from before
    // generations has none: 1).
    let generation = match record.strip_prefix(set_record(entry, &seen).as_bytes()) {
        Some(b"") => Some(1),
        Some(rest) => std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.strip_prefix(" generation "))
            .and_then(|g| g.parse::<u64>().ok())
            .filter(|g| *g >= 1),
        None => None,
    };
    let Some(generation) = generation else {
        return skip(
            warn,
            "its maps do not match the record the keeper wrote (renamed, swapped or changed by someone else)".into(),
        );
    };
    Some(Set {
        name: name.to_string(),
        object: ObjectId {
            name: name.to_string(),
            dev: 0,
            ino: 0,
        },
        maps,
        imported: now_secs(),
        generation,
    })
}

/// Removes a set directory of the keeper's own: its pins and record (files
/// and symlinks it owns; nothing is followed), then the directory. A
/// foreign directory or entry is left where it is, with a warning.
fn remove_set_dir(sd: &StateDir, name: &str, warn: Warn<'_>) {
    let Some(sub) = sd.open_own(name, warn) else {
        return;
    };
    if let Ok(entries) = sub.entries() {
        for e in entries {
            match sub.stat_at(&e) {
                Ok(st) if (st.is_file() || st.is_symlink()) && sd.trusted(st.uid) => {
                    let _ = sub.unlink_at(&e, false);
                }
                Ok(st) => warn(&format!(
                    "state: not removing entry '{name}/{}': {} owned by uid {}, not the keeper's",
                    e.to_string_lossy(),
                    st.kind(),
                    st.uid
                )),
                Err(_) => {}
            }
        }
    }
    drop(sub);
    let _ = sd.dir.unlink_at(OsStr::new(name), true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_become_bpffs_directory_names_without_dots_and_back() {
        assert_eq!(dir_name("verdict_legacy.o"), "verdict_legacy%2eo");
        assert_eq!(dir_name("a%b~c"), "a%25b%7ec");
        for name in ["verdict.o", "a%b~c", "plain", "x..y"] {
            assert!(!dir_name(name).contains('.'));
            assert_eq!(decode_dir_name(&dir_name(name)).as_deref(), Some(name));
        }
        assert_eq!(decode_dir_name("bad%zz"), None);
        assert_eq!(decode_dir_name("cut%2"), None);
    }

    #[test]
    fn set_name_is_the_object_file_name() {
        assert_eq!(set_name_for("bpf/verdict_legacy.o"), "verdict_legacy.o");
        assert_eq!(set_name_for("/abs/path/x.o"), "x.o");
        assert_eq!(set_name_for("tcbpf-export"), "tcbpf-export");
        assert_eq!(set_name_for(""), "unnamed");
        assert_eq!(set_name_for("dir/"), "unnamed");
        assert_eq!(set_name_for(".."), "unnamed");
        assert_eq!(set_name_for("a\tb"), "a_b");
    }
}

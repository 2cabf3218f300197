//! The sets a keeper holds: each export becomes a set named by its object
//! file's name, holding every map descriptor (so program arrays stay
//! populated); a later export under the same name replaces it. With a
//! state directory on a bpffs, every set is also pinned there
//! (`DIR/<set>/<position>-<entry id>`, the set name escaped as
//! [`dir_name`] says) and picked up again at start.
//!
//! It holds and pins descriptors; it does not speak to clients (that is
//! `server`) nor decide who may see what (`policy`).

use super::proto::{MapInfoLine, SetInfo};
use crate::exec::env::name_var;
use crate::scm::{MapDesc, ObjectId, Received};
use crate::sys::info::{map_info, MapInfo};
use crate::sys::{self, MapFd};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Every set the keeper holds.
#[derive(Debug, Default)]
pub struct Store {
    sets: BTreeMap<String, Set>,
    state: Option<PathBuf>,
}

impl Store {
    /// An empty store; with `state`, the sets pinned there are picked up
    /// (`state` must be a directory on a bpffs; it is created when absent).
    pub fn open(state: Option<&Path>) -> Result<Store, String> {
        let mut store = Store {
            sets: BTreeMap::new(),
            state: state.map(Path::to_path_buf),
        };
        if let Some(dir) = state {
            // Refuse before creating anything: the nearest directory that
            // exists must already be on a bpffs.
            let existing = dir.ancestors().find(|a| a.is_dir()).unwrap_or(dir);
            if !sys::fs::is_bpffs(existing) {
                return Err(format!(
                    "state directory {} is not on a bpffs (mount one or pick a directory under /sys/fs/bpf)",
                    dir.display()
                ));
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("state directory {}: {}", dir.display(), sys::strip_os(&e)))?;
            if !sys::fs::is_bpffs(dir) {
                return Err(format!(
                    "state directory {} is not on a bpffs (mount one or pick a directory under /sys/fs/bpf)",
                    dir.display()
                ));
            }
            store.pick_up(dir)?;
        }
        Ok(store)
    }

    /// The sets, by name.
    pub fn sets(&self) -> impl Iterator<Item = &Set> {
        self.sets.values()
    }

    /// The set called `name`.
    pub fn get(&self, name: &str) -> Option<&Set> {
        self.sets.get(name)
    }

    /// How many maps the store holds.
    pub fn map_count(&self) -> usize {
        self.sets.values().map(|s| s.maps.len()).sum()
    }

    /// Adds a received export as a set, replacing the set of the same name
    /// (whose descriptors close, and whose pins are replaced, after the new
    /// set is in place). Returns the set's name and whether it replaced one.
    pub fn insert(&mut self, received: Received) -> Result<(String, bool), String> {
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
        };
        if let Some(dir) = &self.state {
            pin_set(dir, &set)?;
        }
        let replaced = self.sets.insert(name.clone(), set).is_some();
        Ok((name, replaced))
    }

    /// Reads back every set pinned under `dir`, finishing a replacement a
    /// crash interrupted.
    fn pick_up(&mut self, dir: &Path) -> Result<(), String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in &names {
            if let Some(set) = n.strip_prefix(OLD) {
                // Crashed between the two renames: the new set is at
                // `.new-` or already in place; the old one is garbage
                // unless nothing replaced it.
                let live = dir.join(set);
                if live.exists() {
                    remove_pins(&dir.join(n));
                } else if dir.join(format!("{NEW}{set}")).exists() {
                    let _ = std::fs::rename(dir.join(format!("{NEW}{set}")), &live);
                    remove_pins(&dir.join(n));
                } else {
                    let _ = std::fs::rename(dir.join(n), &live);
                }
            } else if n
                .strip_prefix(NEW)
                .is_some_and(|s| !dir.join(format!("{OLD}{s}")).exists())
            {
                // Crashed before the new set was complete: drop it.
                remove_pins(&dir.join(n));
            }
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with(NEW) || name.starts_with(OLD) || !e.path().is_dir() {
                continue;
            }
            let Some(set_name) = decode_dir_name(&name) else {
                continue;
            };
            let set = read_set(&e.path(), &set_name)?;
            self.sets.insert(set_name, set);
        }
        Ok(())
    }
}

/// Prefix of a set directory being written.
const NEW: &str = "new~";
/// Prefix of a set directory being replaced.
const OLD: &str = "old~";

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

/// Pins `set` as `dir/<set>/<position>-<entry id>`, replacing what was
/// there by two renames (so a crash leaves the old or the new set whole).
fn pin_set(dir: &Path, set: &Set) -> Result<(), String> {
    let encoded = dir_name(&set.name);
    let fresh = dir.join(format!("{NEW}{encoded}"));
    let old = dir.join(format!("{OLD}{encoded}"));
    let live = dir.join(&encoded);
    remove_pins(&fresh);
    std::fs::create_dir(&fresh).map_err(|e| format!("state: mkdir {}: {e}", fresh.display()))?;
    for (i, m) in set.maps.iter().enumerate() {
        let pin = fresh.join(format!("{i:04}-{}", m.desc.id));
        if let Err(e) = sys::obj::pin(&m.fd, &pin) {
            remove_pins(&fresh);
            return Err(format!("state: {e}"));
        }
    }
    let had_old = live.exists();
    if had_old {
        remove_pins(&old);
        std::fs::rename(&live, &old)
            .map_err(|e| format!("state: rename {}: {e}", live.display()))?;
    }
    std::fs::rename(&fresh, &live)
        .map_err(|e| format!("state: rename {}: {e}", fresh.display()))?;
    if had_old {
        remove_pins(&old);
    }
    Ok(())
}

/// Reads one pinned set back.
fn read_set(path: &Path, name: &str) -> Result<Set, String> {
    let mut pins: Vec<(String, u32)> = std::fs::read_dir(path)
        .map_err(|e| format!("state: {}: {e}", path.display()))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let id = n.split_once('-')?.1.parse().ok()?;
            Some((n, id))
        })
        .collect();
    pins.sort();
    let mut maps = Vec::with_capacity(pins.len());
    for (pin, id) in pins {
        let p = path.join(&pin);
        let fd = sys::obj::get_pinned_map(&p, 0).map_err(|e| format!("state: {e}"))?;
        let info = map_info(&fd).map_err(|e| format!("state: {}: {e}", p.display()))?;
        maps.push(HeldMap {
            desc: MapDesc::from_info(&info, id),
            fd,
            info,
        });
    }
    Ok(Set {
        name: name.to_string(),
        object: ObjectId {
            name: name.to_string(),
            dev: 0,
            ino: 0,
        },
        maps,
        imported: now_secs(),
    })
}

/// Removes a set directory's pins and the directory (nothing when absent).
fn remove_pins(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
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

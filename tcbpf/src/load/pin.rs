//! Map pinning with tc's paths and semantics: where a map is pinned, the
//! bpffs mounted when absent, an existing pin reused only when its
//! definition matches, and every pin and directory made by a load that
//! then fails removed again (`PinGuard`).

use crate::elf::{MapSpec, Pinning};
use crate::sys;
use crate::sys::info::MapInfo;
use std::path::{Path, PathBuf};

/// tc's directory under the bpffs.
pub const TC_DIR: &str = "tc";
/// The directory of `PIN_GLOBAL_NS` maps under [`TC_DIR`].
pub const GLOBALS_DIR: &str = "globals";
/// iproute2's table of custom pinning values.
pub const DEFAULT_PINNING_DB: &str = "/etc/iproute2/bpf_pinning";

/// The custom pinning table (`/etc/iproute2/bpf_pinning`): lines of
/// `value  subpath`, `#` comments. Unreadable or malformed lines are
/// skipped, as tc does.
pub fn read_pinning_db(path: &Path) -> Vec<(u32, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let mut words = line.split_whitespace();
            let value = words.next()?;
            let subpath = words.next()?;
            let value = match value.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => value.parse().ok()?,
            };
            Some((value, subpath.trim_matches('/').to_string()))
        })
        .collect()
}

/// Where `map` is pinned, or `None` when it is not (no pinning, or a custom
/// value the table does not list).
pub fn pin_path(
    bpffs: &Path,
    object_sha1: &str,
    map: &MapSpec,
    db: &[(u32, String)],
) -> Option<PathBuf> {
    let tc = bpffs.join(TC_DIR);
    match map.pinning {
        Pinning::None => None,
        Pinning::ObjectNs => Some(tc.join(object_sha1).join(&map.name)),
        Pinning::GlobalNs => Some(tc.join(GLOBALS_DIR).join(&map.name)),
        Pinning::Custom(n) => {
            let (_, sub) = db.iter().find(|(v, _)| *v == n)?;
            Some(bpffs.join(sub).join(&map.name))
        }
    }
}

/// Checks that a pinned map has the object's definition: type, key and
/// value size, max entries and flags.
pub fn check_compatible(info: &MapInfo, map: &MapSpec) -> Result<(), (String, String)> {
    let same = info.map_type == map.map_type as u32
        && info.key_size == map.key_size
        && info.value_size == map.value_size
        && info.max_entries == map.max_entries
        && info.map_flags == map.flags;
    if same {
        return Ok(());
    }
    let pinned = format!(
        "{} key {} value {} max {} flags {:#x}",
        info.type_name(),
        info.key_size,
        info.value_size,
        info.max_entries,
        info.map_flags
    );
    Err((pinned, map.definition()))
}

/// Records what a load pins and the directories it makes, and removes them
/// on drop unless the load succeeded (`commit`).
#[derive(Debug, Default)]
pub struct PinGuard {
    created: CreatedPins,
    committed: bool,
}

/// The pins a load created and the directories it made for them (not the
/// pins it reused), kept so a caller can take them away again when what
/// it loaded them for fails (a filter that does not attach).
#[derive(Debug, Default)]
pub struct CreatedPins {
    pins: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl CreatedPins {
    /// Removes the pins, then the directories made for them (newest first;
    /// a directory someone else has filled since stays).
    pub fn remove(&self) {
        for p in self.pins.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

impl PinGuard {
    /// Creates the directories up to `dir`, remembering those it made.
    pub fn make_dirs(&mut self, dir: &Path) -> sys::Result<()> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        for d in missing.into_iter().rev() {
            match std::fs::create_dir(&d) {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
                    self.created.dirs.push(d);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(sys::Error::new("mkdir", e).on(d.display().to_string())),
            }
        }
        Ok(())
    }

    /// Pins `fd` at `path`, remembering the pin.
    pub fn pin(&mut self, fd: impl std::os::fd::AsFd, path: &Path) -> sys::Result<()> {
        if let Some(dir) = path.parent() {
            self.make_dirs(dir)?;
        }
        sys::obj::pin(fd, path)?;
        self.created.pins.push(path.to_path_buf());
        Ok(())
    }

    /// Keeps everything pinned so far; returns the record of it.
    pub fn commit(mut self) -> CreatedPins {
        self.committed = true;
        std::mem::take(&mut self.created)
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if !self.committed {
            self.created.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::MapType;
    use crate::elf::MapOrigin;

    fn map(pinning: Pinning) -> MapSpec {
        let mut m = MapSpec::new("counters", MapOrigin::Legacy, MapType::Hash);
        m.pinning = pinning;
        m
    }

    #[test]
    fn pin_paths_follow_tc() {
        let fs = Path::new("/b");
        let db = vec![(42, "custom/dir".to_string())];
        let sha = "ab".repeat(20);
        assert_eq!(pin_path(fs, &sha, &map(Pinning::None), &db), None);
        assert_eq!(
            pin_path(fs, &sha, &map(Pinning::ObjectNs), &db).unwrap(),
            PathBuf::from(format!("/b/tc/{sha}/counters"))
        );
        assert_eq!(
            pin_path(fs, &sha, &map(Pinning::GlobalNs), &db).unwrap(),
            PathBuf::from("/b/tc/globals/counters")
        );
        assert_eq!(
            pin_path(fs, &sha, &map(Pinning::Custom(42)), &db).unwrap(),
            PathBuf::from("/b/custom/dir/counters")
        );
        assert_eq!(pin_path(fs, &sha, &map(Pinning::Custom(7)), &db), None);
    }

    #[test]
    fn pinning_db_reads_values_and_skips_comments() {
        let dir = std::env::temp_dir().join(format!("tcbpf-pindb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("db");
        std::fs::write(&f, "# comment\n42 foo/bar # trailing\n0x10\tbaz\nbroken\n").unwrap();
        let db = read_pinning_db(&f);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(db, vec![(42, "foo/bar".into()), (16, "baz".into())]);
    }
}

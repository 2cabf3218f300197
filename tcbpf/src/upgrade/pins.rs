//! The new maps' pins: made at temporary names (`NAME__upgrading`; bpffs
//! takes no '.') beside the pins they replace before the swap, renamed
//! over them after it, removed again when the upgrade stops before.

use std::path::{Path, PathBuf};

use super::{Error, Step};
use crate::sys::{self, MapFd};

/// The temporary name of the pin at `path` while an upgrade runs (bpffs
/// takes no '.' in names).
pub(super) fn temp_pin(path: &Path) -> PathBuf {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{file}__upgrading"))
}

/// New pins made at temporary names before the swap, renamed over the
/// real ones after it; removed again when the upgrade stops before.
#[derive(Debug, Default)]
pub(super) struct PendingPins {
    /// (temporary, final) paths.
    pub(super) pending: Vec<(PathBuf, PathBuf)>,
    /// Directories made for them.
    pub(super) dirs: Vec<PathBuf>,
    pub(super) done: bool,
}

impl PendingPins {
    pub(super) fn prepare(
        &mut self,
        bpffs: &Path,
        name: &str,
        fd: &MapFd,
        path: &Path,
        old_id: Option<u32>,
    ) -> Result<(), Error> {
        let fail =
            |kind, message: String| Error::new(Step::Pin, Some(name.to_string()), kind, message);
        let new_id = sys::info::map_info(fd)
            .map_err(|e| Error::sys(Step::Pin, Some(name.into()), format!("map '{name}'"), e))?
            .id;
        if path.symlink_metadata().is_ok() {
            let pinned = sys::obj::get_pinned_map(path, sys::obj::open::RDONLY)
                .and_then(|m| sys::info::map_info(&m))
                .map(|i| i.id);
            match pinned {
                Ok(id) if id == new_id => return Ok(()), // a reused map, pinned already
                Ok(id) if Some(id) == old_id => {}
                _ => {
                    return Err(fail(
                        crate::ErrorKind::BadInput,
                        format!(
                            "map '{name}': a pin in the way at {} (not the running program's map)",
                            path.display()
                        ),
                    ))
                }
            }
        }
        if path.starts_with(bpffs) {
            sys::fs::ensure_bpffs(bpffs).map_err(|e| {
                Error::sys(
                    Step::Pin,
                    Some(name.into()),
                    format!("bpffs {}", bpffs.display()),
                    e,
                )
            })?;
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut missing = Vec::new();
        for d in dir.ancestors() {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
        }
        for d in missing.into_iter().rev() {
            std::fs::create_dir(&d).map_err(|e| {
                fail(
                    crate::ErrorKind::from_io(&e),
                    format!("mkdir {}: {e}", d.display()),
                )
            })?;
            self.dirs.push(d);
        }
        let temp = temp_pin(path);
        // A temporary pin left by an upgrade killed before its swap.
        let _ = std::fs::remove_file(&temp);
        sys::obj::pin(fd, &temp)
            .map_err(|e| Error::sys(Step::Pin, Some(name.into()), format!("map '{name}'"), e))?;
        self.pending.push((temp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every temporary pin over its final path; what fails is
    /// returned as notes.
    pub(super) fn commit(mut self) -> Vec<String> {
        self.done = true;
        let mut notes = Vec::new();
        for (temp, path) in std::mem::take(&mut self.pending) {
            if let Err(e) = std::fs::rename(&temp, &path) {
                notes.push(format!(
                    "pin {}: rename from {}: {e}",
                    path.display(),
                    temp.display()
                ));
            }
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            super::checkpoint::reached(&format!("renamed:{file}"));
        }
        notes
    }

    pub(super) fn abandon(&mut self) {
        for (temp, _) in self.pending.drain(..) {
            let _ = std::fs::remove_file(temp);
        }
        for d in self.dirs.drain(..).rev() {
            let _ = std::fs::remove_dir(d);
        }
        self.done = true;
    }
}

impl Drop for PendingPins {
    fn drop(&mut self) {
        if !self.done {
            self.abandon();
        }
    }
}

/// After the swap: the pins the old object left in its own namespace
/// (`<bpffs>/tc/<its sha1>/`, iproute2's `PIN_OBJECT_NS`) name maps of the
/// old program under a namespace nothing loads any more. Each one whose
/// map no program but the old and the new one uses is removed, then the
/// directory when it is empty; pins of maps another program uses (the same
/// object on another hook) stay. Returns what could not be removed.
pub(super) fn remove_old_namespace_pins(
    bpffs: &Path,
    new_sha1: &str,
    old_maps: &[u32],
    progs: [u32; 2],
) -> Vec<String> {
    let tc = bpffs.join(crate::load::pin::TC_DIR);
    let Ok(dirs) = std::fs::read_dir(&tc) else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    let mut elsewhere: Option<Vec<u32>> = None;
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let is_sha1 = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_sha1 || name == new_sha1 || !dir.path().is_dir() {
            continue;
        }
        let Ok(pins) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for pin in pins.flatten() {
            let id = sys::obj::get_pinned_map(&pin.path(), sys::obj::open::RDONLY)
                .and_then(|m| sys::info::map_info(&m))
                .map(|i| i.id);
            let Ok(id) = id else { continue };
            if !old_maps.contains(&id) {
                continue;
            }
            let others = elsewhere.get_or_insert_with(|| maps_of_other_programs(progs));
            if others.contains(&id) {
                continue;
            }
            if let Err(e) = std::fs::remove_file(pin.path()) {
                notes.push(format!("old pin {}: {e}", pin.path().display()));
            }
        }
        let _ = std::fs::remove_dir(dir.path()); // only when empty
    }
    notes
}

/// The ids of the maps every loaded program but `progs` uses.
fn maps_of_other_programs(progs: [u32; 2]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut id = 0;
    while let Ok(Some(next)) = sys::obj::next_prog_id(id) {
        id = next;
        if progs.contains(&id) {
            continue;
        }
        if let Ok(info) = sys::obj::prog_by_id(id).and_then(|p| sys::info::prog_info(&p)) {
            out.extend(info.map_ids);
        }
    }
    out
}

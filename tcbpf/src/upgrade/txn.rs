//! The transaction directory of an upgrade: what a rerun needs to undo an
//! upgrade killed before its swap, or to finish one killed after it (pin
//! renames, reconciliation). It lives on the bpffs, one per hook, at
//! `<bpffs>/tcbpf/upgrade/<hook>/`:
//!
//! ```text
//! prog-old, prog-new      pins of the running and the new program
//! pin-<n>                 symlink → a final pin path whose temporary pin
//!                         (NAME__upgrading) is to be renamed over it
//! map-<name>/old          pin of a migrated map's old map,
//! map-<name>/snap         … of its entries at the copy, old layout (an
//!                         array of 64 KiB chunks: `Entries::to_bytes`),
//! map-<name>/done         … of the keys reconciled so far (`sum`: key →
//!                         the old final value whose increments are added),
//! map-<name>/new          … of the new map,
//! map-<name>/mode         symlink → sum | copy
//! ```
//!
//! It is made as `<hook>__preparing` and renamed to `<hook>` once complete,
//! before the swap; a map's directory goes when that map is reconciled,
//! the whole directory when the upgrade is done. The state machine is in
//! ARCHITECTURE.md. Symlinks serve as the small records: a bpffs holds no
//! regular files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::checkpoint;
use super::entries::Entries;
use super::find::{kernel_btf, Attached};
use super::migrate::{reconcile, wait_for_old_programs, Snapshot};
use super::pins::temp_pin;
use super::plan::{plan_map, Action, MapSide, Mode};
use super::{Error, Step};
use crate::abi::{map_flags, MapType};
use crate::sys::{self, info::MapInfo, map as sysmap, MapFd, ProgFd};

/// The inode of this thread's network namespace (0 when unreadable).
pub(super) fn netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// The name of the hook's transaction directory: network namespace,
/// device, and the filter's parent/pref/handle or the tcx link's id.
pub(super) fn hook_id(ifindex: u32, attached: &Attached) -> String {
    let kind = match attached {
        Attached::Filter(f) => HookKind::Filter {
            parent: f.parent.0,
            pref: f.pref,
            handle: f.handle,
        },
        Attached::Link { id, .. } => HookKind::Link(*id),
    };
    HookName {
        netns: netns(),
        ifindex,
        kind,
    }
    .to_string()
}

/// What a transaction directory's name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HookName {
    pub(super) netns: u64,
    pub(super) ifindex: u32,
    pub(super) kind: HookKind,
}

/// A cls_bpf filter or a tcx link, as in [`HookName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HookKind {
    Filter { parent: u32, pref: u16, handle: u32 },
    Link(u32),
}

impl std::fmt::Display for HookName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (netns, ifindex) = (self.netns, self.ifindex);
        match self.kind {
            HookKind::Filter {
                parent,
                pref,
                handle,
            } => write!(
                f,
                "net{netns}-if{ifindex}-parent{parent:08x}-pref{pref}-handle{handle:x}"
            ),
            HookKind::Link(id) => write!(f, "net{netns}-if{ifindex}-tcx-link{id}"),
        }
    }
}

impl HookName {
    /// Reads a name [`hook_id`] wrote (without `__preparing`).
    pub(super) fn parse(name: &str) -> Option<HookName> {
        let rest = name.strip_prefix("net")?;
        let (netns, rest) = rest.split_once("-if")?;
        let (ifindex, rest) = rest.split_once('-')?;
        let kind = if let Some(id) = rest.strip_prefix("tcx-link") {
            HookKind::Link(id.parse().ok()?)
        } else {
            let rest = rest.strip_prefix("parent")?;
            let (parent, rest) = rest.split_once("-pref")?;
            let (pref, handle) = rest.split_once("-handle")?;
            HookKind::Filter {
                parent: u32::from_str_radix(parent, 16).ok()?,
                pref: pref.parse().ok()?,
                handle: u32::from_str_radix(handle, 16).ok()?,
            }
        };
        let out = HookName {
            netns: netns.parse().ok()?,
            ifindex: ifindex.parse().ok()?,
            kind,
        };
        (out.to_string() == name).then_some(out)
    }
}

/// `<bpffs>/tcbpf/upgrade`.
pub(super) fn root(bpffs: &Path) -> PathBuf {
    bpffs.join("tcbpf/upgrade")
}

/// Takes the upgrade lock of the bpffs (an exclusive `flock` on
/// `<bpffs>/tcbpf/upgrade`, which stays): one upgrade, or one recovery of
/// a killed one, at a time. Waits 10 s at most for another upgrade to end.
pub(super) fn lock(bpffs: &Path) -> Result<sys::fs::DirLock, Error> {
    sys::fs::ensure_bpffs(bpffs)
        .map_err(|e| Error::sys(Step::Find, None, format!("bpffs {}", bpffs.display()), e))?;
    let dir = root(bpffs);
    std::fs::create_dir_all(&dir)
        .map_err(|e| txn_err(None, format!("mkdir {}", dir.display()), e))?;
    for _ in 0..1000 {
        let held = sys::fs::try_lock_dir(&dir)
            .map_err(|e| Error::sys(Step::Find, None, format!("lock {}", dir.display()), e))?;
        if let Some(lock) = held {
            return Ok(lock);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(Error::new(
        Step::Find,
        None,
        crate::ErrorKind::System,
        format!("another upgrade holds {} (waited 10 s)", dir.display()),
    ))
}

/// The suffix of a transaction directory still being made.
pub(super) const PREPARING: &str = "__preparing";

fn preparing(dir: &Path) -> PathBuf {
    let file = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!("{file}{PREPARING}"))
}

fn txn_err(map: Option<&str>, what: String, e: std::io::Error) -> Error {
    Error::new(
        Step::Pin,
        map.map(str::to_string),
        crate::ErrorKind::from_io(&e),
        format!("transaction directory: {what}: {e}"),
    )
}

/// The transaction of the upgrade running now. Dropped before
/// [`Txn::swapped`], it removes itself (the upgrade stopped before its
/// swap); after, it stays for a rerun unless [`Txn::finish`] ran.
#[derive(Debug)]
pub(super) struct Txn {
    dir: PathBuf,
    ready: bool,
    swapped: bool,
    pins: usize,
}

impl Txn {
    /// Starts `<hook>__preparing` with both programs pinned.
    pub(super) fn begin(
        bpffs: &Path,
        hook: &str,
        old: &ProgFd,
        new: &ProgFd,
    ) -> Result<Txn, Error> {
        let dir = root(bpffs).join(hook);
        let prep = preparing(&dir);
        std::fs::create_dir_all(root(bpffs))
            .map_err(|e| txn_err(None, format!("mkdir {}", root(bpffs).display()), e))?;
        std::fs::create_dir(&prep)
            .map_err(|e| txn_err(None, format!("mkdir {}", prep.display()), e))?;
        let txn = Txn {
            dir,
            ready: false,
            swapped: false,
            pins: 0,
        };
        for (name, fd) in [("prog-old", old), ("prog-new", new)] {
            sys::obj::pin(fd, &prep.join(name))
                .map_err(|e| Error::sys(Step::Pin, None, format!("pinning {name}"), e))?;
        }
        checkpoint::reached("txn-preparing");
        Ok(txn)
    }

    fn path(&self) -> PathBuf {
        if self.ready {
            self.dir.clone()
        } else {
            preparing(&self.dir)
        }
    }

    /// Records a migrated map: its old and new map, the entries as copied
    /// and an empty record of reconciled keys, which it returns.
    pub(super) fn add_map(
        &mut self,
        name: &str,
        mode: Mode,
        old: (&MapFd, &MapInfo),
        new: &MapFd,
        snap: &Snapshot,
    ) -> Result<MapFd, Error> {
        let dir = self.path().join(format!("map-{name}"));
        std::fs::create_dir(&dir)
            .map_err(|e| txn_err(Some(name), format!("mkdir {}", dir.display()), e))?;
        let sys_err = |what: &str, e| {
            Error::sys(
                Step::Pin,
                Some(name.into()),
                format!("map '{name}': {what}"),
                e,
            )
        };
        let snap_fd = store_snapshot(&snap.entries).map_err(|e| sys_err("snapshot", e))?;
        let done = done_map(old.1, &snap.old_sizes).map_err(|e| sys_err("record", e))?;
        for (file, fd) in [
            ("old", old.0),
            ("new", new),
            ("snap", &snap_fd),
            ("done", &done),
        ] {
            sys::obj::pin(fd, &dir.join(file)).map_err(|e| sys_err(&format!("pin {file}"), e))?;
        }
        std::os::unix::fs::symlink(mode.word(), dir.join("mode"))
            .map_err(|e| txn_err(Some(name), "mode".into(), e))?;
        checkpoint::reached(&format!("txn:{name}"));
        Ok(done)
    }

    /// Records a final pin path before its temporary pin is made.
    pub(super) fn add_pin(&mut self, name: &str, path: &Path) -> Result<(), Error> {
        let link = self.path().join(format!("pin-{}", self.pins));
        std::os::unix::fs::symlink(path, &link)
            .map_err(|e| txn_err(Some(name), format!("symlink {}", link.display()), e))?;
        self.pins += 1;
        Ok(())
    }

    /// The transaction is complete: `<hook>__preparing` becomes `<hook>`.
    pub(super) fn ready(&mut self) -> Result<(), Error> {
        let prep = preparing(&self.dir);
        std::fs::rename(&prep, &self.dir)
            .map_err(|e| txn_err(None, format!("rename to {}", self.dir.display()), e))?;
        self.ready = true;
        checkpoint::reached("txn-ready");
        Ok(())
    }

    /// The swap happened: from now on the directory stays until
    /// [`Txn::finish`].
    pub(super) fn swapped(&mut self) {
        self.swapped = true;
    }

    /// A migrated map is reconciled: its records go.
    pub(super) fn map_done(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.path().join(format!("map-{name}")));
    }

    /// The upgrade is done: the directory goes (and the old maps with it,
    /// unless something else holds them).
    pub(super) fn finish(mut self) {
        checkpoint::reached("finished");
        remove(&self.dir);
        self.swapped = false;
        self.ready = true;
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.swapped {
            remove(&self.path());
        }
    }
}

/// Removes a transaction directory (`<bpffs>/tcbpf/upgrade`, the lock,
/// stays).
fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Bytes per element of a snapshot array.
const CHUNK: usize = 64 << 10;

/// An array holding `entries` as bytes, in 64 KiB elements: a few large
/// writes however many entries there are.
fn store_snapshot(entries: &Entries) -> sys::Result<MapFd> {
    let mut bytes = entries.to_bytes();
    bytes.resize(bytes.len().div_ceil(CHUNK).max(1) * CHUNK, 0);
    let chunks = bytes.len() / CHUNK;
    let fd = sysmap::create(&sysmap::MapCreate {
        map_type: MapType::Array as u32,
        key_size: 4,
        value_size: CHUNK as u32,
        max_entries: u32::try_from(chunks).unwrap_or(u32::MAX),
        name: "tcbpf_snapshot",
        ..Default::default()
    })?;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        sysmap::update(&fd, &(i as u32).to_ne_bytes(), chunk, sysmap::update::ANY)?;
    }
    Ok(fd)
}

/// The entries [`store_snapshot`] wrote.
fn load_snapshot(fd: &MapFd) -> Result<Entries, String> {
    let info = sys::info::map_info(fd).map_err(|e| e.to_string())?;
    let mut bytes = vec![0u8; info.max_entries as usize * CHUNK];
    for (i, chunk) in bytes.chunks_mut(CHUNK).enumerate() {
        sysmap::lookup(fd, &(i as u32).to_ne_bytes(), chunk, 0).map_err(|e| e.to_string())?;
    }
    Entries::from_bytes(&bytes).ok_or_else(|| "the snapshot is cut short".to_string())
}

/// An empty hash for the reconciled keys (key → whole old value), room
/// for as many keys as the old map holds, nothing preallocated.
fn done_map(old: &MapInfo, sizes: &sysmap::ElemSizes) -> sys::Result<MapFd> {
    sysmap::create(&sysmap::MapCreate {
        map_type: MapType::Hash as u32,
        key_size: old.key_size,
        value_size: sizes.value() as u32,
        max_entries: old.max_entries.max(1),
        map_flags: map_flags::NO_PREALLOC,
        name: "tcbpf_done",
        ..Default::default()
    })
}

/// A transaction left by an upgrade that was killed.
#[derive(Debug)]
pub(super) struct Pending {
    dir: PathBuf,
    ready: bool,
}

impl Pending {
    /// The transaction directory of `hook`, when there is one.
    pub(super) fn find(bpffs: &Path, hook: &str) -> Option<Pending> {
        let dir = root(bpffs).join(hook);
        if dir.is_dir() {
            return Some(Pending { dir, ready: true });
        }
        let prep = preparing(&dir);
        prep.is_dir().then_some(Pending {
            dir: prep,
            ready: false,
        })
    }

    /// The transaction directory `dir`; `ready` unless it is still
    /// `…__preparing`.
    pub(super) fn at(dir: PathBuf, ready: bool) -> Pending {
        Pending { dir, ready }
    }

    /// Its directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it is, for a plan's notes and `filter show`.
    pub(super) fn describe(&self) -> String {
        format!(
            "{}: an upgrade was killed {}; the next command that changes this hook (filter upgrade, add, replace, del; qdisc del; chain apply) completes it",
            self.dir.display(),
            if self.ready {
                "around its swap"
            } else {
                "before its swap"
            }
        )
    }

    fn pins(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for i in 0.. {
            match std::fs::read_link(self.dir.join(format!("pin-{i}"))) {
                Ok(p) => out.push(p),
                Err(_) => break,
            }
        }
        out
    }

    fn prog_id(&self, file: &str) -> Result<u32, Error> {
        let path = self.dir.join(file);
        sys::obj::get_pinned_prog(&path)
            .and_then(|p| sys::info::prog_info(&p))
            .map(|i| i.id)
            .map_err(|e| Error::sys(Step::Find, None, format!("{}", path.display()), e))
    }

    /// Undoes (the hook still runs the old program) or finishes (it runs
    /// the new one) the interrupted upgrade, given the program at the
    /// hook; returns what was done.
    pub(super) fn resume(self, running: u32) -> Result<String, Error> {
        if !self.ready {
            self.abort();
            return Ok("removed what an upgrade killed before its swap had made".into());
        }
        let (old, new) = (self.prog_id("prog-old")?, self.prog_id("prog-new")?);
        if running == old {
            checkpoint::reached("recover-aborted");
            self.abort();
            return Ok(format!(
                "undid an upgrade killed before its swap (program {old} stayed)"
            ));
        }
        if running != new {
            return Err(Error::new(
                Step::Find,
                None,
                crate::ErrorKind::System,
                format!(
                    "{} holds an interrupted upgrade from program {old} to {new}, but the hook runs program {running}: remove the directory to go on",
                    self.dir.display()
                ),
            ));
        }
        let mut notes = Vec::new();
        for path in self.pins() {
            let temp = temp_pin(&path);
            if temp.symlink_metadata().is_ok() {
                if let Err(e) = std::fs::rename(&temp, &path) {
                    notes.push(format!("pin {}: rename: {e}", path.display()));
                }
            }
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            checkpoint::reached(&format!("recover-renamed:{file}"));
        }
        if let Err(e) = wait_for_old_programs() {
            notes.push(format!("waiting for the old program: {e}"));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        checkpoint::reached("recover-waited");
        let mut maps: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        maps.retain(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("map-"))
        });
        maps.sort();
        for dir in maps {
            let name = dir.file_name().unwrap_or_default().to_string_lossy()[4..].to_string();
            if let Err(e) = reconcile_recorded(&name, &dir) {
                notes.push(format!("map '{name}': reconciling: {e}"));
            }
            checkpoint::reached(&format!("recover-reconciled:{name}"));
            let _ = std::fs::remove_dir_all(&dir);
        }
        checkpoint::reached("recover-finished");
        remove(&self.dir);
        notes.insert(
            0,
            format!("finished an upgrade killed after its swap (program {old} -> {new})"),
        );
        Ok(notes.join("; "))
    }

    fn abort(self) {
        for path in self.pins() {
            let _ = std::fs::remove_file(temp_pin(&path));
        }
        remove(&self.dir);
    }
}

/// Reconciles one map from its records.
fn reconcile_recorded(name: &str, dir: &Path) -> Result<(), String> {
    let open = |f: &str| {
        sys::obj::get_pinned_map(&dir.join(f), sys::obj::open::RDWR).map_err(|e| e.to_string())
    };
    let (old, snap_fd, done, new) = (open("old")?, open("snap")?, open("done")?, open("new")?);
    let mode = match std::fs::read_link(dir.join("mode"))
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .as_ref()
    {
        "sum" => Mode::Sum,
        "copy" => Mode::Copy,
        other => return Err(format!("unknown mode '{other}'")),
    };
    let (oi, ni) = (
        sys::info::map_info(&old).map_err(|e| e.to_string())?,
        sys::info::map_info(&new).map_err(|e| e.to_string())?,
    );
    let (ob, nb) = (kernel_btf(&oi)?, kernel_btf(&ni)?);
    fn side<'a>(
        name: &'a str,
        i: &MapInfo,
        b: &'a Option<std::sync::Arc<crate::btf::Btf>>,
    ) -> Option<MapSide<'a>> {
        Some(MapSide {
            name,
            map_type: i.kind()?,
            key_size: i.key_size,
            value_size: i.value_size,
            max_entries: i.max_entries,
            flags: i.map_flags,
            btf: b
                .as_deref()
                .map(|b| (b, i.btf_key_type_id, i.btf_value_type_id)),
            global_data: false,
        })
    }
    let (Some(os), Some(ns)) = (side(name, &oi, &ob), side(name, &ni, &nb)) else {
        return Err("a map type this tcbpf does not know".into());
    };
    let Action::Migrate(mig) = plan_map(Some(&os), &ns, Some(mode)) else {
        return Err("the old and new map no longer plan as a migration".into());
    };
    // The snapshot, with the keys reconciled before the kill at their
    // final old values: their increments are in the new map already.
    let mut entries = load_snapshot(&snap_fd)?;
    let done_sizes = sysmap::ElemSizes::of(&done).map_err(|e| e.to_string())?;
    let reconciled = Entries::read(&done, &done_sizes).map_err(|e| e.to_string())?;
    let index: std::collections::HashMap<Vec<u8>, usize> = entries
        .index()
        .into_iter()
        .map(|(k, i)| (k.to_vec(), i))
        .collect();
    for i in 0..reconciled.len() {
        match index.get(reconciled.key(i)) {
            Some(&j) => entries.set_value(j, reconciled.value(i)),
            None => entries
                .push_zeroed(reconciled.key(i))
                .copy_from_slice(reconciled.value(i)),
        }
    }
    let snap = Snapshot {
        entries,
        old_sizes: sysmap::ElemSizes::of(&old).map_err(|e| e.to_string())?,
        new_sizes: sysmap::ElemSizes::of(&new).map_err(|e| e.to_string())?,
    };
    reconcile(
        &mig,
        &snap,
        &old,
        &new,
        &done,
        &format!("recover-reconciling:{name}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_read_back_as_written() {
        for kind in [
            HookKind::Filter {
                parent: 0xffff_fff3,
                pref: 49152,
                handle: 0x1a,
            },
            HookKind::Link(7),
        ] {
            let name = HookName {
                netns: 4026531840,
                ifindex: 12,
                kind,
            };
            assert_eq!(HookName::parse(&name.to_string()), Some(name));
        }
        for bad in [
            "",
            "net1-if2",
            "net1-if2-tcx-linkx",
            "net1-if2-parent1-pref1-handle1",
        ] {
            assert_eq!(HookName::parse(bad), None, "{bad}");
        }
    }
}

//! A private bpffs mount per test, so that pins never reach the host's
//! /sys/fs/bpf and vanish with the test.

use crate::TempDir;
use std::path::{Path, PathBuf};
use tcbpf::load::LoadOptions;
use tcbpf::sys;

/// A bpffs mounted at `path`, a directory inside a fresh [`TempDir`] `dir`;
/// lazily unmounted and removed on drop.
pub struct Bpffs {
    /// The temporary directory holding the mount point (room for files
    /// that must not be on the bpffs).
    pub dir: TempDir,
    /// The mount point.
    pub path: PathBuf,
}

impl Bpffs {
    pub fn new() -> Bpffs {
        let dir = TempDir::new("bpffs");
        let path = dir.join("fs");
        std::fs::create_dir_all(&path).expect("create bpffs mount point");
        sys::fs::mount_bpffs(&path).expect("mount bpffs");
        Bpffs { dir, path }
    }

    /// The path of `name` (a pin or a directory) inside this bpffs.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// The path of `name` inside this bpffs, as a command-line word.
    pub fn arg(&self, name: impl AsRef<Path>) -> String {
        crate::s(&self.join(name)).to_string()
    }

    /// The mount point as a `&str`.
    pub fn as_str(&self) -> &str {
        crate::s(&self.path)
    }

    /// Load options that pin into this bpffs only (and read no pinning db).
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            bpffs: self.path.clone(),
            pinning_db: self.dir.join("no-pinning-db"),
            ..LoadOptions::default()
        }
    }
}

impl Default for Bpffs {
    fn default() -> Bpffs {
        Bpffs::new()
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        if sys::fs::is_bpffs(&self.path) {
            let _ = sys::fs::unmount(&self.path);
        }
        // `dir` goes next and removes the now empty mount point.
    }
}

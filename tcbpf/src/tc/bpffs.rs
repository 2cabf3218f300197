//! Where tc keeps pins (the bpffs root, `$TC_BPF_MNT` else /sys/fs/bpf, as
//! iproute2), tc's `m:PATH` shorthand for a path under `<root>/tc/`, and
//! the `tc/links/` directory that holds pinned tcx links. The filesystem
//! calls themselves are `sys::fs`.

use super::error::{Error, Result};
use std::path::{Path, PathBuf};

pub use crate::sys::fs::{bpffs_root as root, ensure_bpffs as ensure_mounted, is_bpffs};
pub use crate::sys::fs::{DEFAULT_ROOT, ENV_MNT};

/// `<root>/tc/links`, created (and the bpffs mounted) when missing.
pub fn links_dir() -> Result<PathBuf> {
    let root = root();
    ensure_mounted(&root)?;
    let dir = root.join("tc").join("links");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io("mkdir", e).on(dir.display().to_string()))?;
    Ok(dir)
}

/// A pinned path as tc takes it: `m:REST` is `REST` under the bpffs tc
/// directory (`$TC_BPF_MNT/tc`, default `/sys/fs/bpf/tc`), as tc resolves
/// `pinned m:…`, `object-pinned m:…` and `exec bpf graft m:…`; anything
/// else is the path as written.
pub fn tc_path(text: &str) -> PathBuf {
    tc_path_in(&root(), text)
}

/// [`tc_path`] with the bpffs root given.
pub fn tc_path_in(root: &Path, text: &str) -> PathBuf {
    match text.strip_prefix("m:") {
        Some(rest) => root.join("tc").join(rest.trim_start_matches('/')),
        None => PathBuf::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_paths_are_under_the_tc_directory_of_the_bpffs() {
        let root = Path::new("/mnt/bpf");
        assert_eq!(
            tc_path_in(root, "m:globals/jmp_tc"),
            Path::new("/mnt/bpf/tc/globals/jmp_tc")
        );
        assert_eq!(tc_path_in(root, "m:/p"), Path::new("/mnt/bpf/tc/p"));
        assert_eq!(tc_path_in(root, "/abs/m:x"), Path::new("/abs/m:x"));
        assert_eq!(tc_path_in(root, "rel"), Path::new("rel"));
    }

    #[test]
    fn ordinary_directories_are_not_bpffs() {
        assert!(!is_bpffs(Path::new("/proc")));
        assert!(!is_bpffs(Path::new("/no/such/dir")));
    }
}

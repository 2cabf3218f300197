//! Where tc keeps pins (the bpffs root, `$TC_BPF_MNT` else /sys/fs/bpf, as
//! iproute2) and the `tc/links/` directory that holds pinned tcx links. The
//! filesystem calls themselves are `sys::fs`.

use super::error::{Error, Result};
use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn ordinary_directories_are_not_bpffs() {
        assert!(!is_bpffs(Path::new("/proc")));
        assert!(!is_bpffs(Path::new("/no/such/dir")));
    }
}

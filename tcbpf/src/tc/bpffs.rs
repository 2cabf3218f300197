//! Where tc keeps pins: the bpffs root (`TC_BPF_MNT`, else /sys/fs/bpf, as
//! iproute2), mounting it when absent, and the `tc/links/` directory that
//! holds pinned tcx links.
//!
//! The statfs(2) and mount(2) calls are the only unsafe code here.

use super::error::{Error, Result};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The environment variable that moves the bpffs root, as in iproute2.
pub const ENV_MNT: &str = "TC_BPF_MNT";
/// The default bpffs root.
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf";

/// The bpffs root: `$TC_BPF_MNT` or /sys/fs/bpf.
pub fn root() -> PathBuf {
    match std::env::var_os(ENV_MNT) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// `BPF_FS_MAGIC`: the `f_type` statfs reports for bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// True when `dir` exists and lies on a bpffs (its root or any directory
/// in it).
pub fn is_bpffs(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs only writes into `buf`, a zeroed struct of the right type.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and alive; buf is valid for writes.
    let ret = unsafe { libc::statfs(c.as_ptr(), &mut buf) };
    ret == 0 && buf.f_type as i64 == BPF_FS_MAGIC
}

/// Mounts a bpffs at `dir` unless `dir` is on one already.
pub fn ensure_mounted(dir: &Path) -> Result<()> {
    if is_bpffs(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io("mkdir", e).on(dir.display().to_string()))?;
    let target = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::with_message("mount bpffs", libc::EINVAL, "path holds a NUL byte"))?;
    // SAFETY: every pointer is a NUL-terminated string alive for the call;
    // bpffs takes no mount data.
    let ret = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret < 0 {
        return Err(
            Error::io("mount bpffs", io::Error::last_os_error()).on(dir.display().to_string())
        );
    }
    Ok(())
}

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

    #[test]
    fn ordinary_directories_are_not_bpffs() {
        assert!(!is_bpffs(Path::new("/proc")));
        assert!(!is_bpffs(Path::new("/no/such/dir")));
    }
}

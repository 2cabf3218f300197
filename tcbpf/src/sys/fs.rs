//! The bpf filesystem: where tc keeps pins (`$TC_BPF_MNT`, else
//! /sys/fs/bpf, as iproute2), checking that a directory is a bpffs, mounting
//! one when absent, and unmounting it (tests mount their own in a temporary
//! directory).

use super::{c_path, Error, Result};
use std::io;
use std::path::{Path, PathBuf};

/// The environment variable that moves the bpffs root, as in iproute2.
pub const ENV_MNT: &str = "TC_BPF_MNT";
/// The default bpffs root.
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf";

/// The bpffs root tc uses: `$TC_BPF_MNT` or /sys/fs/bpf.
pub fn bpffs_root() -> PathBuf {
    match std::env::var_os(ENV_MNT) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// `BPF_FS_MAGIC`: `statfs.f_type` of a bpffs.
pub(crate) const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// True when `path` is the root or a directory of a mounted bpffs.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = c_path("statfs", path) else {
        return false;
    };
    // SAFETY: statfs is plain old data; zeroed is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid statfs buffer.
    let ret = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    ret == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Mounts a bpffs at `path` (which must exist), mode 0700 as tc does.
pub fn mount_bpffs(path: &Path) -> Result<()> {
    let target = c_path("mount", path)?;
    let source = c"bpf";
    let fstype = c"bpf";
    let data = c"mode=0700";
    // SAFETY: every pointer is a NUL-terminated string alive for the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if ret != 0 {
        return Err(
            Error::new("mount bpffs", io::Error::last_os_error()).on(path.display().to_string())
        );
    }
    Ok(())
}

/// Makes sure `path` is on a mounted bpffs, creating the directory and
/// mounting one when it is not (tc does the same at /sys/fs/bpf).
pub fn ensure_bpffs(path: &Path) -> Result<()> {
    if is_bpffs(path) {
        return Ok(());
    }
    std::fs::create_dir_all(path)
        .map_err(|e| Error::new("mkdir", e).on(path.display().to_string()))?;
    mount_bpffs(path)
}

/// Unmounts the filesystem at `path`, lazily (`MNT_DETACH`) so that open
/// descriptors do not keep it busy.
pub fn unmount(path: &Path) -> Result<()> {
    let target = c_path("umount", path)?;
    // SAFETY: target is a NUL-terminated string alive for the call.
    let ret = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if ret != 0 {
        return Err(Error::new("umount", io::Error::last_os_error()).on(path.display().to_string()));
    }
    Ok(())
}

/// An exclusive `flock` on a directory (a bpffs directory holds no regular
/// file to lock): held while this lives, released when it drops or the
/// process ends, however it ends.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] std::fs::File);

/// Takes an exclusive `flock` on the directory `path` without waiting:
/// None when another descriptor holds it.
pub fn try_lock_dir(path: &Path) -> Result<Option<DirLock>> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)
        .map_err(|e| Error::new("open", e).on(path.display().to_string()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(DirLock(dir)));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(Error::new("flock", e).on(path.display().to_string()))
    }
}

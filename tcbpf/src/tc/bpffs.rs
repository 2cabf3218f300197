//! Where tc keeps pins: the bpffs root (`TC_BPF_MNT`, else /sys/fs/bpf, as
//! iproute2), mounting it when absent, and the `tc/links/` directory that
//! holds pinned tcx links.
//!
//! Only the mount(2) call is unsafe; reading mounts goes through
//! /proc/self/mounts.

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

/// True when a bpffs is mounted exactly at `dir`.
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts.lines().any(|line| {
        let mut f = line.split_whitespace();
        let (_, point, fstype) = (f.next(), f.next(), f.next());
        fstype == Some("bpf") && point.map(unescape_mount_path).as_deref() == Some(dir.as_path())
    })
}

/// /proc/self/mounts writes space, tab, newline and backslash as octal.
fn unescape_mount_path(text: &str) -> PathBuf {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Mounts a bpffs at `dir` unless one is there already.
pub fn ensure_mounted(dir: &Path) -> Result<()> {
    if is_mounted(dir) {
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
    fn mount_paths_unescape_octal() {
        assert_eq!(unescape_mount_path("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mount_path("/end\\04"), PathBuf::from("/end\\04"));
    }
}

//! Object commands shared by maps, programs, BTF and links: pinning in
//! bpffs, opening by id, and walking ids.

use super::fd::owned_from_ret;
use super::{bpf, c_path, cmd, ptr, BtfFd, Error, LinkFd, MapFd, ProgFd, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}
// path_fd (6.5) by hand.
abi_layout!(ObjAttr, 24; pathname @ 0, bpf_fd @ 8, file_flags @ 12, path_fd @ 16);

/// BPF_OBJ_PIN: pins any bpf object at `path` in a bpffs.
pub fn pin(fd: impl AsFd, path: &Path) -> Result<()> {
    let c = c_path("BPF_OBJ_PIN", path)?;
    let mut attr = ObjAttr {
        pathname: ptr(c.as_ptr()),
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: pathname points at a NUL-terminated string alive for the call.
    unsafe { bpf(cmd::OBJ_PIN, &mut attr) }
        .map(|_| ())
        .map_err(|e| Error::new("BPF_OBJ_PIN", e).on(path.display().to_string()))
}

/// Open flags for getting objects: read-only or write-only access.
pub mod open {
    /// Read and write.
    pub const RDWR: u32 = 0;
    /// `BPF_F_RDONLY`.
    pub const RDONLY: u32 = 1 << 3;
    /// `BPF_F_WRONLY`.
    pub const WRONLY: u32 = 1 << 4;
}

/// BPF_OBJ_GET: opens the object pinned at `path`, whatever its kind.
pub fn get_pinned(path: &Path, file_flags: u32) -> Result<OwnedFd> {
    let c = c_path("BPF_OBJ_GET", path)?;
    let mut attr = ObjAttr {
        pathname: ptr(c.as_ptr()),
        file_flags,
        ..Default::default()
    };
    // SAFETY: pathname points at a NUL-terminated string alive for the call.
    unsafe { bpf(cmd::OBJ_GET, &mut attr) }
        .map(owned_from_ret)
        .map_err(|e| {
            let e = Error::new("BPF_OBJ_GET", e).on(path.display().to_string());
            // The kernel's EACCES/EPERM/EINVAL for a directory or a file
            // outside bpffs judge the path the caller gave: bad input.
            if !e.is_not_found() && not_a_pin(path).is_some() {
                e.with_kind(crate::ErrorKind::BadInput)
            } else {
                e
            }
        })
}

/// Why `path` cannot hold a pinned bpf object, when that is plain from the
/// file itself: a directory, or a file on a filesystem that is not a
/// bpffs. None when it may well be a pin (the kernel's answer stands).
pub fn not_a_pin(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        return Some("it is a directory".into());
    }
    if !super::fs::is_bpffs(path) {
        return Some("it is not on a bpf filesystem".into());
    }
    None
}

/// Opens the map pinned at `path`, checking that it is a map.
pub fn get_pinned_map(path: &Path, file_flags: u32) -> Result<MapFd> {
    let fd = get_pinned(path, file_flags)?;
    MapFd::from_owned(fd).map_err(|e| e.on(path.display().to_string()))
}

/// Opens the program pinned at `path`, checking that it is a program.
pub fn get_pinned_prog(path: &Path) -> Result<ProgFd> {
    let fd = get_pinned(path, open::RDWR)?;
    ProgFd::from_owned(fd).map_err(|e| e.on(path.display().to_string()))
}

#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}
abi_layout!(IdAttr, 12; id @ 0, next_id @ 4, open_flags @ 8);

fn get_by_id(command: u32, op: &'static str, id: u32, open_flags: u32) -> Result<OwnedFd> {
    let mut attr = IdAttr {
        id,
        open_flags,
        ..Default::default()
    };
    // SAFETY: IdAttr holds no pointers.
    unsafe { bpf(command, &mut attr) }
        .map(owned_from_ret)
        .map_err(|e| Error::new(op, e).on(format!("id {id}")))
}

/// BPF_MAP_GET_FD_BY_ID with `open::*` flags.
pub fn map_by_id(id: u32, open_flags: u32) -> Result<MapFd> {
    get_by_id(
        cmd::MAP_GET_FD_BY_ID,
        "BPF_MAP_GET_FD_BY_ID",
        id,
        open_flags,
    )
    .map(MapFd::from_kernel)
}

/// BPF_PROG_GET_FD_BY_ID.
pub fn prog_by_id(id: u32) -> Result<ProgFd> {
    get_by_id(cmd::PROG_GET_FD_BY_ID, "BPF_PROG_GET_FD_BY_ID", id, 0).map(ProgFd::from_kernel)
}

/// BPF_BTF_GET_FD_BY_ID.
pub fn btf_by_id(id: u32) -> Result<BtfFd> {
    get_by_id(cmd::BTF_GET_FD_BY_ID, "BPF_BTF_GET_FD_BY_ID", id, 0).map(BtfFd::from_kernel)
}

/// BPF_LINK_GET_FD_BY_ID.
pub fn link_by_id(id: u32) -> Result<LinkFd> {
    get_by_id(cmd::LINK_GET_FD_BY_ID, "BPF_LINK_GET_FD_BY_ID", id, 0).map(LinkFd::from_kernel)
}

fn next_id(command: u32, op: &'static str, start: u32) -> Result<Option<u32>> {
    let mut attr = IdAttr {
        id: start,
        ..Default::default()
    };
    // SAFETY: IdAttr holds no pointers.
    match unsafe { bpf(command, &mut attr) } {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(Error::new(op, e).on(format!("after id {start}"))),
    }
}

/// BPF_MAP_GET_NEXT_ID: the next map id after `start` (0 for the first).
pub fn next_map_id(start: u32) -> Result<Option<u32>> {
    next_id(cmd::MAP_GET_NEXT_ID, "BPF_MAP_GET_NEXT_ID", start)
}

/// BPF_PROG_GET_NEXT_ID.
pub fn next_prog_id(start: u32) -> Result<Option<u32>> {
    next_id(cmd::PROG_GET_NEXT_ID, "BPF_PROG_GET_NEXT_ID", start)
}

/// BPF_LINK_GET_NEXT_ID.
pub fn next_link_id(start: u32) -> Result<Option<u32>> {
    next_id(cmd::LINK_GET_NEXT_ID, "BPF_LINK_GET_NEXT_ID", start)
}

/// BPF_BTF_GET_NEXT_ID.
pub fn next_btf_id(start: u32) -> Result<Option<u32>> {
    next_id(cmd::BTF_GET_NEXT_ID, "BPF_BTF_GET_NEXT_ID", start)
}

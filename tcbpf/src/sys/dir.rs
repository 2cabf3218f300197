//! A directory held open by descriptor, and the calls relative to it
//! (`openat`, `fstatat`, `mkdirat`, `renameat`, `unlinkat`, `symlinkat`,
//! `readlinkat`, pins by `BPF_F_PATH_FD`), none of which follows a
//! symlink in the name it is given: for a service that keeps state in a
//! directory other users might reach (the keeper's `state DIR`), so that a
//! path is resolved once and every later step happens in the directory
//! that was checked.
//!
//! Names, not paths: each call takes one directory entry name (no `/`).
//! What an entry means is for the caller.

use super::fd::owned_from_ret;
use super::{bpf, cmd, ptr, MapFd};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// What `fstat`/`fstatat` says about an entry (never through a symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
}

impl Stat {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// True for a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    /// True for a regular file (what a pin is on a bpffs).
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// What kind of entry this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self.mode & libc::S_IFMT {
            libc::S_IFDIR => "a directory",
            libc::S_IFLNK => "a symlink",
            libc::S_IFREG => "a file",
            libc::S_IFSOCK => "a socket",
            libc::S_IFIFO => "a FIFO",
            _ => "a device",
        }
    }
}

/// An open directory (`O_DIRECTORY | O_NOFOLLOW`, close-on-exec).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{}' is not a directory entry name", name.to_string_lossy()),
        ));
    }
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds a NUL byte"))
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        mode: st.st_mode,
        uid: st.st_uid,
    }
}

const OPEN_DIR: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// `BPF_F_PATH_FD` (6.5): the pin path is relative to `path_fd`.
const BPF_F_PATH_FD: u32 = 1 << 14;

#[repr(C)]
#[derive(Default)]
struct ObjAtAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}
abi_layout!(ObjAtAttr, 24; pathname @ 0, bpf_fd @ 8, file_flags @ 12, path_fd @ 16);

impl Dir {
    /// Opens the directory at `path`; a symlink as its last component is
    /// refused (ELOOP), not followed.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
        // SAFETY: c is a NUL-terminated path alive for the call.
        let raw = check(unsafe { libc::open(c.as_ptr(), OPEN_DIR) })?;
        Ok(Dir {
            // SAFETY: raw is a fresh descriptor nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Opens the subdirectory `name`, refusing a symlink.
    pub fn open_at(&self, name: &OsStr) -> io::Result<Dir> {
        let c = c_name(name)?;
        // SAFETY: c is NUL-terminated; the directory descriptor is open.
        let raw = check(unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), OPEN_DIR) })?;
        Ok(Dir {
            // SAFETY: raw is a fresh descriptor nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// The directory's own owner and mode.
    pub fn stat(&self) -> io::Result<Stat> {
        // SAFETY: stat is plain data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat into st.
        check(unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) })?;
        Ok(stat_of(&st))
    }

    /// The entry `name` itself (a symlink is reported as one).
    pub fn stat_at(&self, name: &OsStr) -> io::Result<Stat> {
        let c = c_name(name)?;
        // SAFETY: stat is plain data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: c is NUL-terminated; fstatat writes one stat into st.
        check(unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(stat_of(&st))
    }

    /// True when the directory is on a bpffs.
    pub fn is_bpffs(&self) -> bool {
        // SAFETY: statfs is plain data; all-zero is a valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fstatfs writes one statfs into st.
        let ret = unsafe { libc::fstatfs(self.fd.as_raw_fd(), &mut st) };
        ret == 0 && st.f_type as i64 == super::fs::BPF_FS_MAGIC
    }

    /// The entry names, without `.` and `..`, sorted.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        // The stream takes a descriptor of its own (closedir closes it),
        // opened anew on "." so its position is its own.
        // SAFETY: "." is a NUL-terminated literal; the directory is open.
        let raw = check(unsafe { libc::openat(self.fd.as_raw_fd(), c".".as_ptr(), OPEN_DIR) })?;
        // SAFETY: raw is a directory descriptor we own; fdopendir takes it.
        let stream = unsafe { libc::fdopendir(raw) };
        if stream.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so raw is still ours to close.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: stream is a live DIR*; readdir returns null at the end.
            let ent = unsafe { libc::readdir(stream) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is a NUL-terminated name inside the entry,
            // valid until the next readdir on this stream.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                out.push(OsString::from_vec(bytes.to_vec()));
            }
        }
        // SAFETY: stream is live and closed once (with its descriptor).
        unsafe { libc::closedir(stream) };
        out.sort();
        Ok(out)
    }

    /// Makes the subdirectory `name` with `mode`.
    pub fn mkdir_at(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: c is NUL-terminated; the directory descriptor is open.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })
            .map(|_| ())
    }

    /// Renames entry `from` to `to`, both in this directory (the entry
    /// moves, a symlink included: nothing is followed).
    pub fn rename_at(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (a, b) = (c_name(from)?, c_name(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: both names are NUL-terminated; the descriptor is open.
        check(unsafe { libc::renameat(fd, a.as_ptr(), fd, b.as_ptr()) }).map(|_| ())
    }

    /// Removes entry `name` (an empty directory when `dir`).
    pub fn unlink_at(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        let c = c_name(name)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: c is NUL-terminated; the descriptor is open.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), flags) }).map(|_| ())
    }

    /// Makes the symlink `name` holding `target` (a record; never followed
    /// by this module).
    pub fn symlink_at(&self, target: &[u8], name: &OsStr) -> io::Result<()> {
        let t = CString::new(target)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "target holds a NUL byte"))?;
        let c = c_name(name)?;
        // SAFETY: both strings are NUL-terminated; the descriptor is open.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.fd.as_raw_fd(), c.as_ptr()) }).map(|_| ())
    }

    /// The text of the symlink `name` (at most 4095 bytes).
    pub fn readlink_at(&self, name: &OsStr) -> io::Result<Vec<u8>> {
        let c = c_name(name)?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: buf holds buf.len() writable bytes; c is NUL-terminated.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// BPF_OBJ_PIN of `obj` as entry `name` of this directory (on a bpffs).
    pub fn pin_at(&self, obj: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        let c = c_name(name)?;
        let mut attr = ObjAtAttr {
            pathname: ptr(c.as_ptr()),
            bpf_fd: obj.as_raw_fd() as u32,
            file_flags: BPF_F_PATH_FD,
            path_fd: self.fd.as_raw_fd(),
            _pad: 0,
        };
        // SAFETY: pathname points at a NUL-terminated name alive for the
        // call; path_fd is an open directory.
        unsafe { bpf(cmd::OBJ_PIN, &mut attr) }.map(|_| ())
    }

    /// BPF_OBJ_GET of the map pinned as entry `name` of this directory,
    /// read-write. The caller checks first ([`Dir::stat_at`]) that the
    /// entry is a file, not a symlink: the kernel would follow one.
    pub fn get_map_at(&self, name: &OsStr) -> io::Result<MapFd> {
        let c = c_name(name)?;
        let mut attr = ObjAtAttr {
            pathname: ptr(c.as_ptr()),
            bpf_fd: 0,
            file_flags: BPF_F_PATH_FD,
            path_fd: self.fd.as_raw_fd(),
            _pad: 0,
        };
        // SAFETY: pathname points at a NUL-terminated name alive for the
        // call; path_fd is an open directory.
        let fd = unsafe { bpf(cmd::OBJ_GET, &mut attr) }.map(owned_from_ret)?;
        MapFd::from_owned(fd).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

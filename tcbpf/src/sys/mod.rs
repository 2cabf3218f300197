//! The bpf(2) system call: one safe function per command, typed owned
//! descriptors, and errors that name the command, the object and errno.
//!
//! This is the only module (with the fd passing in `scm`) that holds
//! `unsafe`. Each command has its own `#[repr(C)]` attribute struct laid out
//! as in `include/uapi/linux/bpf.h`; the kernel accepts a shorter struct than
//! its own and zero-fills the rest, so each struct stops at the last field
//! tcbpf uses.

mod batch;
pub mod btf;
pub(crate) mod dir;
pub(crate) mod epoll;
mod error;
mod fd;
pub(crate) mod file;
pub mod frontend;
pub mod fs;
pub mod info;
pub mod link;
pub mod map;
pub mod mmap;
pub(crate) mod net;
pub mod obj;
pub(crate) mod perf;
pub mod process;
pub mod prog;
pub mod ringbuf;
pub(crate) mod signal;
pub(crate) mod unix;

pub use error::errno_name;
pub use error::strip_os;
pub use error::{Error, Result};
pub use fd::{BtfFd, LinkFd, MapFd, ProgFd};
pub use unix::set_close_on_exec;

use std::io;

/// bpf(2) command numbers (`enum bpf_cmd`).
#[allow(missing_docs, dead_code)]
pub(crate) mod cmd {
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const OBJ_PIN: u32 = 6;
    pub const OBJ_GET: u32 = 7;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const PROG_GET_NEXT_ID: u32 = 11;
    pub const MAP_GET_NEXT_ID: u32 = 12;
    pub const PROG_GET_FD_BY_ID: u32 = 13;
    pub const MAP_GET_FD_BY_ID: u32 = 14;
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    pub const PROG_QUERY: u32 = 16;
    pub const BTF_LOAD: u32 = 18;
    pub const BTF_GET_FD_BY_ID: u32 = 19;
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    pub const MAP_FREEZE: u32 = 22;
    pub const BTF_GET_NEXT_ID: u32 = 23;
    pub const MAP_LOOKUP_BATCH: u32 = 24;
    pub const MAP_UPDATE_BATCH: u32 = 26;
    pub const MAP_DELETE_BATCH: u32 = 27;
    pub const LINK_CREATE: u32 = 28;
    pub const LINK_UPDATE: u32 = 29;
    pub const LINK_GET_FD_BY_ID: u32 = 30;
    pub const LINK_GET_NEXT_ID: u32 = 31;
    pub const ENABLE_STATS: u32 = 32;
    pub const LINK_DETACH: u32 = 34;
}

/// Issues bpf(2) with `attr`, returning the non-negative result.
///
/// # Safety
///
/// `attr` must be the attribute struct of `cmd`, and every pointer it holds
/// (as a `u64`) must be valid for the reads and writes `cmd` makes, with the
/// lengths given beside it in the same struct.
pub(crate) unsafe fn bpf<T>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: the caller guarantees attr matches cmd and its pointers are valid.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A pointer as the kernel's `__aligned_u64`.
pub(crate) fn ptr<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// A kernel object name (`BPF_OBJ_NAME_LEN` = 16 bytes, NUL-terminated):
/// the name truncated to 15 bytes, as libbpf and tc do.
pub(crate) fn obj_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (dst, src) in out.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    out
}

/// A path as the C string a system call takes; a path holding a NUL byte
/// is an error of `op` naming the path.
pub(crate) fn c_path(op: &'static str, path: &std::path::Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::new(
            op,
            io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"),
        )
        .on(path.display().to_string())
    })
}

/// The string stored in a NUL-padded byte array.
pub(crate) fn c_name(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`), which
/// sizes per-CPU map values.
pub fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    parse_cpu_list(text.trim()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse /sys/devices/system/cpu/possible: {text:?}"),
        )
    })
}

/// Counts the CPUs in a list like `0-3,5,7-8`: the highest number plus one,
/// since per-CPU values are laid out by CPU number.
fn parse_cpu_list(text: &str) -> Option<usize> {
    let mut highest = None;
    for part in text.split(',') {
        let last = match part.split_once('-') {
            Some((_, hi)) => hi.parse::<usize>().ok()?,
            None => part.parse::<usize>().ok()?,
        };
        highest = highest.max(Some(last));
    }
    highest.map(|h| h + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_counts_highest_cpu_plus_one() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(9));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn obj_name_truncates_to_fifteen_bytes_and_nul() {
        let n = obj_name("a_very_long_map_name_indeed");
        assert_eq!(&n[..15], b"a_very_long_map");
        assert_eq!(n[15], 0);
        assert_eq!(c_name(&n), "a_very_long_map");
    }
}

//! Bounded reads of the files a user names (objects, target BTF): only
//! regular files, and only up to a size limit, so `/dev/zero`, a FIFO or a
//! runaway file is an error instead of a read that never ends or exhausts
//! memory. And writes to an output that never wait ([`write_nowait`]),
//! for a writer that must stay able to stop. No parsing here.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest eBPF object file read (objects are kilobytes to a few megabytes).
pub const MAX_OBJECT_BYTES: u64 = 256 << 20;

/// What kind of file a non-regular file is, for messages.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads the regular file at `path`, refusing anything else (opened
/// non-blocking, so a FIFO without a writer does not hang the open) and any
/// file larger than `max` bytes, also one that grows while being read.
/// Refusals are `InvalidInput` errors whose text says what the file is.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", kind(meta.file_type())),
        ));
    }
    let too_big = |n: u64| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file of {n} bytes or more, larger than the limit of {max} bytes"),
        )
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes what `fd` takes now of `bytes`, without waiting for room
/// (`pwritev2` at the current position with `RWF_NOWAIT`; the descriptor's
/// own flags, shared with other processes, stay as they are). `WouldBlock`
/// when it takes nothing now; `Unsupported` (EOPNOTSUPP) for files that
/// know no such write, such as a terminal.
pub fn write_nowait(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: iov points at `bytes`, alive and readable for the call; the
    // kernel only reads through it.
    let n = unsafe { libc::pwritev2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// One plain `write(2)` of `bytes` to `fd` (it may wait for room).
pub fn write(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: bytes is alive and readable for bytes.len() bytes.
    let n = unsafe {
        libc::write(
            fd.as_raw_fd(),
            bytes.as_ptr() as *const libc::c_void,
            bytes.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

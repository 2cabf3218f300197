//! The hand-off's view of its socket: the calls of `sys::unix`, with each
//! failure classed for the user (a path that cannot be a socket address or
//! is taken is bad input, an importer that is not there is "not
//! listening"), and the checks the receiver makes on a descriptor. No
//! `unsafe` and no system calls of its own.

use super::error::{Error, Result};
use crate::sys::unix;
use crate::ErrorKind;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

/// A hand-off error from a failed socket call: a bad address is bad input
/// (its own words), everything else keeps the call, object and errno.
fn classify(e: crate::sys::Error) -> Error {
    if e.op == unix::BAD_PATH {
        return Error::bad(e.source.to_string());
    }
    e.into()
}

/// Checks that `path` can be a socket address.
pub(crate) fn check_path(path: &Path) -> Result<()> {
    unix::unix_addr(path).map(|_| ()).map_err(classify)
}

/// A new AF_UNIX datagram socket, close-on-exec.
pub(crate) fn dgram_socket() -> Result<OwnedFd> {
    unix::dgram_socket().map_err(classify)
}

/// Sets SO_PASSCRED so every datagram brings its sender's credentials.
pub(crate) fn set_passcred(sock: BorrowedFd<'_>) -> Result<()> {
    unix::set_passcred(sock).map_err(classify)
}

/// Binds `sock` at `path` with exactly `mode` (see `sys::unix`); a path in
/// use or in a missing directory is bad input.
pub(crate) fn bind_with_mode(sock: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<()> {
    unix::bind_with_mode(sock, path, mode).map_err(|e| {
        if e.op != "bind" {
            return classify(e);
        }
        match e.errno() {
            Some(libc::EADDRINUSE) => Error::bad(format!(
                "socket path {} already exists (remove it or pick another path)",
                path.display()
            )),
            Some(libc::ENOENT) => {
                let mut err: Error = e.into();
                err.kind = ErrorKind::BadInput;
                err
            }
            _ => e.into(),
        }
    })
}

/// Connects `sock` to the importer bound at `path`; none there is
/// "not listening".
pub(crate) fn connect(sock: BorrowedFd<'_>, path: &Path) -> Result<()> {
    unix::connect(sock, path).map_err(|e| {
        if e.op != "connect" {
            return classify(e);
        }
        let mut err: Error = e.into();
        if matches!(err.errno, Some(libc::ENOENT) | Some(libc::ECONNREFUSED)) {
            err.kind = ErrorKind::NotListening;
            err.message = format!(
                "nobody is listening on {} (start 'exec bpf import {}' first): {}",
                path.display(),
                path.display(),
                err.message
            );
        }
        err
    })
}

/// True when `path` names something (a file of any kind, even a dangling
/// symlink).
pub(crate) fn path_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Asks the kernel whether `fd` is a bpf map, cheaply: BPF_MAP_LOOKUP_ELEM
/// gets past the kernel's "is this a map" test only for maps, and a lookup
/// changes nothing. `key` and `value` must be the sizes a lookup of the map
/// reads and writes *if* `fd` is the map its info says (for anything else
/// the kernel returns EINVAL before touching them). `Some(true)` is certain;
/// EINVAL and EBADF are also what a map of a few types could answer, so they
/// give `None`: the caller must check another way (the inode name).
pub(crate) fn probe_is_map(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> Option<bool> {
    match crate::sys::map::lookup(fd, key, value, 0) {
        Ok(()) => Some(true),
        Err(e) => match e.errno() {
            Some(libc::EINVAL) | Some(libc::EBADF) => None,
            _ => Some(true),
        },
    }
}

//! The error of a failed hand-off: what went wrong, in one line, and which
//! class of failure it is (so the command line can pick its exit code).

use std::fmt;
use std::io;

/// The class of a hand-off failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The peer sent something that is not a valid transfer, or the caller
    /// gave a bad path or argument.
    BadInput,
    /// No importer is bound at the path (the exporter could not connect).
    NotListening,
    /// The socket path or a peer's credentials refused access.
    Permission,
    /// A terminating signal (SIGINT, SIGTERM, SIGHUP, …) arrived while waiting.
    Interrupted,
    /// The wait ran out before every map arrived.
    TimedOut,
    /// Any other system failure.
    System,
}

/// A failed send or receive.
#[derive(Debug)]
pub struct Error {
    /// The class of failure.
    pub kind: ErrorKind,
    /// One line naming what was wrong (path, datagram, entry, errno).
    pub message: String,
    /// The errno, when a system call failed.
    pub errno: Option<i32>,
}

/// Result of a hand-off operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            errno: None,
        }
    }

    /// A failed system call `op` on `object` (a path, an fd); the kind
    /// follows the errno (EACCES/EPERM are permission, the rest system
    /// failures).
    pub fn os(op: &'static str, object: impl Into<String>, source: io::Error) -> Self {
        crate::sys::Error::new(op, source).on(object).into()
    }

    /// A bad transfer from the peer.
    pub fn bad(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadInput, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Self {
        let kind = match e.errno() {
            Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::Permission,
            _ => ErrorKind::System,
        };
        Error {
            kind,
            errno: e.errno(),
            message: e.to_string(),
        }
    }
}

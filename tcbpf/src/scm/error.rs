//! The error of a failed hand-off: what went wrong, in one line, which
//! class of failure it is (so the command line can pick its exit code), and
//! the failed system call behind it when there is one.

use crate::ErrorKind;
use std::fmt;
use std::io;

/// A failed send or receive.
#[derive(Debug)]
pub struct Error {
    /// The class of failure (BadInput, NotListening, Permission,
    /// Interrupted, TimedOut or System).
    pub kind: ErrorKind,
    /// One line naming what was wrong (path, datagram, entry, errno).
    pub message: String,
    /// The errno, when a system call failed.
    pub errno: Option<i32>,
    /// What failed underneath: the system call, or the wire decoder's
    /// typed error for a datagram that is not a transfer.
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
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
            cause: None,
        }
    }

    /// A failed system call `op` on `object` (a path, an fd); the kind
    /// follows the errno ([`ErrorKind::from_errno`]).
    pub fn os(op: &'static str, object: impl Into<String>, source: io::Error) -> Self {
        crate::sys::Error::new(op, source).on(object).into()
    }

    /// A bad transfer from the peer.
    pub fn bad(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadInput, message)
    }

    /// Keeps `cause` (the typed error the message was made from) as
    /// `source()`.
    pub(crate) fn with_cause(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as _)
    }
}

impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Self {
        Error {
            kind: e.kind(),
            errno: e.errno(),
            message: e.to_string(),
            cause: Some(Box::new(e)),
        }
    }
}

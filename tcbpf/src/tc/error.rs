//! The error of a failed rtnetlink request or tc attach step: what was
//! done, to what, the errno, and the kernel's own words (extended ack).

use std::fmt;
use std::io;

/// A failed tc operation.
#[derive(Debug)]
pub struct Error {
    /// The operation (`RTM_NEWTFILTER`, `BPF_LINK_CREATE`, `add filter`…).
    pub op: &'static str,
    /// What it was done to (`dev 'v0' ingress pref 1`), may be empty.
    pub object: String,
    /// The errno, when there is one.
    pub errno: Option<i32>,
    /// The reason: the kernel's extended-ack message, or tcbpf's own.
    pub message: String,
    /// The failed system call behind it, when there was one.
    cause: Option<Cause>,
}

/// What a tc error keeps of its cause.
#[derive(Debug)]
enum Cause {
    Io(io::Error),
    Sys(Box<crate::sys::Error>),
}

/// Result of a tc operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error from an errno, with the system's description as message.
    pub fn from_errno(op: &'static str, errno: i32) -> Self {
        Error::io(op, io::Error::from_raw_os_error(errno))
    }

    /// An error from an io::Error.
    pub fn io(op: &'static str, e: io::Error) -> Self {
        Error {
            op,
            object: String::new(),
            errno: e.raw_os_error(),
            message: crate::sys::strip_os(&e),
            cause: Some(Cause::Io(e)),
        }
    }

    /// An error with tcbpf's own message and an errno class.
    pub fn with_message(op: &'static str, errno: i32, message: impl Into<String>) -> Self {
        Error {
            op,
            object: String::new(),
            errno: Some(errno),
            message: message.into(),
            cause: None,
        }
    }

    /// Names the object the operation was done to.
    pub fn on(mut self, object: impl Into<String>) -> Self {
        self.object = object.into();
        self
    }

    /// Replaces the message, keeping the errno.
    pub fn said(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The errno, when there is one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The class of failure, from the errno (a netlink error carries the
    /// kernel's errno, so ENOENT is a missing device or filter, EPERM a
    /// missing capability).
    pub fn kind(&self) -> crate::ErrorKind {
        match &self.cause {
            // The system call's class, as its call site gave it.
            Some(Cause::Sys(e)) => e.kind(),
            _ => crate::ErrorKind::from_errno(self.errno),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = self
            .errno
            .map(crate::sys::errno_name)
            .filter(|n| !n.is_empty())
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        if self.object.is_empty() {
            write!(f, "{}: {}{errno}", self.op, self.message)
        } else {
            write!(f, "{} {}: {}{errno}", self.op, self.object, self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Some(Cause::Io(e)) => Some(e),
            Some(Cause::Sys(e)) => Some(e.as_ref()),
            None => None,
        }
    }
}

impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Self {
        Error {
            op: e.op,
            object: e.object.clone(),
            errno: e.errno(),
            message: crate::sys::strip_os(&e.source),
            cause: Some(Cause::Sys(Box::new(e))),
        }
    }
}

//! The error of a failed bpf(2) command or descriptor check.

use std::fmt;
use std::io;

/// A failed system operation: which command, on what object, and errno.
#[derive(Debug)]
pub struct Error {
    /// The operation, in the kernel's words (`BPF_MAP_LOOKUP_ELEM`, `OBJ_GET`…).
    pub op: &'static str,
    /// What it was done to (`map 'counters'`, `fd 5`, `/sys/fs/bpf/x`), may be empty.
    pub object: String,
    /// The error the kernel returned.
    pub source: io::Error,
    /// The class a caller that knows better gave it
    /// ([`with_kind`](Self::with_kind)); else the errno's.
    kind: Option<crate::ErrorKind>,
}

/// Result of a sys operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `op` with no object named yet.
    pub fn new(op: &'static str, source: io::Error) -> Self {
        Error {
            op,
            object: String::new(),
            source,
            kind: None,
        }
    }

    /// Classes the failure as the call site knows it to be (the kernel's
    /// EINVAL on a path the user named that is a directory is bad input),
    /// instead of by its errno alone.
    pub fn with_kind(mut self, kind: crate::ErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Names the object the operation was done to.
    pub fn on(mut self, object: impl Into<String>) -> Self {
        self.object = object.into();
        self
    }

    /// The raw errno, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The class of failure: the one its call site gave, else the
    /// errno's ([`crate::ErrorKind::from_errno`]).
    pub fn kind(&self) -> crate::ErrorKind {
        self.kind
            .unwrap_or_else(|| crate::ErrorKind::from_io(&self.source))
    }

    /// True when the error is `ENOENT` (key not found, no more keys…).
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = self.errno().map(errno_name).unwrap_or("");
        let sep = if errno.is_empty() { "" } else { " " };
        if self.object.is_empty() {
            write!(f, "{}: {}{sep}{errno}", self.op, strip_os(&self.source))
        } else {
            write!(
                f,
                "{} {}: {}{sep}{errno}",
                self.op,
                self.object,
                strip_os(&self.source)
            )
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The message of an io::Error without Rust's " (os error N)" suffix; the
/// one place that trims it (tc, scm and the loader print through it).
pub fn strip_os(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The symbolic name of the errno values bpf(2) returns, in parentheses.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "(EPERM)",
        libc::ENOENT => "(ENOENT)",
        libc::E2BIG => "(E2BIG)",
        libc::EBADF => "(EBADF)",
        libc::EAGAIN => "(EAGAIN)",
        libc::ENOMEM => "(ENOMEM)",
        libc::EACCES => "(EACCES)",
        libc::EFAULT => "(EFAULT)",
        libc::EBUSY => "(EBUSY)",
        libc::EEXIST => "(EEXIST)",
        libc::EINVAL => "(EINVAL)",
        libc::ENOSPC => "(ENOSPC)",
        libc::ENOTSUP => "(EOPNOTSUPP)",
        libc::ENOTDIR => "(ENOTDIR)",
        libc::ENODEV => "(ENODEV)",
        libc::ENXIO => "(ENXIO)",
        libc::ERANGE => "(ERANGE)",
        libc::ELOOP => "(ELOOP)",
        libc::ENOTCONN => "(ENOTCONN)",
        libc::ECONNREFUSED => "(ECONNREFUSED)",
        libc::ENOTSOCK => "(ENOTSOCK)",
        524 => "(ENOTSUPP)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_object_and_errno() {
        let e = Error::new(
            "BPF_MAP_LOOKUP_ELEM",
            io::Error::from_raw_os_error(libc::ENOENT),
        )
        .on("map 'counters'");
        assert_eq!(
            e.to_string(),
            "BPF_MAP_LOOKUP_ELEM map 'counters': No such file or directory (ENOENT)"
        );
        assert!(e.is_not_found());
    }
}

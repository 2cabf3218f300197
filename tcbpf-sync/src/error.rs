//! The one error type of `tcbpf-sync`: a message naming what failed and the
//! exit status it maps to (tcbpf's: 1 not found, 2 usage or bad input,
//! 3 permission denied, 4 any other failure). No I/O here.

use std::fmt;

/// Exit statuses shared with `tcbpf`: the library's one table
/// (`tcbpf::ErrorKind::exit_code`).
pub mod exit {
    use tcbpf::ErrorKind;
    pub const NOT_FOUND: u8 = ErrorKind::NotFound.exit_code();
    pub const USAGE: u8 = ErrorKind::BadInput.exit_code();
    pub const PERMISSION: u8 = ErrorKind::Permission.exit_code();
    pub const OTHER: u8 = ErrorKind::System.exit_code();
}

/// What failed, in words, with its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncError {
    pub exit: u8,
    pub message: String,
    /// An etcd failure that an election or a dead member explains (see
    /// `retry`): worth trying again.
    pub transient: bool,
}

impl SyncError {
    /// A failure of `kind` (a library error's), exiting as every tcbpf
    /// binary does for it.
    pub fn of(kind: tcbpf::ErrorKind, m: impl Into<String>) -> Self {
        SyncError {
            exit: kind.exit_code(),
            message: m.into(),
            transient: false,
        }
    }

    pub fn usage(m: impl Into<String>) -> Self {
        SyncError {
            exit: exit::USAGE,
            message: m.into(),
            transient: false,
        }
    }

    pub fn not_found(m: impl Into<String>) -> Self {
        SyncError {
            exit: exit::NOT_FOUND,
            message: m.into(),
            transient: false,
        }
    }

    pub fn other(m: impl Into<String>) -> Self {
        SyncError {
            exit: exit::OTHER,
            message: m.into(),
            transient: false,
        }
    }

    /// An etcd failure while doing `what`: authentication and permission
    /// refusals exit 3, the rest 4.
    pub fn etcd(what: &str, e: etcd_client::Error) -> Self {
        let exit = match &e {
            // gRPC codes 7 (permission denied) and 16 (unauthenticated);
            // etcd says a wrong password, or a missing user where auth is
            // on, with code 3 (invalid argument).
            etcd_client::Error::GRpcStatus(s)
                if matches!(i32::from(s.code()), 7 | 16)
                    || s.message().contains("authentication failed")
                    || s.message().contains("user name is empty") =>
            {
                exit::PERMISSION
            }
            _ => exit::OTHER,
        };
        SyncError {
            exit,
            message: format!("{what}: {}", describe(&e)),
            transient: crate::retry::transient(&e),
        }
    }
}

/// An etcd error in one line: gRPC statuses as their code and message
/// rather than the debug dump of their metadata.
pub fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        etcd_client::Error::TransportError(t) => {
            let mut text = t.to_string();
            let mut source = std::error::Error::source(t);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
        other => other.to_string(),
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::layout::LayoutError> for SyncError {
    fn from(e: crate::layout::LayoutError) -> Self {
        SyncError::usage(e.0)
    }
}

//! Command errors and the exit codes they map to.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | not found: key, entry, map, pin, queue empty |
//! | 2 | usage or bad input: grammar, sizes, values that do not parse |
//! | 3 | permission denied |
//! | 4 | any other failure (kernel or system error) |

use std::fmt;

/// Why a command failed, as an exit code class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit 1.
    NotFound = 1,
    /// Exit 2.
    Usage = 2,
    /// Exit 3.
    Permission = 3,
    /// Exit 4.
    Failure = 4,
}

/// A one-line error and its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code class.
    pub exit: Exit,
    /// The message, without the leading `tcbpf: `.
    pub message: String,
}

impl CliError {
    /// A usage or bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    /// A not-found error (exit 1).
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::NotFound,
            message: message.into(),
        }
    }

    /// Any other failure (exit 4).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Failure,
            message: message.into(),
        }
    }

    /// Prefixes the message with context (`map 'x': …`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit class of an errno.
pub fn exit_for_errno(errno: Option<i32>) -> Exit {
    match errno {
        Some(libc::ENOENT) => Exit::NotFound,
        Some(libc::EPERM) | Some(libc::EACCES) => Exit::Permission,
        _ => Exit::Failure,
    }
}

impl From<tcbpf::sys::Error> for CliError {
    fn from(e: tcbpf::sys::Error) -> Self {
        CliError {
            exit: exit_for_errno(e.errno()),
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError {
            exit: exit_for_errno(e.raw_os_error()),
            message: e.to_string(),
        }
    }
}

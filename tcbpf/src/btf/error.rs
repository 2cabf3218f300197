//! The error of BTF parsing, lookups and fix-ups: what was wrong and where.
//! Never a panic on input: every bad offset, id or size becomes one of these.

use std::fmt;

/// A BTF blob or lookup that could not be honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The data ends before a structure it promises (`what`, at `offset`).
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset where it starts.
        offset: usize,
    },
    /// The header is not BTF (bad magic, version, lengths or offsets).
    BadHeader(String),
    /// A type record carries a kind tcbpf does not know.
    UnknownKind {
        /// The id the record would have had.
        id: u32,
        /// The raw kind number.
        kind: u32,
    },
    /// A type id that names no type.
    TypeIdOutOfRange {
        /// The id asked for.
        id: u32,
        /// One past the last valid id.
        end: u32,
    },
    /// A string offset outside the string section or not NUL-terminated.
    BadString(u32),
    /// A type that is malformed or unsuitable for the operation asked.
    Invalid(String),
}

/// Result of a BTF operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, offset } => {
                write!(
                    f,
                    "BTF truncated: {what} at byte {offset} runs past the end"
                )
            }
            Error::BadHeader(msg) => write!(f, "bad BTF header: {msg}"),
            Error::UnknownKind { id, kind } => write!(f, "BTF type [{id}] has unknown kind {kind}"),
            Error::TypeIdOutOfRange { id, end } => {
                write!(f, "BTF type id {id} out of range (ids end at {end})")
            }
            Error::BadString(off) => write!(f, "BTF string offset {off} is invalid"),
            Error::Invalid(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

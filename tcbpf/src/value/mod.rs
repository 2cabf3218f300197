//! Typed key/value codecs for the shell: integers in host or network order,
//! addresses, strings and raw bytes, checked against the map's sizes, and
//! written back as text or JSON.
//!
//! Pure: no syscalls here. Sizes come from the caller (the map's info).
//! [`Data`] reads the command line's DATA words; [`Layout`] is a list of
//! typed fields resolved against a size (the `key TYPES value TYPES` of
//! `dump`, `lookup` and `load`); [`format`](mod@format) writes untyped bytes as bpftool does;
//! [`typed`] decodes and encodes by the map's own BTF types (and JSON).

mod data;
mod field;
pub mod format;
mod layout;
pub mod typed;

pub use data::Data;
pub use field::{parse_int, FieldType};
pub use layout::{int_value, write_sums, Layout};

use std::fmt;

/// Longest word an error message shows whole.
pub const SHOWN_MAX: usize = 64;

/// A word as an error message shows it: whole up to [`SHOWN_MAX`] bytes,
/// else its start and its length (`9999… (1073741824 bytes)`), so a huge
/// input word never makes a huge error.
pub fn shown(word: &[u8]) -> String {
    if word.len() <= SHOWN_MAX {
        return String::from_utf8_lossy(word).into_owned();
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&word[..SHOWN_MAX / 2]),
        word.len()
    )
}

/// Why words did not make a key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A word that is not a type.
    UnknownType(String),
    /// An integer outside its type's range.
    OutOfRange {
        /// The type word.
        ty: &'static str,
        /// The word given.
        word: String,
    },
    /// A word that does not parse as its type.
    Malformed {
        /// The type word.
        ty: &'static str,
        /// The word given.
        word: String,
        /// What it should have been.
        why: String,
    },
    /// Sizes that disagree with the map's.
    Size {
        /// `key`, `value`, …
        what: &'static str,
        /// The map's size.
        expected: usize,
        /// The size the words make.
        given: usize,
    },
    /// A string longer than its field.
    TooLong {
        /// The string.
        word: String,
        /// The field's size.
        size: usize,
    },
    /// A bare byte that is not 0..=255 or a hex word that is not hex.
    BadByte(String),
    /// A field whose word is missing.
    MissingField {
        /// `key`, `value`, `data`.
        what: &'static str,
        /// The type word of the missing field.
        ty: &'static str,
    },
    /// Two `str`/`bytes` fields: the split of the rest is unknown.
    TwoFlexible(&'static str),
    /// No types given for a side.
    NoTypes(&'static str),
    /// No data words.
    Empty,
    /// `sum` over fields that are not integers.
    SumNeedsIntegers,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownType(w) => {
                let names: Vec<&str> = FieldType::names().collect();
                write!(f, "unknown type '{w}' (expected one of: {})", names.join(", "))
            }
            Error::OutOfRange { ty, word } => write!(f, "value '{word}' is out of range for {ty}"),
            Error::Malformed { ty, word, why } if why.is_empty() => {
                write!(f, "'{word}' is not a valid {ty}")
            }
            Error::Malformed { ty, word, why } => write!(f, "'{word}' is not a valid {ty}: {why}"),
            Error::Size { what, expected, given } => {
                write!(f, "{what}: expected {expected} bytes, given {given}")
            }
            Error::TooLong { word, size } => write!(f, "string '{word}' does not fit in {size} bytes"),
            Error::BadByte(w) => write!(
                f,
                "'{w}' is not a byte (0..255, 0x00..0xff, or hex after 'hex'); give a type for wider values, like 'u32 {w}'"
            ),
            Error::MissingField { what, ty } => write!(f, "{what}: missing the {ty} field"),
            Error::TwoFlexible(what) => {
                write!(f, "{what}: at most one str or bytes field (it takes the rest of the size)")
            }
            Error::NoTypes(what) => write!(f, "{what}: expected at least one type"),
            Error::Empty => write!(f, "expected data bytes or typed values"),
            Error::SumNeedsIntegers => write!(f, "'sum' needs integer value types"),
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

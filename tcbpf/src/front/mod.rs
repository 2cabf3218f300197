//! The front-end vocabulary the three binaries share (`tcbpf`,
//! `tcbpf-exporter`, `tcbpf-sync`): tc-style words where any unambiguous
//! prefix works ([`words`]), the MAP words and opening what they name
//! ([`mapref`]), and an open map with its info, types and one streaming
//! batch walker ([`map`]). Written once here so every binary accepts the
//! same MAP forms, says the same errors and walks maps the same way.
//!
//! No output, no exit codes: errors carry a [`crate::ErrorKind`] that each
//! binary maps to its exit status in one place.

pub mod hooks;
pub mod map;
pub mod mapref;
pub mod words;

pub use map::Map;
pub use mapref::{MapForm, MapRef};
pub use words::{Error, Words};

//! The BTF string section: NUL-terminated names addressed by byte offset.
//! Offsets of a split BTF continue after its base's strings (see `spec.rs`).

use super::error::{Error, Result};

/// A string section, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings {
    bytes: Vec<u8>,
}

impl Strings {
    /// A section holding only the empty string at offset 0.
    pub fn new() -> Self {
        Strings { bytes: vec![0] }
    }

    /// Takes a section as found in a blob; it must end with a NUL (and a base
    /// section must start with one, checked by the caller).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if let Some(&last) = bytes.last() {
            if last != 0 {
                return Err(Error::BadHeader(
                    "string section does not end with NUL".into(),
                ));
            }
        }
        Ok(Strings { bytes })
    }

    /// The raw section.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// True when the section holds nothing (possible only for split BTF).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw bytes of the string at `off` (relative to this section),
    /// without the NUL and without checking UTF-8.
    pub fn get_bytes(&self, off: u32) -> Option<&[u8]> {
        let rest = self.bytes.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..end])
    }

    /// The string at `off` (relative to this section).
    pub fn get(&self, off: u32) -> Result<&str> {
        let start = off as usize;
        let rest = self.bytes.get(start..).ok_or(Error::BadString(off))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::BadString(off))?;
        std::str::from_utf8(&rest[..end]).map_err(|_| Error::BadString(off))
    }

    /// Appends `s` and returns its offset ("" is offset 0).
    pub fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() && self.bytes.first() == Some(&0) {
            return 0;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        off
    }
}

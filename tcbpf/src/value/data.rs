//! The DATA grammar of the command line, for one key or value:
//!
//! ```text
//! DATA := { TYPE VALUE | hex BYTES… | bytes BYTES… | BYTE }…
//! ```
//!
//! `u32 7 be16 80` concatenates typed fields; `hex 07 00 00 00` (or
//! `hex 07000000`) reads hex bytes until the next type word; a bare word is
//! one byte in decimal or `0x` hex, as bpftool takes it. A `str` field is
//! NUL-padded to whatever the other fields leave of the expected size.

use super::field::{push_hex, FieldType};
use super::Error;

/// Parsed DATA words: the bytes, and where a `str` field's text still waits
/// for its padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    bytes: Vec<u8>,
    /// (offset in `bytes`, text) of the one `str` field, unpadded.
    text: Option<(usize, Vec<u8>)>,
    /// The types of the fields, when every part was typed (`u32 7 be16 80`).
    types: Option<Vec<FieldType>>,
}

impl Data {
    /// Parses the words of one key or value.
    pub fn parse(words: &[&str]) -> Result<Data, Error> {
        let mut bytes = Vec::new();
        let mut text = None;
        let mut types = Some(Vec::new());
        let mut i = 0;
        if words.is_empty() {
            return Err(Error::Empty);
        }
        while i < words.len() {
            let word = words[i];
            i += 1;
            if word == "hex" || word == "bytes" {
                types = None;
                let start = i;
                while i < words.len()
                    && FieldType::from_word(words[i]).is_none()
                    && words[i] != "hex"
                {
                    push_hex(words[i].as_bytes(), &mut bytes)
                        .ok_or_else(|| Error::BadByte(super::shown(words[i].as_bytes())))?;
                    i += 1;
                }
                if i == start {
                    return Err(Error::Empty);
                }
            } else if let Some(ty) = FieldType::from_word(word) {
                let value = words.get(i).ok_or(Error::MissingField {
                    what: "data",
                    ty: ty.name(),
                })?;
                i += 1;
                if let Some(types) = types.as_mut() {
                    types.push(ty);
                }
                if ty == FieldType::Str {
                    if text.is_some() {
                        return Err(Error::TwoFlexible("data"));
                    }
                    text = Some((bytes.len(), value.as_bytes().to_vec()));
                } else {
                    let size = if ty == FieldType::Bytes {
                        value.len() / 2
                    } else {
                        0
                    };
                    ty.encode(value.as_bytes(), size, &mut bytes)?;
                }
            } else {
                types = None;
                let v = super::field::parse_int(word.as_bytes(), false)
                    .ok_or_else(|| Error::BadByte(super::shown(word.as_bytes())))?;
                if v > 255 {
                    return Err(Error::BadByte(super::shown(word.as_bytes())));
                }
                bytes.push(v as u8);
            }
        }
        Ok(Data { bytes, text, types })
    }

    /// The bytes without any `str` field (its size is not known yet).
    pub fn fixed_len(&self) -> usize {
        self.bytes.len()
    }

    /// The field types, when every part of the data was typed: the
    /// words `u32 7 be16 80` give `[u32, be16]`.
    pub fn types(&self) -> Option<&[FieldType]> {
        self.types.as_deref()
    }

    /// True when a `str` field waits to be padded to the expected size.
    pub fn has_text(&self) -> bool {
        self.text.is_some()
    }

    /// The bytes of a key or value that must be exactly `expected` long:
    /// a `str` field is padded to fill it; otherwise the sizes must agree.
    pub fn into_exact(self, expected: usize, what: &'static str) -> Result<Vec<u8>, Error> {
        let Data {
            mut bytes, text, ..
        } = self;
        if let Some((at, text)) = text {
            let room = expected
                .checked_sub(bytes.len())
                .filter(|r| *r > 0)
                .ok_or(Error::Size {
                    what,
                    expected,
                    given: bytes.len() + text.len(),
                })?;
            let mut field = Vec::with_capacity(room);
            FieldType::Str.encode(&text, room, &mut field)?;
            bytes.splice(at..at, field);
        }
        if bytes.len() != expected {
            return Err(Error::Size {
                what,
                expected,
                given: bytes.len(),
            });
        }
        Ok(bytes)
    }

    /// The bytes as given (no `str` field allowed), for callers that accept
    /// several sizes (one value for all CPUs, or one per CPU).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str, expected: usize) -> Result<Vec<u8>, Error> {
        let words: Vec<&str> = s.split_whitespace().collect();
        Data::parse(&words)?.into_exact(expected, "key")
    }

    #[test]
    fn typed_fields_concatenate_in_order() {
        let mut want = 7u32.to_ne_bytes().to_vec();
        want.extend_from_slice(&[0x1f, 0x90]);
        want.extend_from_slice(&[10, 0, 0, 1]);
        assert_eq!(data("u32 7 be16 8080 ip4 10.0.0.1", 10).unwrap(), want);
        let d = Data::parse(&["u32", "7", "str", "x"]).unwrap();
        assert_eq!(d.types(), Some([FieldType::U32, FieldType::Str].as_slice()));
        assert_eq!(Data::parse(&["u32", "7", "0"]).unwrap().types(), None);
    }

    #[test]
    fn hex_and_decimal_bytes_read_like_bpftool() {
        assert_eq!(data("hex 07 00 00 00", 4).unwrap(), [7, 0, 0, 0]);
        assert_eq!(data("hex 07000000", 4).unwrap(), [7, 0, 0, 0]);
        assert_eq!(data("hex 0x07 ff", 2).unwrap(), [7, 255]);
        assert_eq!(data("7 0 0 0x10", 4).unwrap(), [7, 0, 0, 16]);
        assert_eq!(data("hex 01 u8 2", 2).unwrap(), [1, 2]);
        assert!(matches!(data("300", 1), Err(Error::BadByte(_))));
        assert!(matches!(data("hex zz", 1), Err(Error::BadByte(_))));
        assert!(matches!(data("hex", 1), Err(Error::Empty)));
    }

    #[test]
    fn wrong_size_says_expected_and_given() {
        let e = data("u64 1", 4).unwrap_err();
        assert_eq!(e.to_string(), "key: expected 4 bytes, given 8");
    }

    #[test]
    fn str_pads_to_the_expected_size() {
        assert_eq!(data("str ab", 4).unwrap(), b"ab\0\0");
        assert_eq!(data("str ab u8 9", 5).unwrap(), b"ab\0\0\x09");
        assert!(data("str abcdef", 4).is_err());
        assert!(data("str a str b", 4).is_err());
    }

    #[test]
    fn a_type_word_without_its_value_is_an_error() {
        assert_eq!(
            data("u32", 4).unwrap_err().to_string(),
            "data: missing the u32 field"
        );
    }
}

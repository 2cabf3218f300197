//! One typed field of a key or value: its type word, its size, and how one
//! word of text becomes its bytes. Pure: no syscalls, no allocation per
//! word beyond the output buffer.

use super::Error;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A field type as scripts name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FieldType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    /// Network byte order integers.
    Be16,
    Be32,
    Be64,
    /// IPv4 address, 4 bytes in network order.
    Ip4,
    /// IPv6 address, 16 bytes.
    Ip6,
    /// Ethernet address, 6 bytes.
    Mac,
    /// Text, NUL-padded to the rest of the key or value.
    Str,
    /// Raw bytes filling the rest of the key or value, written as hex.
    Bytes,
}

const TYPES: [(FieldType, &str); 16] = [
    (FieldType::U8, "u8"),
    (FieldType::U16, "u16"),
    (FieldType::U32, "u32"),
    (FieldType::U64, "u64"),
    (FieldType::I8, "i8"),
    (FieldType::I16, "i16"),
    (FieldType::I32, "i32"),
    (FieldType::I64, "i64"),
    (FieldType::Be16, "be16"),
    (FieldType::Be32, "be32"),
    (FieldType::Be64, "be64"),
    (FieldType::Ip4, "ip4"),
    (FieldType::Ip6, "ip6"),
    (FieldType::Mac, "mac"),
    (FieldType::Str, "str"),
    (FieldType::Bytes, "bytes"),
];

impl FieldType {
    /// The type a word names (`u32`, `be16`, `ip4`…), if any.
    pub fn from_word(word: &str) -> Option<FieldType> {
        TYPES.iter().find(|(_, n)| *n == word).map(|(t, _)| *t)
    }

    /// Like [`FieldType::from_word`], with an error naming the word and the choices.
    pub fn parse(word: &str) -> Result<FieldType, Error> {
        Self::from_word(word).ok_or_else(|| Error::UnknownType(super::shown(word.as_bytes())))
    }

    /// The word for the type.
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("?", |(_, n)| n)
    }

    /// Every type word, for help and error messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TYPES.iter().map(|(_, n)| *n)
    }

    /// The fixed size in bytes, or `None` for `str` and `bytes`, which fill
    /// whatever the other fields leave of the key or value.
    pub fn fixed_size(self) -> Option<usize> {
        use FieldType::*;
        Some(match self {
            U8 | I8 => 1,
            U16 | I16 | Be16 => 2,
            U32 | I32 | Be32 | Ip4 => 4,
            U64 | I64 | Be64 => 8,
            Mac => 6,
            Ip6 => 16,
            Str | Bytes => return None,
        })
    }

    /// True for the integer types (those `sum` can add across CPUs).
    pub fn is_integer(self) -> bool {
        use FieldType::*;
        matches!(
            self,
            U8 | U16 | U32 | U64 | I8 | I16 | I32 | I64 | Be16 | Be32 | Be64
        )
    }

    /// True for signed integers.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            FieldType::I8 | FieldType::I16 | FieldType::I32 | FieldType::I64
        )
    }

    /// Appends the bytes of `word` read as this type, `size` bytes long
    /// (only `str` and `bytes` use `size`; fixed types ignore it).
    pub fn encode(self, word: &[u8], size: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        use FieldType::*;
        match self {
            U8 | U16 | U32 | U64 | I8 | I16 | I32 | I64 | Be16 | Be32 | Be64 => {
                let n = self.fixed_size().unwrap_or(0);
                let bits = n as u32 * 8;
                let v = parse_int(word, self.is_signed())
                    .ok_or_else(|| self.malformed(word, "not a number"))?;
                let in_range = if self.is_signed() {
                    let lo = -(1i128 << (bits - 1));
                    let hi = (1i128 << (bits - 1)) - 1;
                    v >= lo && v <= hi
                } else {
                    v >= 0 && v < (1i128 << bits)
                };
                if !in_range {
                    return Err(Error::OutOfRange {
                        ty: self.name(),
                        word: lossy(word),
                    });
                }
                let bytes = (v as u64).to_ne_bytes();
                match self {
                    Be16 | Be32 | Be64 => {
                        let be = (v as u64).to_be_bytes();
                        out.extend_from_slice(&be[8 - n..]);
                    }
                    _ if cfg!(target_endian = "little") => out.extend_from_slice(&bytes[..n]),
                    _ => out.extend_from_slice(&bytes[8 - n..]),
                }
            }
            Ip4 => {
                let text = std::str::from_utf8(word).map_err(|_| self.malformed(word, ""))?;
                let ip: Ipv4Addr = text
                    .parse()
                    .map_err(|_| self.malformed(word, "not an IPv4 address"))?;
                out.extend_from_slice(&ip.octets());
            }
            Ip6 => {
                let text = std::str::from_utf8(word).map_err(|_| self.malformed(word, ""))?;
                let ip: Ipv6Addr = text
                    .parse()
                    .map_err(|_| self.malformed(word, "not an IPv6 address"))?;
                out.extend_from_slice(&ip.octets());
            }
            Mac => out.extend_from_slice(&parse_mac(word).ok_or_else(|| {
                self.malformed(
                    word,
                    "not a MAC address (six hex pairs, like 02:00:00:00:00:01)",
                )
            })?),
            Str => {
                if word.len() > size {
                    return Err(Error::TooLong {
                        word: lossy(word),
                        size,
                    });
                }
                out.extend_from_slice(word);
                out.resize(out.len() + size - word.len(), 0);
            }
            Bytes => {
                let start = out.len();
                push_hex(word, out).ok_or_else(|| self.malformed(word, "not hex bytes"))?;
                let got = out.len() - start;
                if got != size {
                    return Err(Error::Size {
                        what: "bytes field",
                        expected: size,
                        given: got,
                    });
                }
            }
        }
        Ok(())
    }

    fn malformed(self, word: &[u8], why: &str) -> Error {
        Error::Malformed {
            ty: self.name(),
            word: lossy(word),
            why: why.to_string(),
        }
    }
}

fn lossy(word: &[u8]) -> String {
    super::shown(word)
}

/// Parses a decimal integer (with `-` when `signed`) or `0x` hex, without
/// allocating. `None` when malformed or beyond 64 bits.
pub fn parse_int(word: &[u8], signed: bool) -> Option<i128> {
    let (neg, digits) = match word.split_first() {
        Some((b'-', rest)) if signed => (true, rest),
        _ => (false, word),
    };
    let v: u64 = if let Some(hex) = digits
        .strip_prefix(b"0x")
        .or_else(|| digits.strip_prefix(b"0X"))
    {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        let mut v = 0u64;
        for &c in hex {
            v = (v << 4) | hex_digit(c)? as u64;
        }
        v
    } else {
        if digits.is_empty() {
            return None;
        }
        let mut v = 0u64;
        for &c in digits {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
        }
        v
    };
    Some(if neg { -(v as i128) } else { v as i128 })
}

/// The value of one hex digit.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends the bytes of a hex word (`0a0b`, `0x0a0b`, or one digit `7`).
/// `None` when it is not hex.
pub fn push_hex(word: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let digits = word
        .strip_prefix(b"0x")
        .or_else(|| word.strip_prefix(b"0X"))
        .unwrap_or(word);
    match digits.len() {
        0 => None,
        1 => {
            out.push(hex_digit(digits[0])?);
            Some(())
        }
        n if n % 2 == 1 => None,
        _ => {
            for pair in digits.chunks_exact(2) {
                out.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
            }
            Some(())
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (also with `-`).
fn parse_mac(word: &[u8]) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = word.split(|&c| c == b':' || c == b'-');
    for byte in out.iter_mut() {
        let p = parts.next()?;
        *byte = match p {
            [a] => hex_digit(*a)?,
            [a, b] => hex_digit(*a)? << 4 | hex_digit(*b)?,
            _ => return None,
        };
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: &str, w: &str, size: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        FieldType::parse(t)?.encode(w.as_bytes(), size, &mut out)?;
        Ok(out)
    }

    #[test]
    fn integers_encode_in_host_order_and_check_range() {
        assert_eq!(enc("u32", "7", 0).unwrap(), 7u32.to_ne_bytes());
        assert_eq!(enc("u64", "0xff", 0).unwrap(), 255u64.to_ne_bytes());
        assert_eq!(enc("i16", "-2", 0).unwrap(), (-2i16).to_ne_bytes());
        assert_eq!(enc("u8", "255", 0).unwrap(), [255]);
        assert_eq!(
            enc("u64", "18446744073709551615", 0).unwrap(),
            u64::MAX.to_ne_bytes()
        );
        assert_eq!(enc("i8", "-128", 0).unwrap(), [0x80]);
        let e = enc("u8", "256", 0).unwrap_err();
        assert_eq!(e.to_string(), "value '256' is out of range for u8");
        assert!(matches!(enc("i8", "128", 0), Err(Error::OutOfRange { .. })));
        assert!(matches!(enc("u32", "-1", 0), Err(Error::Malformed { .. })));
        assert!(matches!(
            enc("u64", "18446744073709551616", 0),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(enc("u32", "12a", 0), Err(Error::Malformed { .. })));
    }

    #[test]
    fn network_order_types_put_the_high_byte_first() {
        assert_eq!(enc("be16", "0x0800", 0).unwrap(), [8, 0]);
        assert_eq!(enc("be32", "1", 0).unwrap(), [0, 0, 0, 1]);
        assert_eq!(enc("be64", "258", 0).unwrap(), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert!(matches!(
            enc("be16", "65536", 0),
            Err(Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn addresses_parse_and_malformed_ones_are_named() {
        assert_eq!(enc("ip4", "10.0.0.1", 0).unwrap(), [10, 0, 0, 1]);
        assert_eq!(enc("ip6", "::1", 0).unwrap()[15], 1);
        assert_eq!(
            enc("mac", "02:00:0a:0B:00:ff", 0).unwrap(),
            [2, 0, 10, 11, 0, 255]
        );
        let e = enc("ip4", "10.0.0.256", 0).unwrap_err().to_string();
        assert!(e.contains("ip4") && e.contains("10.0.0.256"), "{e}");
        assert!(enc("mac", "02:00:0a:0b:00", 0)
            .unwrap_err()
            .to_string()
            .contains("MAC"));
        assert!(enc("mac", "02:00:0a:0b:00:ff:01", 0).is_err());
        assert!(enc("mac", "02:00:0a:0b:00:fg", 0).is_err());
    }

    #[test]
    fn strings_are_nul_padded_and_must_fit() {
        assert_eq!(enc("str", "ab", 4).unwrap(), b"ab\0\0");
        assert_eq!(enc("str", "abcd", 4).unwrap(), b"abcd");
        assert_eq!(
            enc("str", "abcde", 4).unwrap_err().to_string(),
            "string 'abcde' does not fit in 4 bytes"
        );
    }

    #[test]
    fn bytes_fields_are_hex_of_exact_size() {
        assert_eq!(enc("bytes", "0a0b", 2).unwrap(), [10, 11]);
        assert_eq!(enc("bytes", "0x0a0b", 2).unwrap(), [10, 11]);
        assert!(matches!(
            enc("bytes", "0a", 2),
            Err(Error::Size {
                expected: 2,
                given: 1,
                ..
            })
        ));
        assert!(enc("bytes", "0g", 1).is_err());
    }

    #[test]
    fn unknown_type_word_lists_the_choices() {
        let e = FieldType::parse("u24").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown type 'u24'") && e.contains("be16"),
            "{e}"
        );
    }
}

//! A key or value as a list of typed fields, resolved against the map's
//! size: encoding one word per field (the `load` line format) and writing
//! the bytes back as text or JSON, without allocating per element. Pure:
//! the caller checks sizes against the map before handing bytes in.

use super::field::FieldType;
use super::format::{write_hex_compact, write_json_str};
use super::Error;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Typed fields that together cover exactly `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    fields: Vec<(FieldType, usize)>,
    size: usize,
}

impl Layout {
    /// Resolves `types` against a key or value of `size` bytes: at most one
    /// `str` or `bytes` field takes what the fixed fields leave; otherwise
    /// the fixed sizes must add up to `size` exactly. `what` names the side
    /// (`key`, `value`) in errors.
    pub fn new(types: &[FieldType], size: usize, what: &'static str) -> Result<Layout, Error> {
        if types.is_empty() {
            return Err(Error::NoTypes(what));
        }
        let fixed: usize = types.iter().filter_map(|t| t.fixed_size()).sum();
        let flexible = types.iter().filter(|t| t.fixed_size().is_none()).count();
        if flexible > 1 {
            return Err(Error::TwoFlexible(what));
        }
        let rest = size.checked_sub(fixed).filter(|r| flexible == 0 || *r > 0);
        let rest = match rest {
            Some(r) if flexible == 1 || r == 0 => r,
            _ => {
                return Err(Error::Size {
                    what,
                    expected: size,
                    given: fixed + flexible,
                })
            }
        };
        let fields = types
            .iter()
            .map(|&t| (t, t.fixed_size().unwrap_or(rest)))
            .collect();
        Ok(Layout { fields, size })
    }

    /// Total size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The fields and their sizes, in order.
    pub fn fields(&self) -> &[(FieldType, usize)] {
        &self.fields
    }

    /// True when every field is an integer (so values can be summed).
    pub fn is_integer(&self) -> bool {
        self.fields.iter().all(|(t, _)| t.is_integer())
    }

    /// Appends the bytes of one word per field taken from `words`.
    pub fn encode_words<'w>(
        &self,
        words: &mut impl Iterator<Item = &'w [u8]>,
        what: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        for &(ty, size) in &self.fields {
            let word = words.next().ok_or(Error::MissingField {
                what,
                ty: ty.name(),
            })?;
            ty.encode(word, size, out)?;
        }
        Ok(())
    }

    /// Writes `bytes` (exactly `size` long) as text: the fields separated
    /// by spaces, each in its own notation.
    pub fn write_text(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut at = 0;
        for (i, &(ty, size)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_field(ty, &bytes[at..at + size], false, out);
            at += size;
        }
    }

    /// Writes `bytes` as a JSON value: the field itself when there is one,
    /// an array of fields otherwise. Integers are numbers; addresses,
    /// strings and bytes (as hex) are strings.
    pub fn write_json(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.fields.len() == 1 {
            write_field(self.fields[0].0, bytes, true, out);
            return;
        }
        out.push(b'[');
        let mut at = 0;
        for (i, &(ty, size)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_field(ty, &bytes[at..at + size], true, out);
            at += size;
        }
        out.push(b']');
    }

    /// Adds each integer field across `cpus` per-CPU values laid out
    /// `stride` bytes apart in `values`.
    pub fn sum_cpus(&self, values: &[u8], stride: usize, cpus: usize) -> Result<Vec<i128>, Error> {
        if !self.is_integer() {
            return Err(Error::SumNeedsIntegers);
        }
        let mut sums = vec![0i128; self.fields.len()];
        for cpu in 0..cpus {
            let value = &values[cpu * stride..cpu * stride + self.size];
            let mut at = 0;
            for (sum, &(ty, size)) in sums.iter_mut().zip(&self.fields) {
                *sum += int_value(ty, &value[at..at + size]);
                at += size;
            }
        }
        Ok(sums)
    }
}

/// Writes sums from [`Layout::sum_cpus`] as text (space separated) or JSON
/// (a number, or an array of numbers).
pub fn write_sums(sums: &[i128], json: bool, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    let many = json && sums.len() > 1;
    if many {
        out.push(b'[');
    }
    for (i, s) in sums.iter().enumerate() {
        if i > 0 {
            out.push(if json { b',' } else { b' ' });
        }
        out.extend_from_slice(buf.format(*s).as_bytes());
    }
    if many {
        out.push(b']');
    }
}

/// The integer in `bytes` read as `ty` (host order, or network order for
/// `be*`), sign-extended for signed types.
pub fn int_value(ty: FieldType, bytes: &[u8]) -> i128 {
    let mut raw = [0u8; 8];
    let n = bytes.len().min(8);
    let unsigned = match ty {
        FieldType::Be16 | FieldType::Be32 | FieldType::Be64 => {
            raw[8 - n..].copy_from_slice(&bytes[..n]);
            u64::from_be_bytes(raw)
        }
        _ if cfg!(target_endian = "little") => {
            raw[..n].copy_from_slice(&bytes[..n]);
            u64::from_le_bytes(raw)
        }
        _ => {
            raw[8 - n..].copy_from_slice(&bytes[..n]);
            u64::from_be_bytes(raw)
        }
    };
    if ty.is_signed() {
        let shift = 64 - 8 * n as u32;
        (((unsigned << shift) as i64) >> shift) as i128
    } else {
        unsigned as i128
    }
}

fn write_field(ty: FieldType, bytes: &[u8], json: bool, out: &mut Vec<u8>) {
    use FieldType::*;
    match ty {
        U8 | U16 | U32 | U64 | Be16 | Be32 | Be64 => {
            let v = int_value(ty, bytes) as u64;
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
        I8 | I16 | I32 | I64 => {
            let v = int_value(ty, bytes) as i64;
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
        Ip4 | Ip6 | Mac => {
            if json {
                out.push(b'"');
            }
            // Writing into a Vec cannot fail.
            let _ = match ty {
                Ip4 => write!(
                    out,
                    "{}",
                    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
                ),
                Ip6 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(bytes);
                    write!(out, "{}", Ipv6Addr::from(o))
                }
                _ => write!(
                    out,
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]
                ),
            };
            if json {
                out.push(b'"');
            }
        }
        Str => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let text = String::from_utf8_lossy(&bytes[..end]);
            if json {
                write_json_str(&text, out);
            } else {
                out.extend_from_slice(text.as_bytes());
            }
        }
        Bytes => {
            if json {
                out.push(b'"');
            }
            write_hex_compact(bytes, out);
            if json {
                out.push(b'"');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(words: &[&str]) -> Vec<FieldType> {
        words.iter().map(|w| FieldType::parse(w).unwrap()).collect()
    }

    fn text(l: &Layout, b: &[u8]) -> String {
        let mut out = Vec::new();
        l.write_text(b, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn json(l: &Layout, b: &[u8]) -> String {
        let mut out = Vec::new();
        l.write_json(b, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sizes_must_add_up_exactly_and_the_error_says_both() {
        assert!(Layout::new(&types(&["u32"]), 4, "key").is_ok());
        let e = Layout::new(&types(&["u32", "u32"]), 4, "key").unwrap_err();
        assert_eq!(e.to_string(), "key: expected 4 bytes, given 8");
        let e = Layout::new(&types(&["u16"]), 4, "value").unwrap_err();
        assert_eq!(e.to_string(), "value: expected 4 bytes, given 2");
    }

    #[test]
    fn one_str_or_bytes_field_takes_the_rest() {
        let l = Layout::new(&types(&["u32", "str"]), 20, "value").unwrap();
        assert_eq!(l.fields(), &[(FieldType::U32, 4), (FieldType::Str, 16)]);
        assert!(Layout::new(&types(&["str", "bytes"]), 20, "value").is_err());
        assert!(Layout::new(&types(&["u32", "str"]), 4, "value").is_err());
    }

    #[test]
    fn words_round_trip_through_bytes_and_text() {
        let l = Layout::new(
            &types(&["ip4", "be16", "u8", "i8", "mac", "str"]),
            20,
            "key",
        )
        .unwrap();
        let words = ["10.1.2.3", "8080", "7", "-3", "02:00:00:00:00:01", "eth0"];
        let mut bytes = Vec::new();
        l.encode_words(&mut words.iter().map(|w| w.as_bytes()), "key", &mut bytes)
            .unwrap();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[4..6], &[0x1f, 0x90]);
        assert_eq!(
            text(&l, &bytes),
            "10.1.2.3 8080 7 -3 02:00:00:00:00:01 eth0"
        );
        assert_eq!(
            json(&l, &bytes),
            r#"["10.1.2.3",8080,7,-3,"02:00:00:00:00:01","eth0"]"#
        );
    }

    #[test]
    fn a_missing_word_names_the_field() {
        let l = Layout::new(&types(&["u32", "u64"]), 12, "value").unwrap();
        let e = l.encode_words(&mut [b"1".as_slice()].into_iter(), "value", &mut Vec::new());
        assert_eq!(e.unwrap_err().to_string(), "value: missing the u64 field");
    }

    #[test]
    fn single_field_json_is_a_scalar_and_extremes_print_exactly() {
        let l = Layout::new(&types(&["u64"]), 8, "value").unwrap();
        assert_eq!(json(&l, &u64::MAX.to_ne_bytes()), "18446744073709551615");
        let l = Layout::new(&types(&["i64"]), 8, "value").unwrap();
        assert_eq!(text(&l, &i64::MIN.to_ne_bytes()), "-9223372036854775808");
        let l = Layout::new(&types(&["ip6"]), 16, "key").unwrap();
        let mut b = [0u8; 16];
        b[15] = 1;
        assert_eq!(json(&l, &b), "\"::1\"");
        let l = Layout::new(&types(&["bytes"]), 3, "key").unwrap();
        assert_eq!(text(&l, &[1, 0xab, 0]), "01ab00");
        let l = Layout::new(&types(&["str"]), 6, "key").unwrap();
        assert_eq!(json(&l, b"a\"b\0\0\0"), r#""a\"b""#);
    }

    #[test]
    fn sums_add_integer_fields_across_cpus() {
        let l = Layout::new(&types(&["u32", "i16"]), 6, "value").unwrap();
        let mut values = vec![0u8; 16];
        values[0..4].copy_from_slice(&3u32.to_ne_bytes());
        values[4..6].copy_from_slice(&(-1i16).to_ne_bytes());
        values[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
        values[12..14].copy_from_slice(&(-2i16).to_ne_bytes());
        let sums = l.sum_cpus(&values, 8, 2).unwrap();
        assert_eq!(sums, vec![3 + u32::MAX as i128, -3]);
        let mut out = Vec::new();
        write_sums(&sums, true, &mut out);
        assert_eq!(out, b"[4294967298,-3]");
        let l = Layout::new(&types(&["ip4"]), 4, "value").unwrap();
        assert!(matches!(
            l.sum_cpus(&[0; 8], 4, 2),
            Err(Error::SumNeedsIntegers)
        ));
    }
}

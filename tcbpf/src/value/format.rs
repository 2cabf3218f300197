//! Untyped bytes as text: bpftool's spaced hex (`07 00 00 00`), its JSON
//! form (`["0x07","0x00"]`), compact hex for `bytes` fields, and JSON string
//! escaping. Table driven, no allocation, no syscalls.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two hex digits for every byte value.
const PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Appends `bytes` as two hex digits each, separated by spaces (bpftool's
/// text). Built 32 bytes at a time on the stack: one append per 32 bytes,
/// which is what keeps a million-entry dump cheap.
pub fn write_hex_spaced(bytes: &[u8], out: &mut Vec<u8>) {
    let mut buf = [0u8; 3 * 32];
    for (i, chunk) in bytes.chunks(32).enumerate() {
        let mut n = 0;
        for &b in chunk {
            let pair = PAIRS[b as usize];
            buf[n] = b' ';
            buf[n + 1] = pair[0];
            buf[n + 2] = pair[1];
            n += 3;
        }
        // Every byte gets a leading space but the very first.
        let start = usize::from(i == 0);
        out.extend_from_slice(&buf[start..n]);
    }
}

/// Appends `bytes` as one run of hex digits (`0a0b`).
pub fn write_hex_compact(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Appends `bytes` as a JSON array of `"0x.."` strings (bpftool's JSON).
pub fn write_hex_json(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"0x");
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
        out.push(b'"');
    }
    out.push(b']');
}

/// Appends `text` as a JSON string literal.
pub fn write_json_str(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                let n = c as u32;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(n >> 4) as usize]);
                out.push(HEX[(n & 15) as usize]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms_match_bpftool() {
        let mut out = Vec::new();
        write_hex_spaced(&[7, 0, 0xab], &mut out);
        assert_eq!(out, b"07 00 ab");
        out.clear();
        let long: Vec<u8> = (0..70).collect();
        write_hex_spaced(&long, &mut out);
        let want: Vec<String> = long.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want.join(" "));
        out.clear();
        write_hex_spaced(&[], &mut out);
        assert!(out.is_empty());
        out.clear();
        write_hex_json(&[7, 0xff], &mut out);
        assert_eq!(out, br#"["0x07","0xff"]"#);
        out.clear();
        write_hex_compact(&[1, 0x2f], &mut out);
        assert_eq!(out, b"012f");
    }

    #[test]
    fn json_strings_escape_quotes_and_controls() {
        let mut out = Vec::new();
        write_json_str("a\"\\\n\u{1}é", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"\\\\\\n\\u0001é\"");
    }
}

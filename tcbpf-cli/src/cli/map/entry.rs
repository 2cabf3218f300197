//! How map entries are written: typed or as bpftool's hex, text or JSON,
//! one value or one per CPU (or their sum). Appends to a byte buffer so
//! `dump` formats a whole batch before one write.
//!
//! Text: `key: K  value: V` per entry (typed fields separated by spaces);
//! per-CPU maps give `key: K` then `value (CPU NN): V` lines.
//! JSON: `{"key":K,"value":V}`, per-CPU `{"key":K,"values":[{"cpu":N,"value":V}…]}`,
//! where K and V are a typed field, an array of typed fields, or bpftool's
//! array of `"0xNN"` strings when no types are given. In bpftool's shape
//! (`dump` of a map printed by its BTF), K and V are the hex arrays and the
//! typed entry follows as `"formatted":{"key":K,"value":V}` (or
//! `"values"`), as `bpftool -j map dump` writes it.
//!
//! No system calls and no writes here: entries go into the caller's buffer.

use super::super::error::CliError;
use super::args::bad;
use super::typed::TypedSides;
use std::io::Write;
use tcbpf::value::{format, write_sums, Layout};

/// How to write keys and values of one map.
pub struct EntryFormat {
    /// Types of the key, or hex when `None`.
    pub key: Option<Layout>,
    /// Types of the value, or hex when `None`.
    pub value: Option<Layout>,
    /// JSON instead of text.
    pub json: bool,
    /// Per-CPU values: (bytes between CPUs, CPUs, value size); `None` for other maps.
    pub percpu: Option<(usize, usize, usize)>,
    /// Print the sum over CPUs instead of each CPU's value.
    pub sum: bool,
    /// The sides without types that print by the map's BTF.
    pub btf: Option<TypedSides>,
    /// JSON entries of a map printed by its BTF in bpftool's shape: hex
    /// `key` and `value`, the typed entry as `formatted`.
    pub bpftool: bool,
}

impl EntryFormat {
    /// Checks that `sum` has integer value types to add.
    pub fn check(&self) -> Result<(), CliError> {
        if self.sum {
            match (&self.value, self.percpu) {
                (_, None) => return Err(CliError::usage("'sum' applies to per-CPU maps only")),
                (None, _) if self.btf.as_ref().is_some_and(|b| b.value) => {}
                (None, _) => return Err(CliError::usage("'sum' needs value types (value u64 …)")),
                (Some(l), _) if !l.is_integer() => {
                    return Err(bad(tcbpf::value::Error::SumNeedsIntegers))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// True when JSON entries take bpftool's shape: asked for, and the map
    /// is printed by its BTF alone (no TYPES, no `sum`, not `raw`).
    fn bpftool_shape(&self) -> bool {
        self.bpftool
            && self.json
            && self.key.is_none()
            && self.value.is_none()
            && !self.sum
            && self.btf.as_ref().is_some_and(|b| b.key || b.value)
    }

    /// Appends one entry (`key` may be empty for queue/stack values).
    pub fn write_entry(&self, key: Option<&[u8]>, value: &[u8], out: &mut Vec<u8>) {
        if self.bpftool_shape() {
            let hex = EntryFormat {
                key: None,
                value: None,
                json: true,
                percpu: self.percpu,
                sum: false,
                btf: None,
                bpftool: false,
            };
            // bpftool's hex entry without its closing brace, then the typed one.
            hex.write_entry(key, value, out);
            debug_assert_eq!(out.last(), Some(&b'}'));
            out.pop();
            out.extend_from_slice(b",\"formatted\":");
            self.write_typed_json(key, value, out);
            out.push(b'}');
        } else if self.json {
            self.write_typed_json(key, value, out);
        } else {
            if let Some(key) = key {
                out.extend_from_slice(b"key: ");
                self.write_key(key, false, out);
            }
            self.write_text_value(key.is_some(), value, out);
            out.push(b'\n');
        }
    }

    /// One entry as tcbpf's typed JSON object.
    fn write_typed_json(&self, key: Option<&[u8]>, value: &[u8], out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(key) = key {
            out.extend_from_slice(b"\"key\":");
            self.write_key(key, true, out);
            out.push(b',');
        }
        self.write_json_value(value, out);
        out.push(b'}');
    }

    fn write_json_value(&self, value: &[u8], out: &mut Vec<u8>) {
        match self.percpu {
            Some((stride, cpus, size)) if !self.sum => {
                out.extend_from_slice(b"\"values\":[");
                for cpu in 0..cpus {
                    if cpu > 0 {
                        out.push(b',');
                    }
                    let _ = write!(out, "{{\"cpu\":{cpu},\"value\":");
                    self.write_value(&value[cpu * stride..cpu * stride + size], true, out);
                    out.push(b'}');
                }
                out.push(b']');
            }
            Some((stride, cpus, _)) => {
                out.extend_from_slice(b"\"value\":");
                self.write_sum(value, stride, cpus, true, out);
            }
            None => {
                out.extend_from_slice(b"\"value\":");
                self.write_value(value, true, out);
            }
        }
    }

    fn write_text_value(&self, after_key: bool, value: &[u8], out: &mut Vec<u8>) {
        let sep: &[u8] = if after_key { b"  " } else { b"" };
        match self.percpu {
            Some((stride, cpus, size)) if !self.sum => {
                for cpu in 0..cpus {
                    if after_key || cpu > 0 {
                        out.push(b'\n');
                    }
                    let _ = write!(out, "value (CPU {cpu:02}): ");
                    self.write_value(&value[cpu * stride..cpu * stride + size], false, out);
                }
            }
            Some((stride, cpus, _)) => {
                out.extend_from_slice(sep);
                out.extend_from_slice(b"value: ");
                self.write_sum(value, stride, cpus, false, out);
            }
            None => {
                out.extend_from_slice(sep);
                out.extend_from_slice(b"value: ");
                self.write_value(value, false, out);
            }
        }
    }

    /// A key: by its types, else by BTF, else hex.
    pub fn write_key(&self, bytes: &[u8], json: bool, out: &mut Vec<u8>) {
        if self.key.is_none() {
            if let Some(b) = self.btf.as_ref().filter(|b| b.key) {
                if b.write_key(bytes, json, out) {
                    return;
                }
            }
        }
        write_side(&self.key, bytes, json, out);
    }

    /// One (CPU's) value: by its types, else by BTF, else hex.
    fn write_value(&self, bytes: &[u8], json: bool, out: &mut Vec<u8>) {
        if self.value.is_none() {
            if let Some(b) = self.btf.as_ref().filter(|b| b.value) {
                if b.write_value(bytes, json, out) {
                    return;
                }
            }
        }
        write_side(&self.value, bytes, json, out);
    }

    fn write_sum(&self, value: &[u8], stride: usize, cpus: usize, json: bool, out: &mut Vec<u8>) {
        if self.value.is_none() {
            if let Some(b) = self.btf.as_ref().filter(|b| b.value) {
                b.write_sum(value, json, out);
                return;
            }
        }
        // check() made sure the layout exists and is all integers.
        if let Some(Ok(sums)) = self.value.as_ref().map(|l| l.sum_cpus(value, stride, cpus)) {
            write_sums(&sums, json, out);
        }
    }
}

/// Writes a key or value: typed when a layout is given, hex otherwise.
pub fn write_side(layout: &Option<Layout>, bytes: &[u8], json: bool, out: &mut Vec<u8>) {
    match (layout, json) {
        (Some(l), false) => l.write_text(bytes, out),
        (Some(l), true) => l.write_json(bytes, out),
        (None, false) => format::write_hex_spaced(bytes, out),
        (None, true) => format::write_hex_json(bytes, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcbpf::value::FieldType;

    fn fmt(key: Option<&str>, value: Option<&str>, json: bool) -> EntryFormat {
        let l = |t: &str, n| Layout::new(&[FieldType::parse(t).unwrap()], n, "x").unwrap();
        EntryFormat {
            key: key.map(|t| l(t, 4)),
            value: value.map(|t| l(t, 8)),
            json,
            percpu: None,
            sum: false,
            btf: None,
            bpftool: false,
        }
    }

    fn entry(f: &EntryFormat, key: Option<&[u8]>, value: &[u8]) -> String {
        let mut out = Vec::new();
        f.write_entry(key, value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn untyped_entries_look_like_bpftool() {
        let k = 7u32.to_ne_bytes();
        let v = 99u64.to_ne_bytes();
        assert_eq!(
            entry(&fmt(None, None, false), Some(&k), &v),
            "key: 07 00 00 00  value: 63 00 00 00 00 00 00 00\n"
        );
        assert_eq!(
            entry(&fmt(None, None, true), Some(&k), &v[..1]),
            r#"{"key":["0x07","0x00","0x00","0x00"],"value":["0x63"]}"#
        );
    }

    #[test]
    fn typed_entries_print_values() {
        let k = 7u32.to_ne_bytes();
        let v = 99u64.to_ne_bytes();
        assert_eq!(
            entry(&fmt(Some("u32"), Some("u64"), false), Some(&k), &v),
            "key: 7  value: 99\n"
        );
        assert_eq!(
            entry(&fmt(Some("u32"), Some("u64"), true), Some(&k), &v),
            r#"{"key":7,"value":99}"#
        );
        assert_eq!(
            entry(&fmt(None, Some("u64"), false), None, &v),
            "value: 99\n"
        );
    }

    #[test]
    fn percpu_values_print_per_cpu_or_summed() {
        let mut f = fmt(Some("u32"), Some("u64"), true);
        f.percpu = Some((8, 2, 8));
        let k = 1u32.to_ne_bytes();
        let mut v = 3u64.to_ne_bytes().to_vec();
        v.extend_from_slice(&4u64.to_ne_bytes());
        assert_eq!(
            entry(&f, Some(&k), &v),
            r#"{"key":1,"values":[{"cpu":0,"value":3},{"cpu":1,"value":4}]}"#
        );
        f.sum = true;
        assert!(f.check().is_ok());
        assert_eq!(entry(&f, Some(&k), &v), r#"{"key":1,"value":7}"#);
        f.json = false;
        assert_eq!(entry(&f, Some(&k), &v), "key: 1  value: 7\n");
        f.sum = false;
        assert_eq!(
            entry(&f, Some(&k), &v),
            "key: 1\nvalue (CPU 00): 3\nvalue (CPU 01): 4\n"
        );
    }
}

//! Writing keys and values by their BTF type straight into a byte buffer,
//! as JSON or as the CLI's text (`{packets: 5, bytes: 6}`), without
//! building a [`BtfValue`]: the type is compiled once into a [`Printer`],
//! so a dump of millions of entries does no allocation per entry.
//!
//! It writes exactly what `decode` then [`BtfValue::to_json`] or
//! [`write_text`] would (the typed fuzz test compares them); any case it
//! does not know, or a value that would not decode, makes it give up
//! (`false`) and the caller takes the `BtfValue` path. Pure.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::btf::fmt::{read_uint, sign_extend, BtfValue};
use crate::btf::{Btf, Int, Kind, TypeId, MAX_RESOLVE_DEPTH};

/// Output form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// JSON, bpftool's formatted shape: `{"packets":5,"bytes":6}`.
    Json,
    /// Text: `{packets: 5, bytes: 6}`, `[1, 2]`, `"eth0"`, `V_DROP`.
    Text,
}

/// A type compiled for printing.
#[derive(Debug, Clone)]
pub struct Printer {
    root: Node,
}

#[derive(Debug, Clone)]
struct Names(Vec<(u128, String)>);

impl Names {
    fn find(&self, raw: u128) -> Option<&str> {
        self.0
            .iter()
            .find(|(v, _)| *v == raw)
            .map(|(_, n)| n.as_str())
    }
}

#[derive(Debug, Clone)]
enum Node {
    /// An integer of `size` bytes at the start of the slice.
    Int { size: usize, int: Int },
    /// `bits` bits at `bit_offset` of the slice (a struct's bitfield).
    Bits {
        bit_offset: u32,
        bits: u32,
        int: Int,
        /// An enum bitfield: its names (masked to `bits`) and sign.
        names: Option<(Names, bool)>,
    },
    /// An enum of `size` bytes.
    Enum {
        size: usize,
        signed: bool,
        names: Names,
    },
    /// A 4- or 8-byte float.
    Float(usize),
    /// Bytes printed as hex.
    Bytes(usize),
    /// An array of `n` elements `stride` bytes apart; `text`: a char array
    /// that prints as a string when it holds text.
    Array {
        elem: Box<Node>,
        stride: usize,
        n: usize,
        text: bool,
    },
    /// A struct or union of `size` bytes: members at byte offsets.
    Struct { size: usize, fields: Vec<Field> },
    /// A data section: variables at their offsets and sizes.
    Section {
        vars: Vec<(usize, usize, String, String, Node)>,
    },
}

/// A member as C names it (those of anonymous members inlined, at
/// offsets from the start of the outer struct).
#[derive(Debug, Clone)]
struct Field {
    /// The name as text.
    text: String,
    /// The name as a JSON string with its quotes and the colon.
    json: String,
    /// Byte offset (unused for bitfields, which carry their bit offset).
    offset: usize,
    node: Node,
}

impl Printer {
    /// Compiles type `id` of `btf`; `None` when it holds something this
    /// printer leaves to the `BtfValue` path.
    pub fn new(btf: &Btf, id: TypeId) -> Option<Printer> {
        Some(Printer {
            root: compile(btf, id, 0)?,
        })
    }

    /// Appends `bytes` (the whole type) as `style`; false (and `out` as
    /// it was) when the bytes do not decode.
    pub fn write(&self, bytes: &[u8], style: Style, out: &mut Vec<u8>) -> bool {
        let len = out.len();
        let ok = write_node(&self.root, bytes, style, out).is_some();
        if !ok {
            out.truncate(len);
        }
        ok
    }
}

fn compile(btf: &Btf, id: TypeId, depth: usize) -> Option<Node> {
    if depth > MAX_RESOLVE_DEPTH {
        return None;
    }
    let id = btf.skip_mods_and_typedefs(id).ok()?;
    let t = btf.ty(id).ok()?;
    Some(match &t.kind {
        Kind::Int(i) => Node::Int {
            size: i.size as usize,
            int: *i,
        },
        Kind::Float(4) => Node::Float(4),
        Kind::Float(8) => Node::Float(8),
        Kind::Float(n) => Node::Bytes(*n as usize),
        Kind::Enum(e) | Kind::Enum64(e) => Node::Enum {
            size: e.size as usize,
            signed: e.signed,
            names: names(btf, e, e.size.saturating_mul(8))?,
        },
        Kind::Array(a) => {
            let stride = btf.resolve_size(a.elem).ok()? as usize;
            let elem = btf.skip_mods_and_typedefs(a.elem).ok()?;
            let text = match &btf.ty(elem).ok()?.kind {
                Kind::Int(i) => {
                    i.is_char() || (i.size == 1 && btf.name(elem).is_ok_and(|n| n.contains("char")))
                }
                _ => false,
            };
            let elem = if stride == 0 {
                Node::Bytes(0)
            } else {
                compile(btf, elem, depth + 1)?
            };
            Node::Array {
                elem: Box::new(elem),
                stride,
                n: a.nelems as usize,
                text,
            }
        }
        Kind::Struct(c) | Kind::Union(c) => {
            let members = btf.flat_members(id).ok()?;
            let mut fields = Vec::with_capacity(members.len());
            for m in &members {
                let name = m.name.to_string();
                let mt = btf.skip_mods_and_typedefs(m.ty).ok()?;
                let kind = &btf.ty(mt).ok()?.kind;
                let node = match (kind, m.bitfield_size) {
                    (Kind::Int(i), bits) if bits > 0 || m.bit_offset % 8 != 0 => Node::Bits {
                        bit_offset: m.bit_offset,
                        bits: if bits > 0 { bits as u32 } else { i.bits as u32 },
                        int: *i,
                        names: None,
                    },
                    (kind, bits) if bits > 0 => Node::Bits {
                        bit_offset: m.bit_offset,
                        bits: bits as u32,
                        int: Int {
                            size: 8,
                            encoding: 0,
                            offset: 0,
                            bits: 64,
                        },
                        names: match kind.enumeration() {
                            Some(e) => Some((names(btf, e, bits as u32)?, e.signed)),
                            None => None,
                        },
                    },
                    _ => compile(btf, m.ty, depth + 1)?,
                };
                let mut json = String::new();
                json_str(&mut json, &name);
                json.push(':');
                fields.push(Field {
                    text: name,
                    json,
                    offset: (m.bit_offset / 8) as usize,
                    node,
                });
            }
            Node::Struct {
                size: c.size as usize,
                fields,
            }
        }
        Kind::Datasec(d) => {
            let mut vars = Vec::with_capacity(d.vars.len());
            for v in &d.vars {
                let name = btf.name(v.ty).ok()?.to_string();
                let mut json = String::new();
                json_str(&mut json, &name);
                json.push(':');
                let node = compile(btf, v.ty, depth + 1)?;
                vars.push((v.offset as usize, v.size as usize, name, json, node));
            }
            Node::Section { vars }
        }
        Kind::Var(v) => compile(btf, v.ty, depth + 1)?,
        _ => return None,
    })
}

fn names(btf: &Btf, e: &crate::btf::Enum, bits: u32) -> Option<Names> {
    let mask = mask(bits);
    let mut out = Vec::with_capacity(e.values.len());
    for v in &e.values {
        // A name that does not read is skipped, as the decoder does
        // (it finds the first value that matches, then its name).
        out.push((
            (v.value as u64 as u128) & mask,
            btf.str_at(v.name_off).ok()?.to_string(),
        ));
    }
    Some(Names(out))
}

/// The decoder's mask for enums and bitfields: `bits` ones (none for 0).
fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn write_int(i: &Int, raw: u128, bits: u32, out: &mut Vec<u8>) {
    let raw = if bits == 0 || bits >= 128 {
        raw
    } else {
        raw & ((1u128 << bits) - 1)
    };
    if i.is_bool() {
        out.extend_from_slice(if raw != 0 { b"true" } else { b"false" });
    } else if i.is_signed() {
        let v = sign_extend(raw, bits);
        if let Ok(v) = i64::try_from(v) {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        } else {
            let _ = write!(out, "{v}");
        }
    } else if let Ok(v) = u64::try_from(raw) {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else {
        let _ = write!(out, "{raw}");
    }
}

fn write_enum(names: &Names, raw: u128, bits: u32, signed: bool, style: Style, out: &mut Vec<u8>) {
    match names.find(raw & mask(bits)) {
        Some(n) => match style {
            Style::Json => {
                let mut s = String::with_capacity(n.len() + 2);
                json_str(&mut s, n);
                out.extend_from_slice(s.as_bytes());
            }
            Style::Text => out.extend_from_slice(n.as_bytes()),
        },
        None => {
            let v = if signed {
                sign_extend(raw, bits)
            } else {
                raw as i128
            };
            let _ = write!(out, "{v}");
        }
    }
}

fn write_node(node: &Node, bytes: &[u8], style: Style, out: &mut Vec<u8>) -> Option<()> {
    match node {
        Node::Int { size, int } => {
            let b = bytes.get(..*size)?;
            let bits = int.bits as usize;
            if *size <= 8 && int.offset == 0 && bits == size * 8 && bits > 0 && !int.is_bool() {
                // The common case, in 64-bit arithmetic.
                let mut a = [0u8; 8];
                a[..*size].copy_from_slice(b);
                let raw = u64::from_le_bytes(a);
                let mut buf = itoa::Buffer::new();
                let text = if int.is_signed() {
                    let shift = 64 - bits as u32;
                    buf.format(((raw << shift) as i64) >> shift)
                } else {
                    buf.format(raw)
                };
                out.extend_from_slice(text.as_bytes());
                return Some(());
            }
            let raw = read_uint(b) >> (int.offset as u32).min(127);
            write_int(int, raw, int.bits as u32, out);
        }
        Node::Bits {
            bit_offset,
            bits,
            int,
            names,
        } => {
            let first = (bit_offset / 8) as usize;
            let last = (*bit_offset as u64 + *bits as u64).div_ceil(8) as usize;
            let chunk = bytes.get(first..last)?;
            if chunk.len() > 16 || *bits > 128 {
                return None;
            }
            let raw = read_uint(chunk) >> (bit_offset % 8);
            let raw = raw & mask(*bits);
            match names {
                Some((names, signed)) => write_enum(names, raw, *bits, *signed, style, out),
                None => write_int(int, raw, *bits, out),
            }
        }
        Node::Enum {
            size,
            signed,
            names,
        } => {
            let raw = read_uint(bytes.get(..*size)?);
            write_enum(
                names,
                raw,
                (*size as u32).saturating_mul(8),
                *signed,
                style,
                out,
            );
        }
        Node::Float(size) => {
            let b = bytes.get(..*size)?;
            let v = if *size == 4 {
                f32::from_le_bytes(b.try_into().ok()?) as f64
            } else {
                f64::from_le_bytes(b.try_into().ok()?)
            };
            let v = BtfValue::Float(v);
            match style {
                Style::Json => out.extend_from_slice(v.to_json().as_bytes()),
                Style::Text => {
                    let _ = write!(out, "{v}");
                }
            }
        }
        Node::Bytes(n) => write_bytes(bytes.get(..*n)?, style, out),
        Node::Array {
            elem,
            stride,
            n,
            text,
        } => {
            if *stride == 0 {
                out.extend_from_slice(b"[]");
                return Some(());
            }
            let data = bytes.get(..stride.checked_mul(*n)?)?;
            if *text {
                if let Some(s) = as_text(data) {
                    let mut q = String::with_capacity(s.len() + 2);
                    json_str(&mut q, s);
                    out.extend_from_slice(q.as_bytes());
                    return Some(());
                }
            }
            out.push(b'[');
            for k in 0..*n {
                if k > 0 {
                    out.extend_from_slice(if style == Style::Json { b"," } else { b", " });
                }
                write_node(elem, &data[k * stride..(k + 1) * stride], style, out)?;
            }
            out.push(b']');
        }
        Node::Struct { size, fields } => {
            let data = bytes.get(..*size)?;
            out.push(b'{');
            for (i, f) in fields.iter().enumerate() {
                match style {
                    Style::Json => {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(f.json.as_bytes());
                    }
                    Style::Text => {
                        if i > 0 {
                            out.extend_from_slice(b", ");
                        }
                        out.extend_from_slice(f.text.as_bytes());
                        out.extend_from_slice(b": ");
                    }
                }
                match &f.node {
                    Node::Bits { .. } => write_node(&f.node, data, style, out)?,
                    node => write_node(node, data.get(f.offset..)?, style, out)?,
                }
            }
            out.push(b'}');
        }
        Node::Section { vars } => {
            out.push(b'{');
            for (i, (offset, size, text, json, node)) in vars.iter().enumerate() {
                let part = bytes.get(*offset..offset.saturating_add(*size))?;
                match style {
                    Style::Json => {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(json.as_bytes());
                    }
                    Style::Text => {
                        if i > 0 {
                            out.extend_from_slice(b", ");
                        }
                        if !text.is_empty() {
                            out.extend_from_slice(text.as_bytes());
                            out.extend_from_slice(b": ");
                        }
                    }
                }
                write_node(node, part, style, out)?;
            }
            out.push(b'}');
        }
    }
    Some(())
}

fn write_bytes(b: &[u8], style: Style, out: &mut Vec<u8>) {
    let v = BtfValue::Bytes(b.to_vec());
    match style {
        Style::Json => out.extend_from_slice(v.to_json().as_bytes()),
        Style::Text => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Text up to the first NUL when it is printable (and only NULs follow).
fn as_text(data: &[u8]) -> Option<&str> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, rest) = data.split_at(end);
    if rest.iter().any(|&b| b != 0) || text.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return None;
    }
    std::str::from_utf8(text).ok()
}

/// A JSON string; for printable text also what Rust's `{:?}` writes.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The text form of a decoded value, as [`Style::Text`] writes it.
pub fn write_text(v: &BtfValue, out: &mut Vec<u8>) {
    match v {
        BtfValue::Struct(fields) => {
            out.push(b'{');
            for (i, (name, f)) in fields.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                if !name.is_empty() {
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b": ");
                }
                write_text(f, out);
            }
            out.push(b'}');
        }
        BtfValue::Array(items) => {
            out.push(b'[');
            for (i, f) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_text(f, out);
            }
            out.push(b']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

//! Decoding raw map keys and values by their BTF type, for `map dump` and
//! `map lookup` with BTF: integers (bitfields included), enums by name,
//! char arrays as strings, structs, unions, arrays and data sections.
//! Members are named as C names them: an anonymous struct or union
//! member's own members are the enclosing struct's (`Btf::flat_members`).
//! Pure: bytes and types in, a `BtfValue` out, printed as C-like text or
//! JSON. Never reads past the bytes given.

use std::fmt;

use super::error::{Error, Result};
use super::lookup::MAX_RESOLVE_DEPTH;
use super::type_set::Btf;
use super::types::{Int, Kind, TypeId};

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum BtfValue {
    /// A signed integer.
    Int(i128),
    /// An unsigned integer.
    Uint(u128),
    /// A `bool`.
    Bool(bool),
    /// A floating-point number.
    Float(f64),
    /// An enum: the enumerator's name when one has the value.
    Enum {
        /// Enumerator name.
        name: Option<String>,
        /// Raw value.
        value: i128,
    },
    /// A pointer (an address, meaningless outside the kernel).
    Pointer(u64),
    /// A `char` array holding text up to its first NUL.
    Str(String),
    /// An array.
    Array(Vec<BtfValue>),
    /// A struct, union or data section: named fields in order.
    Struct(Vec<(String, BtfValue)>),
    /// Bytes of a type that has no better shape (function pointers, void).
    Bytes(Vec<u8>),
}

/// Decodes `bytes` as a value of type `id`; `bytes` must hold the whole type.
pub fn decode(btf: &Btf, id: TypeId, bytes: &[u8]) -> Result<BtfValue> {
    let size = btf.resolve_size(id)? as usize;
    if bytes.len() < size {
        return Err(Error::invalid(format!(
            "{} needs {size} bytes, got {}",
            btf.describe(id),
            bytes.len()
        )));
    }
    decode_at(btf, id, &bytes[..size], 0)
}

fn decode_at(btf: &Btf, id: TypeId, bytes: &[u8], depth: usize) -> Result<BtfValue> {
    if depth > MAX_RESOLVE_DEPTH {
        return Err(Error::invalid("BTF value nesting too deep"));
    }
    let id = btf.skip_mods_and_typedefs(id)?;
    let t = btf.ty(id)?;
    let need = |n: usize| -> Result<&[u8]> {
        bytes
            .get(..n)
            .ok_or_else(|| Error::invalid(format!("{} runs past the value", btf.describe(id))))
    };
    Ok(match &t.kind {
        Kind::Int(i) => int_value(i, need(i.size as usize)?),
        Kind::Float(size) => match *size {
            4 => BtfValue::Float(f32::from_le_bytes(need(4)?.try_into().unwrap_or([0; 4])) as f64),
            8 => BtfValue::Float(f64::from_le_bytes(need(8)?.try_into().unwrap_or([0; 8]))),
            n => BtfValue::Bytes(need(n as usize)?.to_vec()),
        },
        Kind::Ptr(_) => BtfValue::Pointer(read_uint(need(8)?) as u64),
        Kind::Enum(e) | Kind::Enum64(e) => enum_value(
            btf,
            e,
            read_uint(need(e.size as usize)?),
            e.size.saturating_mul(8),
        ),
        Kind::Array(a) => {
            let elem_size = btf.resolve_size(a.elem)? as usize;
            if elem_size == 0 {
                return Ok(BtfValue::Array(Vec::new()));
            }
            let elem = btf.skip_mods_and_typedefs(a.elem)?;
            let total = elem_size.saturating_mul(a.nelems as usize);
            let data = need(total)?;
            if let Kind::Int(i) = &btf.ty(elem)?.kind {
                if i.is_char() || (i.size == 1 && btf.name(elem).is_ok_and(|n| n.contains("char")))
                {
                    if let Some(s) = as_text(data) {
                        return Ok(BtfValue::Str(s));
                    }
                }
            }
            let mut items = Vec::with_capacity(a.nelems.min(4096) as usize);
            for k in 0..a.nelems as usize {
                let start = k * elem_size;
                items.push(decode_at(
                    btf,
                    elem,
                    &data[start..start + elem_size],
                    depth + 1,
                )?);
            }
            BtfValue::Array(items)
        }
        Kind::Struct(c) | Kind::Union(c) => {
            let data = need(c.size as usize)?;
            let members = btf.flat_members(id)?;
            let mut fields = Vec::with_capacity(members.len());
            for m in &members {
                let name = m.name.to_string();
                let byte = (m.bit_offset / 8) as usize;
                let mt = btf.skip_mods_and_typedefs(m.ty)?;
                let value = match (&btf.ty(mt)?.kind, m.bitfield_size) {
                    (Kind::Int(i), bits) if bits > 0 || m.bit_offset % 8 != 0 => {
                        let bits = if bits > 0 { bits as u32 } else { i.bits as u32 };
                        bitfield(i, data, m.bit_offset, bits)?
                    }
                    (kind, bits) if bits > 0 => {
                        // An enum bitfield: its bits, named by the enum.
                        let fake = Int {
                            size: 8,
                            encoding: 0,
                            offset: 0,
                            bits: 64,
                        };
                        let raw = bitfield(&fake, data, m.bit_offset, bits as u32)?;
                        match (kind.enumeration(), &raw) {
                            (Some(e), BtfValue::Uint(raw)) => enum_value(btf, e, *raw, bits as u32),
                            _ => raw,
                        }
                    }
                    _ => {
                        let rest = data.get(byte..).ok_or_else(|| {
                            Error::invalid(format!(
                                "member '{name}' lies outside {}",
                                btf.describe(id)
                            ))
                        })?;
                        decode_at(btf, m.ty, rest, depth + 1)?
                    }
                };
                fields.push((name, value));
            }
            BtfValue::Struct(fields)
        }
        Kind::Datasec(d) => {
            let mut fields = Vec::with_capacity(d.vars.len());
            for v in &d.vars {
                let name = btf.name(v.ty)?.to_string();
                let start = v.offset as usize;
                let part = bytes
                    .get(start..start.saturating_add(v.size as usize))
                    .ok_or_else(|| {
                        Error::invalid(format!("variable '{name}' lies outside the section value"))
                    })?;
                fields.push((name, decode_at(btf, v.ty, part, depth + 1)?));
            }
            BtfValue::Struct(fields)
        }
        Kind::Var(v) => decode_at(btf, v.ty, bytes, depth + 1)?,
        _ => BtfValue::Bytes(bytes.to_vec()),
    })
}

/// An enum's `bits`-bit raw value, with its enumerator's name when one has it.
fn enum_value(btf: &Btf, e: &crate::btf::types::Enum, raw: u128, bits: u32) -> BtfValue {
    let value = if e.signed {
        sign_extend(raw, bits)
    } else {
        raw as i128
    };
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let name = e
        .values
        .iter()
        .find(|v| (v.value as u64 as u128) & mask == raw & mask)
        .and_then(|v| btf.str_at(v.name_off).ok())
        .map(str::to_string);
    BtfValue::Enum { name, value }
}

/// Little-endian unsigned value of up to 16 bytes.
pub(crate) fn read_uint(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .take(16)
        .rev()
        .fold(0u128, |acc, &b| acc << 8 | b as u128)
}

/// `raw`'s low `bits` bits as a signed value (all of it for 0 or 128).
pub(crate) fn sign_extend(raw: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return raw as i128;
    }
    let shift = 128 - bits;
    ((raw << shift) as i128) >> shift
}

fn int_value(i: &Int, bytes: &[u8]) -> BtfValue {
    let bits = i.bits as u32;
    let raw = read_uint(bytes) >> (i.offset as u32).min(127);
    let raw = if bits == 0 || bits >= 128 {
        raw
    } else {
        raw & ((1u128 << bits) - 1)
    };
    if i.is_bool() {
        BtfValue::Bool(raw != 0)
    } else if i.is_signed() {
        BtfValue::Int(sign_extend(raw, bits))
    } else {
        BtfValue::Uint(raw)
    }
}

/// `bits` bits at `bit_offset` of `data` (little-endian bit numbering).
fn bitfield(i: &Int, data: &[u8], bit_offset: u32, bits: u32) -> Result<BtfValue> {
    let first = (bit_offset / 8) as usize;
    let last = (bit_offset as u64 + bits as u64).div_ceil(8) as usize;
    let chunk = data
        .get(first..last)
        .ok_or_else(|| Error::invalid("bitfield lies outside the value"))?;
    if chunk.len() > 16 || bits > 128 {
        return Err(Error::invalid("bitfield wider than 128 bits"));
    }
    let shift = bit_offset % 8;
    let raw = read_uint(chunk) >> shift;
    let raw = if bits >= 128 {
        raw
    } else {
        raw & ((1u128 << bits) - 1)
    };
    Ok(if i.is_bool() {
        BtfValue::Bool(raw != 0)
    } else if i.is_signed() {
        BtfValue::Int(sign_extend(raw, bits))
    } else {
        BtfValue::Uint(raw)
    })
}

/// Text up to the first NUL when it is printable (and something follows
/// only NULs), else `None`.
fn as_text(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, rest) = data.split_at(end);
    if rest.iter().any(|&b| b != 0) || text.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}

impl fmt::Display for BtfValue {
    /// C-like: `{.packets = 3, .bytes = 192}`, `[1, 2]`, `"eth0"`, `RED`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfValue::Int(v) => write!(f, "{v}"),
            BtfValue::Uint(v) => write!(f, "{v}"),
            BtfValue::Bool(v) => write!(f, "{v}"),
            BtfValue::Float(v) => write!(f, "{v}"),
            BtfValue::Enum { name: Some(n), .. } => write!(f, "{n}"),
            BtfValue::Enum { name: None, value } => write!(f, "{value}"),
            BtfValue::Pointer(p) => write!(f, "{p:#x}"),
            BtfValue::Str(s) => write!(f, "{s:?}"),
            BtfValue::Array(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    write!(f, "{}{v}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")
            }
            BtfValue::Struct(fields) => {
                write!(f, "{{")?;
                for (i, (n, v)) in fields.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    if n.is_empty() {
                        write!(f, "{sep}{v}")?;
                    } else {
                        write!(f, "{sep}.{n} = {v}")?;
                    }
                }
                write!(f, "}}")
            }
            BtfValue::Bytes(b) => {
                for (i, x) in b.iter().enumerate() {
                    write!(f, "{}{x:02x}", if i > 0 { " " } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

impl BtfValue {
    /// The value as JSON text (numbers beyond 2^53 stay exact: JSON
    /// numbers are written as digits; enums by name as strings).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            BtfValue::Int(v) => {
                let _ = write!(out, "{v}");
            }
            BtfValue::Uint(v) => {
                let _ = write!(out, "{v}");
            }
            BtfValue::Bool(v) => {
                let _ = write!(out, "{v}");
            }
            BtfValue::Float(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            BtfValue::Float(v) => json_str(out, &v.to_string()),
            BtfValue::Enum { name: Some(n), .. } => json_str(out, n),
            BtfValue::Enum { name: None, value } => {
                let _ = write!(out, "{value}");
            }
            BtfValue::Pointer(p) => json_str(out, &format!("{p:#x}")),
            BtfValue::Str(s) => json_str(out, s),
            BtfValue::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            BtfValue::Struct(fields) => {
                out.push('{');
                for (i, (n, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_str(out, n);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            BtfValue::Bytes(b) => {
                out.push('[');
                for (i, x) in b.iter().enumerate() {
                    let _ = write!(out, "{}\"{x:#04x}\"", if i > 0 { "," } else { "" });
                }
                out.push(']');
            }
        }
    }
}

fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
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

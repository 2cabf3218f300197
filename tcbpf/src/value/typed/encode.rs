//! JSON → bytes by BTF type: the inverse of [`crate::btf::fmt::decode`],
//! taking exactly the JSON shape `BtfValue::to_json` writes (structs as
//! objects by member name as C names them, the members of anonymous
//! structs and unions inline; arrays as arrays, enums by name, char arrays
//! as strings) and checking it against the type. Every error names the
//! member path (`value.inner.a: 300 is out of range for u8`).
//! Pure: no syscalls; never writes outside the buffer it is given.

use serde_json::Value;

use super::TypedError;
use crate::btf::{Btf, Int, Kind, TypeId, MAX_RESOLVE_DEPTH};

/// Writes `json` as a value of type `id` into `out` (zeroed by the caller,
/// exactly the type's size). `partial` lets struct members be missing.
pub(super) fn encode(
    btf: &Btf,
    id: TypeId,
    json: &Value,
    out: &mut [u8],
    path: &str,
    partial: bool,
) -> Result<(), TypedError> {
    let mut e = Encoder {
        btf,
        partial,
        path: path.to_string(),
    };
    e.at(id, json, out, 0)
}

struct Encoder<'a> {
    btf: &'a Btf,
    partial: bool,
    path: String,
}

impl Encoder<'_> {
    fn err(&self, msg: impl Into<String>) -> TypedError {
        TypedError::new(self.path.clone(), msg)
    }

    fn btf_err(&self, e: crate::btf::Error) -> TypedError {
        self.err(e.to_string())
    }

    fn at(
        &mut self,
        id: TypeId,
        json: &Value,
        out: &mut [u8],
        depth: usize,
    ) -> Result<(), TypedError> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(self.err("BTF value nesting too deep"));
        }
        let btf = self.btf;
        let id = btf
            .skip_mods_and_typedefs(id)
            .map_err(|e| self.btf_err(e))?;
        let t = btf.ty(id).map_err(|e| self.btf_err(e))?;
        let size = btf.resolve_size(id).map_err(|e| self.btf_err(e))? as usize;
        if out.len() < size {
            return Err(self.err(format!("{} runs past the value", btf.describe(id))));
        }
        let out = &mut out[..size];
        match &t.kind {
            Kind::Int(i) => {
                let v = self.int(i, json, &btf.describe(id))?;
                write_bits(out, i.offset as u32, i.bits as u32, v);
            }
            Kind::Enum(e) | Kind::Enum64(e) => {
                let v = self.enumerator(id, &e.values, e.size, e.signed, json)?;
                write_bits(out, 0, e.size * 8, v);
            }
            Kind::Float(s) => {
                let v = float(json)
                    .ok_or_else(|| self.err(format!("expected a number, got {}", kind_of(json))))?;
                match *s {
                    4 => out.copy_from_slice(&(v as f32).to_le_bytes()),
                    8 => out.copy_from_slice(&v.to_le_bytes()),
                    n => {
                        return Err(
                            self.err(format!("{n}-byte floats cannot be written; use 'raw'"))
                        )
                    }
                }
            }
            Kind::Ptr(_) => {
                let v = pointer(json)
                    .ok_or_else(|| self.err("expected a pointer as a number or \"0x…\""))?;
                out.copy_from_slice(&v.to_le_bytes());
            }
            Kind::Array(a) => self.array(a.elem, a.nelems, json, out, depth)?,
            Kind::Struct(_) | Kind::Union(_) => {
                let Value::Object(obj) = json else {
                    return Err(self.err(format!(
                        "expected an object for {}, got {}",
                        btf.describe(id),
                        kind_of(json)
                    )));
                };
                let members = btf.flat_members(id).map_err(|e| self.btf_err(e))?;
                let mut seen = 0usize;
                for m in &members {
                    let name = m.name;
                    let Some(v) = obj.get(name) else {
                        if !self.partial && !m.shared {
                            return Err(self.err(format!(
                                "missing member '{name}' (give it, or use 'partial' to zero-fill)"
                            )));
                        }
                        continue;
                    };
                    seen += 1;
                    let saved = self.path.len();
                    self.path.push('.');
                    self.path.push_str(name);
                    let mt = btf
                        .skip_mods_and_typedefs(m.ty)
                        .map_err(|e| self.btf_err(e))?;
                    let mkind = &btf.ty(mt).map_err(|e| self.btf_err(e))?.kind;
                    let bitfield = m.bitfield_size > 0 || m.bit_offset % 8 != 0;
                    if bitfield {
                        let bits = match (mkind, m.bitfield_size) {
                            (_, b) if b > 0 => b as u32,
                            (Kind::Int(i), _) => i.bits as u32,
                            _ => return Err(self.err("unaligned member that is not an integer")),
                        };
                        let v = match mkind {
                            Kind::Int(i) => {
                                let i = Int {
                                    bits: bits.min(128) as u8,
                                    ..*i
                                };
                                self.int(&i, v, &format!("a {bits}-bit field"))?
                            }
                            Kind::Enum(e) | Kind::Enum64(e) => {
                                self.enumerator(mt, &e.values, e.size, e.signed, v)?
                            }
                            _ => return Err(self.err("bitfield of a type that is not an integer")),
                        };
                        if bits > 128
                            || (m.bit_offset as u64 + bits as u64).div_ceil(8) > out.len() as u64
                        {
                            return Err(self.err("bitfield lies outside the value"));
                        }
                        if bits < 128 && v >> bits != 0 {
                            return Err(self.err(format!("{v} does not fit in a {bits}-bit field")));
                        }
                        write_bits(out, m.bit_offset, bits, v);
                    } else {
                        let start = (m.bit_offset / 8) as usize;
                        let Some(rest) = out.get_mut(start..) else {
                            return Err(self.err("member lies outside its struct"));
                        };
                        self.at(m.ty, v, rest, depth + 1)?;
                    }
                    self.path.truncate(saved);
                }
                if seen < obj.len() {
                    for k in obj.keys() {
                        if !members.iter().any(|m| m.name == k) {
                            return Err(
                                self.err(format!("unknown member '{k}' of {}", btf.describe(id)))
                            );
                        }
                    }
                }
            }
            Kind::Datasec(d) => {
                let Value::Object(obj) = json else {
                    return Err(self.err(format!(
                        "expected an object of variables, got {}",
                        kind_of(json)
                    )));
                };
                let mut seen = 0usize;
                for v in &d.vars {
                    let name = btf.name(v.ty).map_err(|e| self.btf_err(e))?.to_string();
                    let Some(val) = obj.get(&name) else {
                        if !self.partial {
                            return Err(self.err(format!("missing variable '{name}' (give it, or use 'partial' to zero-fill)")));
                        }
                        continue;
                    };
                    seen += 1;
                    let start = v.offset as usize;
                    let Some(part) = out.get_mut(start..start.saturating_add(v.size as usize))
                    else {
                        return Err(
                            self.err(format!("variable '{name}' lies outside the section value"))
                        );
                    };
                    let saved = self.path.len();
                    self.path.push('.');
                    self.path.push_str(&name);
                    self.at(v.ty, val, part, depth + 1)?;
                    self.path.truncate(saved);
                }
                if seen < obj.len() {
                    for k in obj.keys() {
                        if !d.vars.iter().any(|v| btf.name(v.ty).is_ok_and(|n| n == k)) {
                            return Err(self.err(format!("unknown variable '{k}'")));
                        }
                    }
                }
            }
            Kind::Var(v) => self.at(v.ty, json, out, depth + 1)?,
            _ => {
                return Err(self.err(format!(
                    "{} cannot be written as JSON; use 'raw'",
                    btf.describe(id)
                )));
            }
        }
        Ok(())
    }

    fn array(
        &mut self,
        elem: TypeId,
        n: u32,
        json: &Value,
        out: &mut [u8],
        depth: usize,
    ) -> Result<(), TypedError> {
        let btf = self.btf;
        let elem_size = btf.resolve_size(elem).map_err(|e| self.btf_err(e))? as usize;
        if let Value::String(s) = json {
            let eid = btf
                .skip_mods_and_typedefs(elem)
                .map_err(|e| self.btf_err(e))?;
            if elem_size != 1 || !matches!(btf.ty(eid).map(|t| &t.kind), Ok(Kind::Int(_))) {
                return Err(self.err("a string is only valid for a char array"));
            }
            if s.len() > n as usize {
                return Err(self.err(format!(
                    "string of {} bytes does not fit in char[{n}]",
                    s.len()
                )));
            }
            if s.as_bytes().contains(&0) {
                return Err(self.err("string holds a NUL byte"));
            }
            out[..s.len()].copy_from_slice(s.as_bytes());
            return Ok(());
        }
        let Value::Array(items) = json else {
            return Err(self.err(format!("expected an array of {n}, got {}", kind_of(json))));
        };
        if items.len() > n as usize || (items.len() < n as usize && !self.partial) {
            return Err(self.err(format!("expected {n} elements, got {}", items.len())));
        }
        for (k, item) in items.iter().enumerate() {
            let saved = self.path.len();
            self.path.push_str(&format!("[{k}]"));
            let start = k * elem_size;
            let part = out
                .get_mut(start..start + elem_size)
                .ok_or_else(|| self.err("array runs past the value"))?;
            self.at(elem, item, part, depth + 1)?;
            self.path.truncate(saved);
        }
        Ok(())
    }

    /// The bits of an integer, range-checked for its width and sign.
    fn int(&self, i: &Int, json: &Value, ty: &str) -> Result<u128, TypedError> {
        let bits = (i.bits as u32).clamp(1, 128);
        if i.is_bool() {
            return match json {
                Value::Bool(b) => Ok(*b as u128),
                Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                    Ok(n.as_u64().unwrap_or(0) as u128)
                }
                _ => Err(self.err(format!("expected true or false, got {}", short(json)))),
            };
        }
        let v = integer(json).ok_or_else(|| match json {
            Value::Number(_) => self.err(format!("{} is not an integer", short(json))),
            _ => self.err(format!(
                "expected an integer for {ty}, got {}",
                kind_of(json)
            )),
        })?;
        let name = int_name(i, bits);
        let out_of_range = || self.err(format!("{} is out of range for {name}", short(json)));
        if i.is_signed() {
            let min = if bits >= 128 {
                i128::MIN
            } else {
                -(1i128 << (bits - 1))
            };
            let max = if bits >= 128 {
                i128::MAX
            } else {
                (1i128 << (bits - 1)) - 1
            };
            let s = match v {
                Num::Neg(n) => n,
                Num::Pos(p) => i128::try_from(p).map_err(|_| out_of_range())?,
            };
            if s < min || s > max {
                return Err(out_of_range());
            }
            Ok(if bits >= 128 {
                s as u128
            } else {
                (s as u128) & ((1u128 << bits) - 1)
            })
        } else {
            let p = match v {
                Num::Neg(_) => return Err(out_of_range()),
                Num::Pos(p) => p,
            };
            if bits < 128 && p >> bits != 0 {
                return Err(out_of_range());
            }
            Ok(p)
        }
    }

    fn enumerator(
        &self,
        id: TypeId,
        values: &[crate::btf::EnumValue],
        size: u32,
        signed: bool,
        json: &Value,
    ) -> Result<u128, TypedError> {
        let bits = (size * 8).clamp(1, 128);
        let mask = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        if let Value::String(s) = json {
            for v in values {
                if self.btf.str_at(v.name_off).is_ok_and(|n| n == s) {
                    return Ok((v.value as i128 as u128) & mask);
                }
            }
            return Err(self.err(format!(
                "unknown enumerator '{s}' of {}",
                self.btf.describe(id)
            )));
        }
        let fake = Int {
            size,
            encoding: if signed {
                crate::btf::int_encoding::SIGNED
            } else {
                0
            },
            offset: 0,
            bits: bits.min(128) as u8,
        };
        self.int(&fake, json, &self.btf.describe(id))
    }
}

enum Num {
    Pos(u128),
    Neg(i128),
}

/// An integer from a JSON number, or a string of decimal or 0x digits
/// (for 128-bit values, which JSON numbers cannot carry exactly).
fn integer(json: &Value) -> Option<Num> {
    match json {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(Num::Pos(u as u128))
            } else {
                n.as_i64().map(|i| Num::Neg(i as i128))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u128::from_str_radix(h, 16).ok().map(Num::Pos)
            } else if t.starts_with('-') {
                t.parse::<i128>().ok().map(Num::Neg)
            } else {
                t.parse::<u128>().ok().map(Num::Pos)
            }
        }
        _ => None,
    }
}

fn float(json: &Value) -> Option<f64> {
    match json {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn pointer(json: &Value) -> Option<u64> {
    match json {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => u64::from_str_radix(s.strip_prefix("0x")?, 16).ok(),
        _ => None,
    }
}

fn int_name(i: &Int, bits: u32) -> String {
    format!("{}{bits}", if i.is_signed() { "i" } else { "u" })
}

/// `a string`, `an object`… for messages.
pub(super) fn kind_of(json: &Value) -> &'static str {
    match json {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON text of a scalar, cut short for messages.
fn short(json: &Value) -> String {
    let mut s = json.to_string();
    if s.len() > 40 {
        s.truncate(40);
        s.push('…');
    }
    s
}

/// Writes the low `bits` bits of `v` at `bit_offset` (little-endian bit
/// numbering), leaving the other bits of the bytes it touches alone.
fn write_bits(out: &mut [u8], bit_offset: u32, bits: u32, v: u128) {
    if bit_offset % 8 == 0 && bits % 8 == 0 && bits <= 128 {
        let start = (bit_offset / 8) as usize;
        let n = (bits / 8) as usize;
        if let Some(dst) = out.get_mut(start..start + n) {
            dst.copy_from_slice(&v.to_le_bytes()[..n]);
        }
        return;
    }
    for k in 0..bits.min(128) {
        let bit = bit_offset as usize + k as usize;
        let Some(byte) = out.get_mut(bit / 8) else {
            return;
        };
        let mask = 1u8 << (bit % 8);
        if (v >> k) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

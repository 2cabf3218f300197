//! The fast path of `load json`: one NDJSON line straight into key and
//! value bytes, parsed against the type compiled once ([`Encoder`]), with
//! no `serde_json::Value` in between. It takes only the plain shapes
//! (integers, enum names, strings without escapes for char arrays, whole
//! structs and arrays) and declines everything else (`None`): the caller
//! then takes the `serde_json` path, which gives the same bytes or the
//! error with its member path. So it never accepts what that path refuses
//! and never writes other bytes (the typed tests compare them). Pure.

use super::MapTypes;
use crate::btf::{Btf, Int, Kind, TypeId, MAX_RESOLVE_DEPTH};

/// A type compiled for encoding.
#[derive(Debug, Clone)]
pub(super) enum Encoder {
    /// An integer at offset 0 (`int.offset`/`bits` apply).
    Int { int: Int },
    /// A bitfield of a struct.
    Bits {
        bit_offset: u32,
        bits: u32,
        int: Int,
    },
    /// An enum of `size` bytes.
    Enum {
        size: usize,
        signed: bool,
        names: Vec<(String, u128)>,
    },
    /// An array; `chars`: a char array that also takes a string.
    Array {
        elem: Box<Encoder>,
        stride: usize,
        n: usize,
        chars: bool,
    },
    /// A struct (not a union, none inlined): every member once, as C
    /// names them.
    Struct {
        size: usize,
        fields: Vec<(String, usize, Encoder)>,
    },
}

impl Encoder {
    /// Compiles type `id`; `None` for what the fast path leaves alone.
    pub(super) fn new(btf: &Btf, id: TypeId) -> Option<Encoder> {
        compile(btf, id, 0)
    }

    /// An untyped integer side of `size` bytes.
    pub(super) fn untyped(size: usize) -> Option<Encoder> {
        matches!(size, 1 | 2 | 4 | 8).then_some(Encoder::Int {
            int: Int {
                size: size as u32,
                encoding: 0,
                offset: 0,
                bits: (size * 8) as u8,
            },
        })
    }
}

fn compile(btf: &Btf, id: TypeId, depth: usize) -> Option<Encoder> {
    if depth > MAX_RESOLVE_DEPTH {
        return None;
    }
    let id = btf.skip_mods_and_typedefs(id).ok()?;
    let size = btf.resolve_size(id).ok()? as usize;
    Some(match &btf.ty(id).ok()?.kind {
        Kind::Int(i)
            if i.bits > 0 && (i.offset as u64 + i.bits as u64) <= (i.size as u64 * 8).min(128) =>
        {
            Encoder::Int { int: *i }
        }
        Kind::Enum(e) | Kind::Enum64(e) if (1..=8).contains(&e.size) => {
            let bits = e.size * 8;
            let mask = if bits >= 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            let mut names = Vec::with_capacity(e.values.len());
            for v in &e.values {
                names.push((
                    btf.str_at(v.name_off).ok()?.to_string(),
                    (v.value as i128 as u128) & mask,
                ));
            }
            Encoder::Enum {
                size,
                signed: e.signed,
                names,
            }
        }
        Kind::Array(a) => {
            let stride = btf.resolve_size(a.elem).ok()? as usize;
            let eid = btf.skip_mods_and_typedefs(a.elem).ok()?;
            let chars = stride == 1 && matches!(btf.ty(eid).ok()?.kind, Kind::Int(_));
            if stride == 0 {
                return None;
            }
            Encoder::Array {
                elem: Box::new(compile(btf, a.elem, depth + 1)?),
                stride,
                n: a.nelems as usize,
                chars,
            }
        }
        Kind::Struct(_) => {
            // Members as C names them; one in an anonymous union shares
            // its bytes, which is the other path's.
            let members = btf.flat_members(id).ok()?;
            if members.iter().any(|m| m.shared) {
                return None;
            }
            let mut fields = Vec::with_capacity(members.len());
            let mut spans = Vec::with_capacity(members.len());
            for m in &members {
                let name = m.name.to_string();
                let mt = btf.skip_mods_and_typedefs(m.ty).ok()?;
                let enc = match &btf.ty(mt).ok()?.kind {
                    Kind::Int(i) if m.bitfield_size > 0 || m.bit_offset % 8 != 0 => {
                        let bits = if m.bitfield_size > 0 {
                            m.bitfield_size as u32
                        } else {
                            i.bits as u32
                        };
                        if bits == 0
                            || bits > 64
                            || (m.bit_offset as u64 + bits as u64).div_ceil(8) > size as u64
                        {
                            return None;
                        }
                        Encoder::Bits {
                            bit_offset: m.bit_offset,
                            bits,
                            int: Int {
                                bits: bits as u8,
                                ..*i
                            },
                        }
                    }
                    // Not an integer, yet a bitfield or off a byte boundary:
                    // the general encoder refuses it, so must this one.
                    _ if m.bitfield_size > 0 || m.bit_offset % 8 != 0 => return None,
                    _ => {
                        let enc = compile(btf, m.ty, depth + 1)?;
                        let start = (m.bit_offset / 8) as usize;
                        if start + btf.resolve_size(m.ty).ok()? as usize > size {
                            return None;
                        }
                        enc
                    }
                };
                let bits = match &enc {
                    Encoder::Bits { bits, .. } => *bits as u64,
                    _ => btf.resolve_size(m.ty).ok()? as u64 * 8,
                };
                spans.push((m.bit_offset as u64, m.bit_offset as u64 + bits));
                fields.push((name, (m.bit_offset / 8) as usize, enc));
            }
            // Members that share bits would make the order of writes matter.
            spans.sort_unstable();
            if spans.windows(2).any(|w| w[0].1 > w[1].0) {
                return None;
            }
            Encoder::Struct { size, fields }
        }
        _ => return None,
    })
}

/// A cursor over one line of JSON.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'"' => {
                    let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    self.i += 1;
                    return Some(text);
                }
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        None
    }

    /// An integer: `-?(0|[1-9][0-9]*)` not followed by a fraction or exponent.
    fn integer(&mut self) -> Option<(bool, u64)> {
        self.ws();
        let neg = self.s.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.s.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 || (digits > 1 && self.s[start] == b'0') {
            return None;
        }
        if matches!(self.s.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        if neg && v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((neg, v))
    }
}

impl MapTypes {
    /// One NDJSON line as key bytes and the whole value buffer, appended
    /// to `key` and `value`; `None` when the fast path declines (the
    /// buffers are then as they were).
    pub(super) fn fast_entry(
        &self,
        line: &[u8],
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Option<()> {
        let (ke, ve) = (self.key_enc.as_deref()?, self.value_enc.as_deref()?);
        let (klen, vlen) = (key.len(), value.len());
        let r = (|| {
            let mut c = Cursor { s: line, i: 0 };
            c.eat(b'{')?;
            let (mut got_key, mut got_value) = (false, false);
            key.resize(klen + self.key_size, 0);
            let stride = self.cpu_stride();
            value.resize(vlen + self.value_buf_size(), 0);
            loop {
                match c.string()? {
                    "key" if !got_key => {
                        c.eat(b':')?;
                        encode(ke, &mut c, &mut key[klen..])?;
                        got_key = true;
                    }
                    "value" if !got_value => {
                        c.eat(b':')?;
                        // A per-CPU map's "value" list is the other path's.
                        if self.cpus().is_some() && c.peek()? == b'[' {
                            return None;
                        }
                        encode(ve, &mut c, &mut value[vlen..vlen + self.value_size])?;
                        got_value = true;
                    }
                    _ => return None,
                }
                match c.peek()? {
                    b',' => c.i += 1,
                    b'}' => {
                        c.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
            c.ws();
            if !(got_key && got_value) || c.i != line.len() {
                return None;
            }
            for cpu in 1..self.cpus().unwrap_or(1) {
                value.copy_within(vlen..vlen + self.value_size, vlen + cpu * stride);
            }
            Some(())
        })();
        if r.is_none() {
            key.truncate(klen);
            value.truncate(vlen);
        }
        r
    }
}

fn encode(e: &Encoder, c: &mut Cursor<'_>, out: &mut [u8]) -> Option<()> {
    match e {
        Encoder::Int { int, .. } => {
            let v = int_value(int, int.bits as u32, c)?;
            put_bits(out, int.offset as u32, int.bits as u32, v);
        }
        Encoder::Bits {
            bit_offset,
            bits,
            int,
        } => {
            let v = int_value(int, *bits, c)?;
            put_bits(out, *bit_offset, *bits, v);
        }
        Encoder::Enum {
            size,
            signed,
            names,
        } => {
            let v = if c.peek()? == b'"' {
                let s = c.string()?;
                names.iter().find(|(n, _)| n == s)?.1
            } else {
                let int = Int {
                    size: *size as u32,
                    encoding: if *signed { 1 } else { 0 },
                    offset: 0,
                    bits: (*size * 8) as u8,
                };
                int_value(&int, (*size * 8) as u32, c)?
            };
            put_bits(out, 0, (*size * 8) as u32, v);
        }
        Encoder::Array {
            elem,
            stride,
            n,
            chars,
        } => {
            if c.peek()? == b'"' {
                if !chars {
                    return None;
                }
                let s = c.string()?.as_bytes();
                if s.len() > *n {
                    return None;
                }
                out.get_mut(..s.len())?.copy_from_slice(s);
                return Some(());
            }
            c.eat(b'[')?;
            for k in 0..*n {
                if k > 0 {
                    c.eat(b',')?;
                }
                encode(elem, c, out.get_mut(k * stride..(k + 1) * stride)?)?;
            }
            c.eat(b']')?;
        }
        Encoder::Struct { size, fields } => {
            let out = out.get_mut(..*size)?;
            c.eat(b'{')?;
            let mut seen = 0u64;
            if fields.is_empty() || fields.len() > 64 {
                return None;
            }
            loop {
                let name = c.string()?;
                let k = fields.iter().position(|(n, _, _)| n == name)?;
                if seen & (1 << k) != 0 {
                    return None;
                }
                seen |= 1 << k;
                c.eat(b':')?;
                let (_, offset, f) = &fields[k];
                match f {
                    Encoder::Bits { .. } => encode(f, c, out)?,
                    f => encode(f, c, out.get_mut(*offset..)?)?,
                }
                match c.peek()? {
                    b',' => c.i += 1,
                    b'}' => {
                        c.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
            if seen.count_ones() as usize != fields.len() {
                return None;
            }
        }
    }
    Some(())
}

/// An integer (or boolean) for `int` of `bits` bits, in range, as bits.
fn int_value(int: &Int, bits: u32, c: &mut Cursor<'_>) -> Option<u128> {
    if int.is_bool() {
        return match c.peek()? {
            b't' if c.s[c.i..].starts_with(b"true") => {
                c.i += 4;
                Some(1)
            }
            b'f' if c.s[c.i..].starts_with(b"false") => {
                c.i += 5;
                Some(0)
            }
            _ => {
                let (neg, v) = c.integer()?;
                (!neg && v <= 1).then_some(v as u128)
            }
        };
    }
    let (neg, v) = c.integer()?;
    if bits == 0 || bits > 64 {
        return None;
    }
    if int.is_signed() {
        let (min, max) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
        let s = if neg { -(v as i128) } else { v as i128 };
        if s < min || s > max {
            return None;
        }
        Some((s as u128) & ((1u128 << bits) - 1))
    } else {
        if neg || (bits < 64 && v >> bits != 0) {
            return None;
        }
        Some(v as u128)
    }
}

fn put_bits(out: &mut [u8], bit_offset: u32, bits: u32, v: u128) {
    if bit_offset % 8 == 0 && bits % 8 == 0 {
        let start = (bit_offset / 8) as usize;
        let n = (bits / 8) as usize;
        if let Some(dst) = out.get_mut(start..start + n) {
            dst.copy_from_slice(&v.to_le_bytes()[..n]);
        }
        return;
    }
    for k in 0..bits {
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

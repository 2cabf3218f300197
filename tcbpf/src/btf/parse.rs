//! Parsing a BTF blob (`.BTF` section, `/sys/kernel/btf/*`): header, type
//! section, string section. Every read is bounds-checked; every type id and
//! name offset is checked once here, so the rest of the code may trust them.
//! The checks run in one pass that builds no types (`Sections`), shared by
//! `Btf::parse`, which then decodes every type, and `TargetBtf`, which
//! decodes types only when asked.

use std::sync::Arc;

use super::error::{Error, Result};
use super::strings::Strings;
use super::type_set::Btf;
use super::types::*;

/// `BTF_MAGIC` as read little-endian.
pub const MAGIC: u16 = 0xeb9f;
/// The only BTF version.
pub const VERSION: u8 = 1;
/// Size of `struct btf_header`.
pub const HEADER_LEN: usize = 24;
/// Most members/params/values a type can have (`vlen` is 16 bits).
const MAX_VLEN: u32 = 0xffff;

/// A little-endian cursor over a byte slice that never reads past its end.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
    /// Offset of `data` in the enclosing blob, for messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(Error::Truncated {
                what,
                offset: self.base + self.pos,
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The fields of `struct btf_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Header flags.
    pub flags: u8,
    /// Header length (24, or more from a newer producer).
    pub hdr_len: u32,
    /// Type section offset after the header.
    pub type_off: u32,
    /// Type section length.
    pub type_len: u32,
    /// String section offset after the header.
    pub str_off: u32,
    /// String section length.
    pub str_len: u32,
}

impl Header {
    /// Reads and checks the header of a blob of `data.len()` bytes.
    pub fn parse(data: &[u8]) -> Result<Header> {
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "header",
                offset: 0,
            });
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic == MAGIC.swap_bytes() {
            return Err(Error::BadHeader("big-endian BTF is not supported".into()));
        }
        if magic != MAGIC {
            return Err(Error::BadHeader(format!(
                "magic {magic:#06x}, expected {MAGIC:#06x}"
            )));
        }
        if data[2] != VERSION {
            return Err(Error::BadHeader(format!(
                "version {}, expected {VERSION}",
                data[2]
            )));
        }
        let mut r = Reader::new(&data[4..], 4);
        let h = Header {
            flags: data[3],
            hdr_len: r.u32("header")?,
            type_off: r.u32("header")?,
            type_len: r.u32("header")?,
            str_off: r.u32("header")?,
            str_len: r.u32("header")?,
        };
        if (h.hdr_len as usize) < HEADER_LEN || h.hdr_len as usize > data.len() {
            return Err(Error::BadHeader(format!(
                "header length {} in a {}-byte blob",
                h.hdr_len,
                data.len()
            )));
        }
        if data[HEADER_LEN..h.hdr_len as usize].iter().any(|&b| b != 0) {
            return Err(Error::BadHeader("unknown non-zero header fields".into()));
        }
        let body = data.len() - h.hdr_len as usize;
        for (name, off, len) in [
            ("type", h.type_off, h.type_len),
            ("string", h.str_off, h.str_len),
        ] {
            if off as u64 + len as u64 > body as u64 {
                return Err(Error::BadHeader(format!(
                    "{name} section {off}+{len} runs past the {body}-byte body"
                )));
            }
        }
        if h.type_off % 4 != 0 {
            return Err(Error::BadHeader(format!(
                "type section offset {} not 4-byte aligned",
                h.type_off
            )));
        }
        let (t0, t1) = (h.type_off as u64, h.type_off as u64 + h.type_len as u64);
        let (s0, s1) = (h.str_off as u64, h.str_off as u64 + h.str_len as u64);
        if t0 < s1 && s0 < t1 {
            return Err(Error::BadHeader("type and string sections overlap".into()));
        }
        Ok(h)
    }
}

impl Btf {
    /// Parses a standalone BTF blob.
    pub fn parse(data: &[u8]) -> Result<Btf> {
        parse_blob(data, None)
    }

    /// Parses a split BTF blob (module BTF) on top of `base` (vmlinux).
    pub fn parse_split(data: &[u8], base: Arc<Btf>) -> Result<Btf> {
        parse_blob(data, Some(base))
    }
}

fn parse_blob(data: &[u8], base: Option<Arc<Btf>>) -> Result<Btf> {
    let first_id = base.as_ref().map_or(1, |b| b.end_id());
    let first_str_off = base.as_ref().map_or(0, |b| b.end_str_off());
    let sections = Sections::parse(data, base.is_some(), first_id, first_str_off)?;
    let strings = Strings::from_bytes(sections.strings(data).to_vec())?;
    let type_bytes = sections.types(data);
    let mut types = Vec::with_capacity(sections.offsets.len());
    for (i, &off) in sections.offsets.iter().enumerate() {
        let start = off as usize;
        let mut r = Reader::new(&type_bytes[start..], sections.type_start + start);
        types.push(parse_type(&mut r, first_id + i as u32)?);
    }
    Ok(Btf::from_parts(types, strings, base, sections.flags))
}

/// Where the parts of a checked blob are: the header's flags, the type and
/// string sections, and the byte offset of every type in the type section.
/// Building it checks the whole blob (header, every type record, every type
/// id and name offset), so decoding a type at one of `offsets` cannot fail.
#[derive(Debug, Clone)]
pub(crate) struct Sections {
    pub(crate) flags: u8,
    /// Offset of the type section in the blob.
    pub(crate) type_start: usize,
    pub(crate) type_len: usize,
    /// Offset of the string section in the blob.
    pub(crate) str_start: usize,
    pub(crate) str_len: usize,
    /// Byte offset of each type record, relative to the type section.
    pub(crate) offsets: Vec<u32>,
}

impl Sections {
    /// Checks `data` as a standalone (`split` false) or split BTF whose own
    /// ids start at `first_id` and own string offsets at `first_str_off`.
    pub(crate) fn parse(
        data: &[u8],
        split: bool,
        first_id: TypeId,
        first_str_off: u32,
    ) -> Result<Sections> {
        let h = Header::parse(data)?;
        let body_start = h.hdr_len as usize;
        let str_start = body_start + h.str_off as usize;
        let str_bytes = &data[str_start..str_start + h.str_len as usize];
        if !split && str_bytes.first().is_some_and(|&b| b != 0) {
            return Err(Error::BadHeader(
                "string section does not start with NUL".into(),
            ));
        }
        if !split && str_bytes.is_empty() {
            return Err(Error::BadHeader("empty string section".into()));
        }
        if str_bytes.last().is_some_and(|&b| b != 0) {
            return Err(Error::BadHeader(
                "string section does not end with NUL".into(),
            ));
        }
        let type_start = body_start + h.type_off as usize;
        let type_bytes = &data[type_start..type_start + h.type_len as usize];
        let str_end = first_str_off.saturating_add(h.str_len);
        let offsets = index_types(type_bytes, type_start, first_id, str_end)?;
        Ok(Sections {
            flags: h.flags,
            type_start,
            type_len: h.type_len as usize,
            str_start,
            str_len: h.str_len as usize,
            offsets,
        })
    }

    /// The type section of `data` (the blob this was built from).
    pub(crate) fn types<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        &data[self.type_start..self.type_start + self.type_len]
    }

    /// The string section of `data` (the blob this was built from).
    pub(crate) fn strings<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        &data[self.str_start..self.str_start + self.str_len]
    }
}

/// Walks the type section once, without building types: checks every
/// record as `parse_type` does and every type id and name offset as
/// `check_type_refs` does, and returns where each record starts. Records
/// the fast path is unsure about, and blobs with a bad reference, go
/// through `parse_type`/`check_type_refs` themselves, so the errors are
/// theirs, first one in type order.
fn index_types(
    type_bytes: &[u8],
    type_start: usize,
    first_id: TypeId,
    str_end: u32,
) -> Result<Vec<u32>> {
    let mut offsets = Vec::with_capacity(type_bytes.len() / 16);
    let mut refs = RefSummary {
        str_end,
        max_id: 0,
        bad_name: false,
    };
    let mut pos = 0usize;
    while pos < type_bytes.len() {
        let id = first_id.saturating_add(offsets.len() as u32);
        let len = match record_len(&type_bytes[pos..], &mut refs) {
            Some(n) => n,
            None => {
                let mut r = Reader::new(&type_bytes[pos..], type_start + pos);
                let t = parse_type(&mut r, id)?;
                refs.note(&t);
                r.pos
            }
        };
        offsets.push(pos as u32);
        pos += len;
    }
    let end = first_id.saturating_add(offsets.len() as u32);
    if refs.bad_name || refs.max_id >= end {
        for (i, &off) in offsets.iter().enumerate() {
            let id = first_id + i as u32;
            let start = off as usize;
            let mut r = Reader::new(&type_bytes[start..], type_start + start);
            check_type_refs(id, &parse_type(&mut r, id)?, end, str_end)?;
        }
    }
    Ok(offsets)
}

/// What `index_types` has seen of the references: the largest type id and
/// whether some name offset is outside the strings.
struct RefSummary {
    str_end: u32,
    max_id: TypeId,
    bad_name: bool,
}

impl RefSummary {
    fn name(&mut self, off: u32) {
        self.bad_name |= off != 0 && off >= self.str_end;
    }

    fn id(&mut self, id: TypeId) {
        self.max_id = self.max_id.max(id);
    }

    /// Notes every reference of a decoded type.
    fn note(&mut self, t: &Type) {
        self.name(t.name_off);
        match &t.kind {
            Kind::Struct(c) | Kind::Union(c) => {
                c.members.iter().for_each(|m| self.name(m.name_off))
            }
            Kind::Enum(e) | Kind::Enum64(e) => e.values.iter().for_each(|v| self.name(v.name_off)),
            Kind::FuncProto(p) => p.params.iter().for_each(|p| self.name(p.name_off)),
            _ => {}
        }
        for r in t.kind.type_refs() {
            self.id(r);
        }
    }
}

/// The length of the type record at the start of `b` when it is whole and
/// well-formed (noting its references); `None` when `parse_type` must look.
fn record_len(b: &[u8], refs: &mut RefSummary) -> Option<usize> {
    let word = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let head = b.get(..12)?;
    let (name_off, info, size_or_type) = (word(head, 0), word(head, 4), word(head, 8));
    let vlen = (info & MAX_VLEN) as usize;
    let kind = (info >> 24) & 0x1f;
    // The bytes after the common header, refusing what `parse_type` refuses.
    let extra = match kind {
        1 | 3 | 14 | 16 | 17 if vlen != 0 => return None,
        12 if vlen > 2 => return None,
        2 | 7..=12 | 16 | 18 => 0,
        1 | 14 | 17 => 4,
        3 => 12,
        4 | 5 | 15 | 19 => 12 * vlen,
        6 | 13 => 8 * vlen,
        _ => return None,
    };
    let len = 12 + extra;
    let body = b.get(12..len)?;
    refs.name(name_off);
    match kind {
        2 | 8..=12 | 17 | 18 => refs.id(size_or_type),
        14 => {
            if word(body, 0) > 2 {
                return None;
            }
            refs.id(size_or_type);
        }
        3 => {
            refs.id(word(body, 0));
            refs.id(word(body, 4));
        }
        4 | 5 => {
            for m in body.chunks_exact(12) {
                refs.name(word(m, 0));
                refs.id(word(m, 4));
            }
        }
        6 => {
            for v in body.chunks_exact(8) {
                refs.name(word(v, 0));
            }
        }
        19 => {
            for v in body.chunks_exact(12) {
                refs.name(word(v, 0));
            }
        }
        13 => {
            refs.id(size_or_type);
            for p in body.chunks_exact(8) {
                refs.name(word(p, 0));
                refs.id(word(p, 4));
            }
        }
        15 => {
            for v in body.chunks_exact(12) {
                refs.id(word(v, 0));
            }
        }
        _ => {}
    }
    Some(len)
}

pub(crate) fn parse_type(r: &mut Reader, id: u32) -> Result<Type> {
    let name_off = r.u32("type")?;
    let info = r.u32("type")?;
    let size_or_type = r.u32("type")?;
    let vlen = info & MAX_VLEN;
    let kind_num = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 == 1;
    let no_vlen = |what: &str| -> Result<()> {
        if vlen != 0 {
            return Err(Error::invalid(format!(
                "BTF type [{id}] {what} has vlen {vlen}"
            )));
        }
        Ok(())
    };
    let kind = match kind_num {
        1 => {
            no_vlen("INT")?;
            let v = r.u32("INT data")?;
            Kind::Int(Int {
                size: size_or_type,
                encoding: ((v >> 24) & 0x0f) as u8,
                offset: ((v >> 16) & 0xff) as u8,
                bits: (v & 0xff) as u8,
            })
        }
        2 => Kind::Ptr(size_or_type),
        3 => {
            no_vlen("ARRAY")?;
            Kind::Array(Array {
                elem: r.u32("ARRAY data")?,
                index: r.u32("ARRAY data")?,
                nelems: r.u32("ARRAY data")?,
            })
        }
        4 | 5 => {
            let mut members = Vec::with_capacity(vlen as usize);
            for _ in 0..vlen {
                let name_off = r.u32("member")?;
                let ty = r.u32("member")?;
                let off = r.u32("member")?;
                let (bit_offset, bitfield_size) = if kind_flag {
                    (off & 0x00ff_ffff, (off >> 24) as u8)
                } else {
                    (off, 0)
                };
                members.push(Member {
                    name_off,
                    ty,
                    bit_offset,
                    bitfield_size,
                });
            }
            let c = Composite {
                size: size_or_type,
                kind_flag,
                members,
            };
            if kind_num == 4 {
                Kind::Struct(c)
            } else {
                Kind::Union(c)
            }
        }
        6 => {
            let mut values = Vec::with_capacity(vlen as usize);
            for _ in 0..vlen {
                let name_off = r.u32("enumerator")?;
                let raw = r.u32("enumerator")?;
                values.push(EnumValue {
                    name_off,
                    value: raw as i32 as i64,
                });
            }
            Kind::Enum(Enum {
                size: size_or_type,
                signed: kind_flag,
                values,
            })
        }
        7 => Kind::Fwd(if kind_flag {
            FwdKind::Union
        } else {
            FwdKind::Struct
        }),
        8 => Kind::Typedef(size_or_type),
        9 => Kind::Volatile(size_or_type),
        10 => Kind::Const(size_or_type),
        11 => Kind::Restrict(size_or_type),
        12 => Kind::Func(Func {
            proto: size_or_type,
            linkage: match vlen {
                0 => FuncLinkage::Static,
                1 => FuncLinkage::Global,
                2 => FuncLinkage::Extern,
                n => {
                    return Err(Error::invalid(format!(
                        "BTF type [{id}] FUNC has unknown linkage {n}"
                    )))
                }
            },
        }),
        13 => {
            let mut params = Vec::with_capacity(vlen as usize);
            for _ in 0..vlen {
                params.push(Param {
                    name_off: r.u32("parameter")?,
                    ty: r.u32("parameter")?,
                });
            }
            Kind::FuncProto(FuncProto {
                ret: size_or_type,
                params,
            })
        }
        14 => {
            no_vlen("VAR")?;
            let linkage = match r.u32("VAR data")? {
                0 => VarLinkage::Static,
                1 => VarLinkage::GlobalAllocated,
                2 => VarLinkage::GlobalExtern,
                n => {
                    return Err(Error::invalid(format!(
                        "BTF type [{id}] VAR has unknown linkage {n}"
                    )))
                }
            };
            Kind::Var(Var {
                ty: size_or_type,
                linkage,
            })
        }
        15 => {
            let mut vars = Vec::with_capacity(vlen as usize);
            for _ in 0..vlen {
                vars.push(VarSecinfo {
                    ty: r.u32("datasec variable")?,
                    offset: r.u32("datasec variable")?,
                    size: r.u32("datasec variable")?,
                });
            }
            Kind::Datasec(Datasec {
                size: size_or_type,
                vars,
            })
        }
        16 => {
            no_vlen("FLOAT")?;
            Kind::Float(size_or_type)
        }
        17 => {
            no_vlen("DECL_TAG")?;
            Kind::DeclTag(DeclTag {
                target: size_or_type,
                component_idx: r.u32("DECL_TAG data")? as i32,
                attribute: kind_flag,
            })
        }
        18 => Kind::TypeTag(TypeTag {
            target: size_or_type,
            attribute: kind_flag,
        }),
        19 => {
            let mut values = Vec::with_capacity(vlen as usize);
            for _ in 0..vlen {
                let name_off = r.u32("enumerator")?;
                let lo = r.u32("enumerator")?;
                let hi = r.u32("enumerator")?;
                values.push(EnumValue {
                    name_off,
                    value: ((hi as u64) << 32 | lo as u64) as i64,
                });
            }
            Kind::Enum64(Enum {
                size: size_or_type,
                signed: kind_flag,
                values,
            })
        }
        kind => return Err(Error::UnknownKind { id, kind }),
    };
    Ok(Type { name_off, kind })
}

/// Checks that every type id and name offset of type `id` resolves, given
/// the end of the ids and of the string offsets (base included). Every
/// string section ends with a NUL, so an offset inside the strings always
/// names a string.
fn check_type_refs(id: TypeId, t: &Type, end: TypeId, str_end: u32) -> Result<()> {
    let name_ok = |off: u32| -> Result<()> {
        if off < str_end || off == 0 {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "BTF type [{id}] has bad name offset {off}"
            )))
        }
    };
    let id_ok = |r: TypeId| -> Result<()> {
        if r < end {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "BTF type [{id}] {} refers to type id {r}, but ids end at {end}",
                t.kind.tag().name()
            )))
        }
    };
    name_ok(t.name_off)?;
    match &t.kind {
        Kind::Struct(c) | Kind::Union(c) => {
            for m in &c.members {
                name_ok(m.name_off)?;
                id_ok(m.ty)?;
            }
        }
        Kind::Enum(e) | Kind::Enum64(e) => {
            for v in &e.values {
                name_ok(v.name_off)?;
            }
        }
        Kind::FuncProto(p) => {
            id_ok(p.ret)?;
            for p in &p.params {
                name_ok(p.name_off)?;
                id_ok(p.ty)?;
            }
        }
        Kind::Array(a) => {
            id_ok(a.elem)?;
            id_ok(a.index)?;
        }
        Kind::Datasec(d) => {
            for v in &d.vars {
                id_ok(v.ty)?;
            }
        }
        other => {
            if let Some(r) = other.referenced() {
                id_ok(r)?;
            }
        }
    }
    Ok(())
}

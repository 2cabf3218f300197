//! Parsing a BTF blob (`.BTF` section, `/sys/kernel/btf/*`): header, type
//! section, string section. Every read is bounds-checked; every type id and
//! name offset is checked once here, so the rest of the code may trust them.

use std::sync::Arc;

use super::error::{Error, Result};
use super::spec::Btf;
use super::strings::Strings;
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
    pos: usize,
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
    let h = Header::parse(data)?;
    let body_start = h.hdr_len as usize;
    let s0 = body_start + h.str_off as usize;
    let str_bytes = &data[s0..s0 + h.str_len as usize];
    if base.is_none() && str_bytes.first().is_some_and(|&b| b != 0) {
        return Err(Error::BadHeader(
            "string section does not start with NUL".into(),
        ));
    }
    if base.is_none() && str_bytes.is_empty() {
        return Err(Error::BadHeader("empty string section".into()));
    }
    let strings = Strings::from_bytes(str_bytes.to_vec())?;
    let t0 = body_start + h.type_off as usize;
    let type_bytes = &data[t0..t0 + h.type_len as usize];
    let first_id = base.as_ref().map_or(1, |b| b.end_id());
    let mut r = Reader::new(type_bytes, t0);
    let mut types = Vec::with_capacity(type_bytes.len() / 24);
    while !r.at_end() {
        let id = first_id + types.len() as u32;
        types.push(parse_type(&mut r, id)?);
    }
    let btf = Btf::from_parts(types, strings, base, h.flags);
    check_refs(&btf)?;
    Ok(btf)
}

fn parse_type(r: &mut Reader, id: u32) -> Result<Type> {
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

/// Checks that every type id and name offset of `btf`'s own types resolves.
/// Every string section ends with a NUL, so an offset inside the strings
/// always names a string.
fn check_refs(btf: &Btf) -> Result<()> {
    let end = btf.end_id();
    let str_end = btf.first_str_off() + btf.strings.len();
    for (id, t) in btf.own_types() {
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
    }
    Ok(())
}

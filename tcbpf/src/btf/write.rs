//! Writing a `Btf` back to a blob the kernel accepts (BTF_LOAD). A split BTF
//! writes only its own types and strings, as the kernel expects of modules.

use super::parse::{HEADER_LEN, MAGIC, VERSION};
use super::type_set::Btf;
use super::types::*;

impl Btf {
    /// The blob: header, type section, string section (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut types = Vec::new();
        for t in &self.types {
            write_type(&mut types, t);
        }
        let strings = self.strings.as_bytes();
        let mut out = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(VERSION);
        out.push(self.flags);
        for v in [
            HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }
}

fn put(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn info(kind: BtfKind, kind_flag: bool, vlen: usize) -> u32 {
    (kind_flag as u32) << 31 | (kind as u32) << 24 | (vlen as u32 & 0xffff)
}

fn write_type(out: &mut Vec<u8>, t: &Type) {
    put(out, t.name_off);
    let tag = t.kind.tag();
    match &t.kind {
        Kind::Void => {
            put(out, 0);
            put(out, 0);
        }
        Kind::Int(i) => {
            put(out, info(tag, false, 0));
            put(out, i.size);
            put(
                out,
                (i.encoding as u32 & 0x0f) << 24 | (i.offset as u32) << 16 | i.bits as u32,
            );
        }
        Kind::Ptr(x)
        | Kind::Typedef(x)
        | Kind::Volatile(x)
        | Kind::Const(x)
        | Kind::Restrict(x) => {
            put(out, info(tag, false, 0));
            put(out, *x);
        }
        Kind::TypeTag(t) => {
            put(out, info(tag, t.attribute, 0));
            put(out, t.target);
        }
        Kind::Array(a) => {
            put(out, info(tag, false, 0));
            put(out, 0);
            put(out, a.elem);
            put(out, a.index);
            put(out, a.nelems);
        }
        Kind::Struct(c) | Kind::Union(c) => {
            put(out, info(tag, c.kind_flag, c.members.len()));
            put(out, c.size);
            for m in &c.members {
                put(out, m.name_off);
                put(out, m.ty);
                if c.kind_flag {
                    put(
                        out,
                        (m.bitfield_size as u32) << 24 | (m.bit_offset & 0x00ff_ffff),
                    );
                } else {
                    put(out, m.bit_offset);
                }
            }
        }
        Kind::Enum(e) => {
            put(out, info(tag, e.signed, e.values.len()));
            put(out, e.size);
            for v in &e.values {
                put(out, v.name_off);
                put(out, v.value as u32);
            }
        }
        Kind::Enum64(e) => {
            put(out, info(tag, e.signed, e.values.len()));
            put(out, e.size);
            for v in &e.values {
                put(out, v.name_off);
                put(out, v.value as u64 as u32);
                put(out, (v.value as u64 >> 32) as u32);
            }
        }
        Kind::Fwd(k) => {
            put(out, info(tag, *k == FwdKind::Union, 0));
            put(out, 0);
        }
        Kind::Func(f) => {
            put(out, info(tag, false, f.linkage as usize));
            put(out, f.proto);
        }
        Kind::FuncProto(p) => {
            put(out, info(tag, false, p.params.len()));
            put(out, p.ret);
            for p in &p.params {
                put(out, p.name_off);
                put(out, p.ty);
            }
        }
        Kind::Var(v) => {
            put(out, info(tag, false, 0));
            put(out, v.ty);
            put(out, v.linkage as u32);
        }
        Kind::Datasec(d) => {
            put(out, info(tag, false, d.vars.len()));
            put(out, d.size);
            for v in &d.vars {
                put(out, v.ty);
                put(out, v.offset);
                put(out, v.size);
            }
        }
        Kind::Float(size) => {
            put(out, info(tag, false, 0));
            put(out, *size);
        }
        Kind::DeclTag(d) => {
            put(out, info(tag, d.attribute, 0));
            put(out, d.target);
            put(out, d.component_idx as u32);
        }
    }
}

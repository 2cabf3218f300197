//! `BtfBuilder`: a small way to write BTF by hand, for tests and for tools
//! that synthesise types. Names are given as strings; ids come back.

use std::sync::Arc;

use super::type_set::Btf;
use super::types::*;

/// Builds a `Btf` type by type.
#[derive(Debug, Clone, Default)]
pub struct BtfBuilder {
    btf: Btf,
}

impl BtfBuilder {
    /// An empty standalone BTF.
    pub fn new() -> Self {
        BtfBuilder { btf: Btf::new() }
    }

    /// An empty split BTF on top of `base`.
    pub fn split(base: Arc<Btf>) -> Self {
        BtfBuilder {
            btf: Btf::new_split(base),
        }
    }

    /// The BTF built so far.
    pub fn build(self) -> Btf {
        self.btf
    }

    /// Adds a type named `name` ("" for anonymous).
    pub fn add(&mut self, name: &str, kind: Kind) -> TypeId {
        let name_off = self.btf.add_string(name);
        self.btf.add_type(Type { name_off, kind })
    }

    /// An integer of `size` bytes.
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> TypeId {
        let encoding = if signed { int_encoding::SIGNED } else { 0 };
        let bits = (size * 8).min(255) as u8;
        self.add(
            name,
            Kind::Int(Int {
                size,
                encoding,
                offset: 0,
                bits,
            }),
        )
    }

    /// A pointer to `to`.
    pub fn ptr(&mut self, to: TypeId) -> TypeId {
        self.add("", Kind::Ptr(to))
    }

    /// A typedef.
    pub fn typedef(&mut self, name: &str, to: TypeId) -> TypeId {
        self.add(name, Kind::Typedef(to))
    }

    /// `const` of a type.
    pub fn constant(&mut self, to: TypeId) -> TypeId {
        self.add("", Kind::Const(to))
    }

    /// An array of `nelems` elements, indexed by `index`.
    pub fn array(&mut self, elem: TypeId, index: TypeId, nelems: u32) -> TypeId {
        self.add(
            "",
            Kind::Array(Array {
                elem,
                index,
                nelems,
            }),
        )
    }

    fn members(&mut self, members: &[(&str, TypeId, u32, u8)]) -> (bool, Vec<Member>) {
        let kind_flag = members.iter().any(|m| m.3 != 0);
        let ms = members
            .iter()
            .map(|&(n, ty, bit_offset, bitfield_size)| Member {
                name_off: self.btf.add_string(n),
                ty,
                bit_offset,
                bitfield_size,
            })
            .collect();
        (kind_flag, ms)
    }

    /// A struct of `size` bytes; members are (name, type, bit offset, bitfield bits).
    pub fn structure(
        &mut self,
        name: &str,
        size: u32,
        members: &[(&str, TypeId, u32, u8)],
    ) -> TypeId {
        let (kind_flag, members) = self.members(members);
        self.add(
            name,
            Kind::Struct(Composite {
                size,
                kind_flag,
                members,
            }),
        )
    }

    /// A union of `size` bytes; members as for `structure`.
    pub fn union(&mut self, name: &str, size: u32, members: &[(&str, TypeId, u32, u8)]) -> TypeId {
        let (kind_flag, members) = self.members(members);
        self.add(
            name,
            Kind::Union(Composite {
                size,
                kind_flag,
                members,
            }),
        )
    }

    /// A 32-bit enum (signed) with these enumerators.
    pub fn enumeration(&mut self, name: &str, values: &[(&str, i64)]) -> TypeId {
        let values = values
            .iter()
            .map(|&(n, value)| EnumValue {
                name_off: self.btf.add_string(n),
                value,
            })
            .collect();
        self.add(
            name,
            Kind::Enum(Enum {
                size: 4,
                signed: true,
                values,
            }),
        )
    }

    /// A 64-bit enum (unsigned) with these enumerators.
    pub fn enum64(&mut self, name: &str, values: &[(&str, i64)]) -> TypeId {
        let values = values
            .iter()
            .map(|&(n, value)| EnumValue {
                name_off: self.btf.add_string(n),
                value,
            })
            .collect();
        self.add(
            name,
            Kind::Enum64(Enum {
                size: 8,
                signed: false,
                values,
            }),
        )
    }

    /// A forward declaration.
    pub fn fwd(&mut self, name: &str, kind: FwdKind) -> TypeId {
        self.add(name, Kind::Fwd(kind))
    }

    /// A function prototype: return type and (name, type) parameters.
    pub fn func_proto(&mut self, ret: TypeId, params: &[(&str, TypeId)]) -> TypeId {
        let params = params
            .iter()
            .map(|&(n, ty)| Param {
                name_off: self.btf.add_string(n),
                ty,
            })
            .collect();
        self.add("", Kind::FuncProto(FuncProto { ret, params }))
    }

    /// A function.
    pub fn func(&mut self, name: &str, proto: TypeId, linkage: FuncLinkage) -> TypeId {
        self.add(name, Kind::Func(Func { proto, linkage }))
    }

    /// A variable.
    pub fn var(&mut self, name: &str, ty: TypeId, linkage: VarLinkage) -> TypeId {
        self.add(name, Kind::Var(Var { ty, linkage }))
    }

    /// A data section of `size` bytes holding (var, offset, size) entries.
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(TypeId, u32, u32)]) -> TypeId {
        let vars = vars
            .iter()
            .map(|&(ty, offset, size)| VarSecinfo { ty, offset, size })
            .collect();
        self.add(name, Kind::Datasec(Datasec { size, vars }))
    }
}

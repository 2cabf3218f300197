//! The BTF type model: one typed value per kind of `include/uapi/linux/btf.h`.
//! Plain data (names are string offsets); lookups live in `btf.rs`.

/// A BTF type id; 0 is `void`.
pub type TypeId = u32;

/// The kind numbers of `BTF_KIND_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum BtfKind {
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl BtfKind {
    /// The kernel's name of the kind, as bpftool prints it.
    pub fn name(self) -> &'static str {
        match self {
            BtfKind::Void => "VOID",
            BtfKind::Int => "INT",
            BtfKind::Ptr => "PTR",
            BtfKind::Array => "ARRAY",
            BtfKind::Struct => "STRUCT",
            BtfKind::Union => "UNION",
            BtfKind::Enum => "ENUM",
            BtfKind::Fwd => "FWD",
            BtfKind::Typedef => "TYPEDEF",
            BtfKind::Volatile => "VOLATILE",
            BtfKind::Const => "CONST",
            BtfKind::Restrict => "RESTRICT",
            BtfKind::Func => "FUNC",
            BtfKind::FuncProto => "FUNC_PROTO",
            BtfKind::Var => "VAR",
            BtfKind::Datasec => "DATASEC",
            BtfKind::Float => "FLOAT",
            BtfKind::DeclTag => "DECL_TAG",
            BtfKind::TypeTag => "TYPE_TAG",
            BtfKind::Enum64 => "ENUM64",
        }
    }
}

/// One type: its name (offset into the string table, 0 for anonymous) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// Offset of the name in the string table; 0 when anonymous.
    pub name_off: u32,
    /// The kind and its kind-specific data.
    pub kind: Kind,
}

/// The kind-specific data of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Type id 0; never stored in a blob.
    Void,
    /// An integer.
    Int(Int),
    /// A pointer to the type.
    Ptr(TypeId),
    /// A fixed-size array.
    Array(Array),
    /// A struct.
    Struct(Composite),
    /// A union.
    Union(Composite),
    /// A 32-bit enum.
    Enum(Enum),
    /// A forward declaration.
    Fwd(FwdKind),
    /// A typedef of the type.
    Typedef(TypeId),
    /// `volatile` of the type.
    Volatile(TypeId),
    /// `const` of the type.
    Const(TypeId),
    /// `restrict` of the type.
    Restrict(TypeId),
    /// A function (its prototype and linkage).
    Func(Func),
    /// A function prototype.
    FuncProto(FuncProto),
    /// A global or static variable.
    Var(Var),
    /// A data section and the variables it holds.
    Datasec(Datasec),
    /// A floating-point type of `size` bytes.
    Float(u32),
    /// A declaration tag on a type, member or parameter.
    DeclTag(DeclTag),
    /// A type tag on a type.
    TypeTag(TypeTag),
    /// A 64-bit enum.
    Enum64(Enum),
}

impl Kind {
    /// The kind number.
    pub fn tag(&self) -> BtfKind {
        match self {
            Kind::Void => BtfKind::Void,
            Kind::Int(_) => BtfKind::Int,
            Kind::Ptr(_) => BtfKind::Ptr,
            Kind::Array(_) => BtfKind::Array,
            Kind::Struct(_) => BtfKind::Struct,
            Kind::Union(_) => BtfKind::Union,
            Kind::Enum(_) => BtfKind::Enum,
            Kind::Fwd(_) => BtfKind::Fwd,
            Kind::Typedef(_) => BtfKind::Typedef,
            Kind::Volatile(_) => BtfKind::Volatile,
            Kind::Const(_) => BtfKind::Const,
            Kind::Restrict(_) => BtfKind::Restrict,
            Kind::Func(_) => BtfKind::Func,
            Kind::FuncProto(_) => BtfKind::FuncProto,
            Kind::Var(_) => BtfKind::Var,
            Kind::Datasec(_) => BtfKind::Datasec,
            Kind::Float(_) => BtfKind::Float,
            Kind::DeclTag(_) => BtfKind::DeclTag,
            Kind::TypeTag(_) => BtfKind::TypeTag,
            Kind::Enum64(_) => BtfKind::Enum64,
        }
    }

    /// The type this one refers to directly, for modifiers, typedefs,
    /// pointers, tags, variables and functions.
    pub fn referenced(&self) -> Option<TypeId> {
        match self {
            Kind::Ptr(t)
            | Kind::Typedef(t)
            | Kind::Volatile(t)
            | Kind::Const(t)
            | Kind::Restrict(t) => Some(*t),
            Kind::TypeTag(t) => Some(t.target),
            Kind::Var(v) => Some(v.ty),
            Kind::Func(f) => Some(f.proto),
            Kind::DeclTag(d) => Some(d.target),
            _ => None,
        }
    }

    /// Every type id this type mentions (for range checks and remapping).
    pub fn type_refs(&self) -> Vec<TypeId> {
        match self {
            Kind::Array(a) => vec![a.elem, a.index],
            Kind::Struct(c) | Kind::Union(c) => c.members.iter().map(|m| m.ty).collect(),
            Kind::FuncProto(p) => std::iter::once(p.ret)
                .chain(p.params.iter().map(|p| p.ty))
                .collect(),
            Kind::Datasec(d) => d.vars.iter().map(|v| v.ty).collect(),
            other => other.referenced().into_iter().collect(),
        }
    }

    /// Mutable access to every type id this type mentions.
    pub fn type_refs_mut(&mut self) -> Vec<&mut TypeId> {
        match self {
            Kind::Ptr(t)
            | Kind::Typedef(t)
            | Kind::Volatile(t)
            | Kind::Const(t)
            | Kind::Restrict(t) => vec![t],
            Kind::TypeTag(t) => vec![&mut t.target],
            Kind::Var(v) => vec![&mut v.ty],
            Kind::Func(f) => vec![&mut f.proto],
            Kind::DeclTag(d) => vec![&mut d.target],
            Kind::Array(a) => vec![&mut a.elem, &mut a.index],
            Kind::Struct(c) | Kind::Union(c) => c.members.iter_mut().map(|m| &mut m.ty).collect(),
            Kind::FuncProto(p) => std::iter::once(&mut p.ret)
                .chain(p.params.iter_mut().map(|p| &mut p.ty))
                .collect(),
            Kind::Datasec(d) => d.vars.iter_mut().map(|v| &mut v.ty).collect(),
            Kind::Void
            | Kind::Int(_)
            | Kind::Enum(_)
            | Kind::Enum64(_)
            | Kind::Fwd(_)
            | Kind::Float(_) => Vec::new(),
        }
    }

    /// True for `const`, `volatile`, `restrict` and type tags.
    pub fn is_modifier(&self) -> bool {
        matches!(
            self,
            Kind::Const(_) | Kind::Volatile(_) | Kind::Restrict(_) | Kind::TypeTag(_)
        )
    }

    /// The members when this is a struct or union.
    pub fn composite(&self) -> Option<&Composite> {
        match self {
            Kind::Struct(c) | Kind::Union(c) => Some(c),
            _ => None,
        }
    }

    /// The enumerators when this is an enum (32 or 64 bit).
    pub fn enumeration(&self) -> Option<&Enum> {
        match self {
            Kind::Enum(e) | Kind::Enum64(e) => Some(e),
            _ => None,
        }
    }
}

/// `BTF_INT_*` encoding bits.
pub mod int_encoding {
    /// The integer is signed.
    pub const SIGNED: u8 = 1;
    /// The integer is a `char`.
    pub const CHAR: u8 = 2;
    /// The integer is a `bool`.
    pub const BOOL: u8 = 4;
}

/// An integer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    /// Storage size in bytes.
    pub size: u32,
    /// `int_encoding` bits.
    pub encoding: u8,
    /// Bit offset of the value inside its storage.
    pub offset: u8,
    /// Number of value bits.
    pub bits: u8,
}

impl Int {
    /// True when signed.
    pub fn is_signed(&self) -> bool {
        self.encoding & int_encoding::SIGNED != 0
    }
    /// True for `char` types.
    pub fn is_char(&self) -> bool {
        self.encoding & int_encoding::CHAR != 0
    }
    /// True for `bool`.
    pub fn is_bool(&self) -> bool {
        self.encoding & int_encoding::BOOL != 0
    }
}

/// An array: element type, index type, element count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array {
    /// Element type.
    pub elem: TypeId,
    /// Index type (an integer).
    pub index: TypeId,
    /// Number of elements.
    pub nelems: u32,
}

/// A struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composite {
    /// Size in bytes.
    pub size: u32,
    /// The members encode a bitfield size beside their bit offset.
    pub kind_flag: bool,
    /// The members in declaration order.
    pub members: Vec<Member>,
}

/// A member of a struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Name offset (0 for an anonymous member).
    pub name_off: u32,
    /// Member type.
    pub ty: TypeId,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits, 0 when not a bitfield (only with `kind_flag`).
    pub bitfield_size: u8,
}

/// An enum (32 or 64 bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// Size in bytes.
    pub size: u32,
    /// Values are signed (the kind flag).
    pub signed: bool,
    /// The enumerators.
    pub values: Vec<EnumValue>,
}

/// One enumerator. A 32-bit enum's value is sign-extended from its raw
/// 32 bits, as libbpf reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumValue {
    /// Name offset.
    pub name_off: u32,
    /// The value.
    pub value: i64,
}

/// What a forward declaration declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdKind {
    /// `struct x;`
    Struct,
    /// `union x;`
    Union,
}

/// `BTF_FUNC_*` linkage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncLinkage {
    /// `static` function.
    Static = 0,
    /// Global function.
    Global = 1,
    /// Declared `extern`.
    Extern = 2,
}

/// A function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Func {
    /// The FUNC_PROTO.
    pub proto: TypeId,
    /// Linkage.
    pub linkage: FuncLinkage,
}

/// A function prototype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncProto {
    /// Return type (0 for void).
    pub ret: TypeId,
    /// Parameters; a last one with type 0 marks `...`.
    pub params: Vec<Param>,
}

/// A parameter of a function prototype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Name offset (0 when unnamed).
    pub name_off: u32,
    /// Parameter type.
    pub ty: TypeId,
}

/// `BTF_VAR_*` linkage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarLinkage {
    /// `static` variable.
    Static = 0,
    /// Global variable defined here.
    GlobalAllocated = 1,
    /// `extern` variable.
    GlobalExtern = 2,
}

/// A variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The variable's type.
    pub ty: TypeId,
    /// Linkage.
    pub linkage: VarLinkage,
}

/// A data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasec {
    /// Section size in bytes (clang leaves 0; see `fixup`).
    pub size: u32,
    /// The variables, with their offsets and sizes in the section.
    pub vars: Vec<VarSecinfo>,
}

/// A variable's place in a data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSecinfo {
    /// The VAR (or FUNC for externs).
    pub ty: TypeId,
    /// Offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// A declaration tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclTag {
    /// The tagged type.
    pub target: TypeId,
    /// Member or parameter index, -1 for the type itself.
    pub component_idx: i32,
    /// The tag is an attribute (the kind flag).
    pub attribute: bool,
}

/// A type tag (`btf_type_tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeTag {
    /// The tagged type.
    pub target: TypeId,
    /// The tag is an attribute (the kind flag).
    pub attribute: bool,
}

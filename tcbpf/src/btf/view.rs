//! `TypeView`: the read-only questions CO-RE asks of a BTF (a type by id,
//! a string by offset, candidates by essential name) and the walks built on
//! them (skip modifiers, sizes, descriptions). Implemented by the parsed
//! [`Btf`] and by the lazily decoded [`TargetBtf`](super::TargetBtf), so
//! relocations resolve against either. Pure: no syscalls, no files.

use std::borrow::Cow;
use std::fmt;

use super::error::{Error, Result};
use super::lookup::MAX_RESOLVE_DEPTH;
use super::type_set::Btf;
use super::types::{BtfKind, Kind, Type, TypeId, TypeTag};

/// Read access to a set of types and strings.
pub trait TypeView: fmt::Debug {
    /// The type of `id` (0 is void), borrowed or decoded on demand.
    fn ty(&self, id: TypeId) -> Result<Cow<'_, Type>>;

    /// The string at offset `off`.
    fn str_at(&self, off: u32) -> Result<&str>;

    /// Ids of the types this BTF defines itself (not its base's) whose
    /// essential name (the name without a `___flavor` suffix) is
    /// `essential`; functions, variables, data sections and declaration
    /// tags excluded: they are never CO-RE roots.
    fn own_ids_by_essential_name(&self, essential: &str) -> Vec<TypeId>;

    /// Follows typedefs and modifiers (const, volatile, restrict, type
    /// tags) to the underlying type.
    fn skip_mods_and_typedefs(&self, id: TypeId) -> Result<TypeId> {
        let mut id = id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.ty(id)?;
            match t.kind {
                Kind::Typedef(next) => id = next,
                ref k if k.is_modifier() => id = k.referenced().unwrap_or(0),
                _ => return Ok(id),
            }
        }
        Err(Error::invalid(format!(
            "BTF type chain from [{id}] is too deep or cyclic"
        )))
    }

    /// The size in bytes of a value of type `id`, as the kernel resolves it.
    fn resolve_size(&self, id: TypeId) -> Result<u32> {
        let mut id = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.ty(id)?;
            let size = match &t.kind {
                Kind::Int(i) => i.size,
                Kind::Ptr(_) => 8,
                Kind::Struct(c) | Kind::Union(c) => c.size,
                Kind::Enum(e) | Kind::Enum64(e) => e.size,
                Kind::Datasec(d) => d.size,
                Kind::Float(s) => *s,
                Kind::Array(a) => {
                    mult = mult.saturating_mul(a.nelems as u64);
                    id = a.elem;
                    continue;
                }
                Kind::Typedef(n) | Kind::Volatile(n) | Kind::Const(n) | Kind::Restrict(n) => {
                    id = *n;
                    continue;
                }
                Kind::TypeTag(TypeTag { target: n, .. }) => {
                    id = *n;
                    continue;
                }
                Kind::Var(v) => {
                    id = v.ty;
                    continue;
                }
                Kind::Void
                | Kind::Fwd(_)
                | Kind::Func(_)
                | Kind::FuncProto(_)
                | Kind::DeclTag(_) => {
                    return Err(Error::invalid(format!(
                        "BTF type {} has no size",
                        self.describe(id)
                    )))
                }
            };
            let total = mult.saturating_mul(size as u64);
            return u32::try_from(total).map_err(|_| {
                Error::invalid(format!("BTF type [{id}] size {total} exceeds 4 GiB"))
            });
        }
        Err(Error::invalid(format!(
            "BTF type chain from [{id}] is too deep or cyclic"
        )))
    }

    /// A short human description: `struct iphdr`, `int`, `[12] PTR`.
    fn describe(&self, id: TypeId) -> String {
        let Ok(t) = self.ty(id) else {
            return format!("[{id}] (invalid)");
        };
        let name = self.str_at(t.name_off).unwrap_or("");
        let kw = match t.kind.tag() {
            BtfKind::Struct => "struct",
            BtfKind::Union => "union",
            BtfKind::Enum | BtfKind::Enum64 => "enum",
            BtfKind::Fwd => "fwd",
            BtfKind::Typedef => "typedef",
            BtfKind::Void => return "void".into(),
            BtfKind::Int | BtfKind::Float => "",
            other => other.name(),
        };
        match (kw.is_empty(), name.is_empty()) {
            (_, true) => format!("[{id}] {}", t.kind.tag().name()),
            (true, false) => name.to_string(),
            (false, false) => format!("{kw} {name}"),
        }
    }
}

impl TypeView for Btf {
    fn ty(&self, id: TypeId) -> Result<Cow<'_, Type>> {
        Btf::ty(self, id).map(Cow::Borrowed)
    }

    fn str_at(&self, off: u32) -> Result<&str> {
        Btf::str_at(self, off)
    }

    fn own_ids_by_essential_name(&self, essential: &str) -> Vec<TypeId> {
        Btf::own_ids_by_essential_name(self, essential)
    }
}

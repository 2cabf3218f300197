//! Queries on a `Btf`: find by name and kind, skip modifiers and typedefs,
//! sizes, members, data sections, and readable type descriptions for errors.

use super::error::{Error, Result};
use super::spec::Btf;
use super::types::*;

/// Longest chain of modifiers/typedefs/arrays followed before giving up
/// (the kernel's `MAX_RESOLVE_DEPTH`).
pub const MAX_RESOLVE_DEPTH: usize = 32;

impl Btf {
    /// The first type named `name` of kind `kind` (base first when split).
    pub fn find_by_name_kind(&self, name: &str, kind: BtfKind) -> Option<TypeId> {
        if let Some(base) = &self.base {
            if let Some(id) = base.find_by_name_kind(name, kind) {
                return Some(id);
            }
        }
        self.own_ids_named(name)
            .into_iter()
            .find(|&id| self.ty(id).is_ok_and(|t| t.kind.tag() == kind))
    }

    /// Follows typedefs and modifiers (const, volatile, restrict, type tags)
    /// to the underlying type.
    pub fn skip_mods_and_typedefs(&self, id: TypeId) -> Result<TypeId> {
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

    /// Follows modifiers only (not typedefs).
    pub fn skip_mods(&self, id: TypeId) -> Result<TypeId> {
        let mut id = id;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.ty(id)?;
            if !t.kind.is_modifier() {
                return Ok(id);
            }
            id = t.kind.referenced().unwrap_or(0);
        }
        Err(Error::invalid(format!(
            "BTF type chain from [{id}] is too deep or cyclic"
        )))
    }

    /// The size in bytes of a value of type `id`, as the kernel resolves it.
    pub fn resolve_size(&self, id: TypeId) -> Result<u32> {
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

    /// The member of struct/union `id` named `name` (direct members only).
    pub fn member(&self, id: TypeId, name: &str) -> Result<Option<&Member>> {
        let sid = self.skip_mods_and_typedefs(id)?;
        let c = self.ty(sid)?.kind.composite().ok_or_else(|| {
            Error::invalid(format!(
                "BTF type {} is not a struct or union",
                self.describe(sid)
            ))
        })?;
        for m in &c.members {
            if self.str_at(m.name_off)? == name {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The DATASEC named `name` (`.maps`, `.data`…) with its id.
    pub fn datasec(&self, name: &str) -> Option<(TypeId, &Datasec)> {
        let id = self.find_by_name_kind(name, BtfKind::Datasec)?;
        match &self.ty(id).ok()?.kind {
            Kind::Datasec(d) => Some((id, d)),
            _ => None,
        }
    }

    /// A short human description: `struct iphdr`, `int`, `[12] PTR`.
    pub fn describe(&self, id: TypeId) -> String {
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

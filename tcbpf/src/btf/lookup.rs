//! Queries on a `Btf`: find by name and kind, skip modifiers and typedefs,
//! sizes, members, data sections, and readable type descriptions for errors.

use super::error::{Error, Result};
use super::type_set::Btf;
use super::types::*;
use super::view::TypeView;

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
        TypeView::skip_mods_and_typedefs(self, id)
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
        TypeView::resolve_size(self, id)
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
        TypeView::describe(self, id)
    }
}

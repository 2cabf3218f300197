//! Queries on a `Btf`: find by name and kind, skip modifiers and typedefs,
//! sizes, members (direct, or as C names them: [`FlatMember`]), data
//! sections, and readable type descriptions for errors.

use super::error::{Error, Result};
use super::type_set::Btf;
use super::types::*;
use super::view::TypeView;

/// A member of a struct or union as C names it ([`Btf::flat_members`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatMember<'a> {
    /// Its name (never empty).
    pub name: &'a str,
    /// Its type.
    pub ty: TypeId,
    /// Bits from the start of the outer struct or union.
    pub bit_offset: u32,
    /// Bits of a bitfield, 0 for a whole member.
    pub bitfield_size: u8,
    /// True when it shares its bytes with other members: the outer type
    /// is a union, or it lies in an anonymous union.
    pub shared: bool,
}

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

    /// The members of struct or union `id` as C names them: the members
    /// of an anonymous struct or union member are its own (`v.a` for
    /// `struct v { union { int a; }; }`), recursively, at bit offsets from
    /// the start of `id`; an unnamed bitfield is padding, no member. A name
    /// that then appears twice (which C refuses) is an error naming it.
    pub fn flat_members(&self, id: TypeId) -> Result<Vec<FlatMember<'_>>> {
        let sid = self.skip_mods_and_typedefs(id)?;
        let t = self.ty(sid)?;
        let c = t.kind.composite().ok_or_else(|| {
            Error::invalid(format!(
                "BTF type {} is not a struct or union",
                self.describe(sid)
            ))
        })?;
        let mut out = Vec::with_capacity(c.members.len());
        let union = matches!(t.kind, Kind::Union(_));
        self.inline_members(c, union, 0, 0, &mut out)?;
        if let Some(name) = repeated(&out) {
            return Err(Error::invalid(format!(
                "member '{name}' of {} appears twice (the members of its anonymous structs and unions are its own, as in C)",
                self.describe(sid)
            )));
        }
        Ok(out)
    }

    /// Appends the members of `c` (at `base` bits into the outer type) to
    /// `out`, those of its anonymous struct and union members in their place.
    fn inline_members<'a>(
        &'a self,
        c: &'a Composite,
        shared: bool,
        base: u32,
        depth: usize,
        out: &mut Vec<FlatMember<'a>>,
    ) -> Result<()> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(Error::invalid("anonymous members nested too deep"));
        }
        for m in &c.members {
            let name = self.str_at(m.name_off)?;
            let bit_offset = base
                .checked_add(m.bit_offset)
                .ok_or_else(|| Error::invalid("member offset beyond 2^32 bits"))?;
            if !name.is_empty() {
                out.push(FlatMember {
                    name,
                    ty: m.ty,
                    bit_offset,
                    bitfield_size: m.bitfield_size,
                    shared,
                });
                continue;
            }
            if m.bitfield_size > 0 {
                continue;
            }
            let inner = self.ty(self.skip_mods_and_typedefs(m.ty)?)?;
            if let Some(ic) = inner.kind.composite() {
                let union = matches!(inner.kind, Kind::Union(_));
                self.inline_members(ic, shared || union, bit_offset, depth + 1, out)?;
            }
        }
        Ok(())
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

/// A name that two of `members` share. Few members (a decode checks each
/// struct it meets) are compared pairwise, without allocating.
fn repeated<'a>(members: &[FlatMember<'a>]) -> Option<&'a str> {
    if members.len() <= 16 {
        return members
            .iter()
            .enumerate()
            .find(|(i, m)| members[..*i].iter().any(|p| p.name == m.name))
            .map(|(_, m)| m.name);
    }
    let mut names: Vec<&str> = members.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

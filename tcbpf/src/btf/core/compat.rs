//! Type compatibility as CO-RE defines it: `fields_are_compat` for a
//! member reached by a field relocation, `types_are_compat` for type
//! relocations, and the stricter `types_match` for TYPE_MATCHES.
//! Returns `Ok(false)` for "not a match", `Err` for broken or cyclic BTF.

use super::super::error::{Error, Result};
use super::super::type_set::essential_name;
use super::super::types::{BtfKind, FwdKind, Kind, TypeId};
use super::super::view::TypeView;

/// How deep nested prototypes and pointers are followed.
const MAX_LEVEL: i32 = 32;

/// Same kind, or both enums (32/64 bit).
pub(crate) fn kinds_compat(a: BtfKind, b: BtfKind) -> bool {
    a == b || (is_enum(a) && is_enum(b))
}

fn is_enum(k: BtfKind) -> bool {
    matches!(k, BtfKind::Enum | BtfKind::Enum64)
}

/// Names equal after stripping `___flavor`; an empty target matches only an empty local.
pub(crate) fn names_match(local: &str, targ: &str) -> bool {
    if targ.is_empty() {
        return local.is_empty();
    }
    essential_name(local) == essential_name(targ)
}

fn too_deep() -> Error {
    Error::invalid("CO-RE type comparison too deep or cyclic")
}

/// Is the target member type usable where the local member type was?
pub fn fields_are_compat(
    local: &dyn TypeView,
    local_id: TypeId,
    targ: &dyn TypeView,
    targ_id: TypeId,
) -> Result<bool> {
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_LEVEL {
        lid = local.skip_mods_and_typedefs(lid)?;
        tid = targ.skip_mods_and_typedefs(tid)?;
        let (lt, tt) = (local.ty(lid)?, targ.ty(tid)?);
        if lt.kind.composite().is_some() && tt.kind.composite().is_some() {
            return Ok(true);
        }
        if !kinds_compat(lt.kind.tag(), tt.kind.tag()) {
            return Ok(false);
        }
        return Ok(match (&lt.kind, &tt.kind) {
            (Kind::Ptr(_), _) | (Kind::Float(_), _) => true,
            (Kind::Fwd(_) | Kind::Enum(_) | Kind::Enum64(_), _) => {
                let ln = essential_name(local.str_at(lt.name_off)?);
                let tn = essential_name(targ.str_at(tt.name_off)?);
                ln.is_empty() || tn.is_empty() || ln == tn
            }
            (Kind::Int(l), Kind::Int(t)) => l.offset == 0 && t.offset == 0,
            (Kind::Array(l), Kind::Array(t)) => {
                lid = l.elem;
                tid = t.elem;
                continue;
            }
            _ => false,
        });
    }
    Err(too_deep())
}

/// Are two types compatible for a type-based relocation (existence, size, id)?
pub fn types_are_compat(
    local: &dyn TypeView,
    local_id: TypeId,
    targ: &dyn TypeView,
    targ_id: TypeId,
) -> Result<bool> {
    types_compat_level(local, local_id, targ, targ_id, MAX_LEVEL)
}

fn types_compat_level(
    local: &dyn TypeView,
    local_id: TypeId,
    targ: &dyn TypeView,
    targ_id: TypeId,
    level: i32,
) -> Result<bool> {
    if level <= 0 {
        return Err(too_deep());
    }
    if !kinds_compat(local.ty(local_id)?.kind.tag(), targ.ty(targ_id)?.kind.tag()) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (local_id, targ_id);
    for _ in 0..MAX_LEVEL {
        lid = local.skip_mods_and_typedefs(lid)?;
        tid = targ.skip_mods_and_typedefs(tid)?;
        let (lt, tt) = (local.ty(lid)?, targ.ty(tid)?);
        if !kinds_compat(lt.kind.tag(), tt.kind.tag()) {
            return Ok(false);
        }
        match (&lt.kind, &tt.kind) {
            (Kind::Void, _)
            | (Kind::Struct(_), _)
            | (Kind::Union(_), _)
            | (Kind::Enum(_), _)
            | (Kind::Enum64(_), _)
            | (Kind::Fwd(_), _) => return Ok(true),
            (Kind::Int(l), Kind::Int(t)) => return Ok(l.offset == 0 && t.offset == 0),
            (Kind::Ptr(l), Kind::Ptr(t)) => {
                lid = *l;
                tid = *t;
            }
            (Kind::Array(l), Kind::Array(t)) => {
                lid = l.elem;
                tid = t.elem;
            }
            (Kind::FuncProto(l), Kind::FuncProto(t)) => {
                if l.params.len() != t.params.len() {
                    return Ok(false);
                }
                for (lp, tp) in l.params.iter().zip(&t.params) {
                    let lp = local.skip_mods_and_typedefs(lp.ty)?;
                    let tp = targ.skip_mods_and_typedefs(tp.ty)?;
                    if !types_compat_level(local, lp, targ, tp, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = l.ret;
                tid = t.ret;
            }
            _ => return Ok(false),
        }
    }
    Err(too_deep())
}

/// TYPE_MATCHES: names, kinds, sizes, signedness, members and enumerators
/// of the local type must all be found in the target.
pub fn types_match(
    local: &dyn TypeView,
    local_id: TypeId,
    targ: &dyn TypeView,
    targ_id: TypeId,
) -> Result<bool> {
    match_level(local, local_id, targ, targ_id, false, MAX_LEVEL)
}

fn match_level(
    local: &dyn TypeView,
    local_id: TypeId,
    targ: &dyn TypeView,
    targ_id: TypeId,
    behind_ptr: bool,
    level: i32,
) -> Result<bool> {
    if level <= 0 {
        return Err(too_deep());
    }
    let (mut lid, mut tid, mut behind_ptr) = (local_id, targ_id, behind_ptr);
    for _ in 0..MAX_LEVEL {
        lid = local.skip_mods_and_typedefs(lid)?;
        tid = targ.skip_mods_and_typedefs(tid)?;
        let (lt, tt) = (local.ty(lid)?, targ.ty(tid)?);
        if !names_match(local.str_at(lt.name_off)?, targ.str_at(tt.name_off)?) {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind.tag(), tt.kind.tag());
        return Ok(match &lt.kind {
            Kind::Void => lk == tk,
            Kind::Fwd(lf) => {
                let local_union = *lf == FwdKind::Union;
                match &tt.kind {
                    Kind::Fwd(tf) => local_union == (*tf == FwdKind::Union),
                    Kind::Struct(_) if behind_ptr => !local_union,
                    Kind::Union(_) if behind_ptr => local_union,
                    _ => false,
                }
            }
            Kind::Enum(le) | Kind::Enum64(le) => {
                let Some(te) = tt.kind.enumeration() else {
                    return Ok(false);
                };
                if le.size != te.size {
                    return Ok(false);
                }
                for lv in &le.values {
                    let ln = local.str_at(lv.name_off)?;
                    let mut found = false;
                    for tv in &te.values {
                        if names_match(ln, targ.str_at(tv.name_off)?) {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                true
            }
            Kind::Struct(lc) | Kind::Union(lc) => {
                if behind_ptr {
                    match &tt.kind {
                        _ if lk == tk => true,
                        Kind::Fwd(tf) => (lk == BtfKind::Union) == (*tf == FwdKind::Union),
                        _ => false,
                    }
                } else {
                    if lk != tk {
                        return Ok(false);
                    }
                    let tc = tt.kind.composite().ok_or_else(too_deep)?;
                    if lc.members.len() > tc.members.len() {
                        return Ok(false);
                    }
                    for lm in &lc.members {
                        let ln = local.str_at(lm.name_off)?;
                        let mut found = false;
                        for tm in &tc.members {
                            if names_match(ln, targ.str_at(tm.name_off)?) {
                                if !match_level(local, lm.ty, targ, tm.ty, behind_ptr, level - 1)? {
                                    return Ok(false);
                                }
                                found = true;
                                break;
                            }
                        }
                        if !found {
                            return Ok(false);
                        }
                    }
                    true
                }
            }
            Kind::Int(li) => match &tt.kind {
                Kind::Int(ti) => li.size == ti.size && li.is_signed() == ti.is_signed(),
                _ => false,
            },
            Kind::Ptr(l) => {
                let Kind::Ptr(t) = tt.kind else {
                    return Ok(false);
                };
                behind_ptr = true;
                lid = *l;
                tid = t;
                continue;
            }
            Kind::Array(l) => {
                let Kind::Array(t) = tt.kind else {
                    return Ok(false);
                };
                if l.nelems != t.nelems {
                    return Ok(false);
                }
                lid = l.elem;
                tid = t.elem;
                continue;
            }
            Kind::FuncProto(l) => {
                let Kind::FuncProto(t) = &tt.kind else {
                    return Ok(false);
                };
                if l.params.len() != t.params.len() {
                    return Ok(false);
                }
                for (lp, tp) in l.params.iter().zip(&t.params) {
                    if !match_level(local, lp.ty, targ, tp.ty, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = l.ret;
                tid = t.ret;
                continue;
            }
            _ => false,
        });
    }
    Err(too_deep())
}

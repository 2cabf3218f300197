//! Resolving one CO-RE relocation: find candidate target types by
//! essential name, match the local access spec in each, compute the local
//! and target values, and refuse ambiguity (candidates that disagree).

use super::super::error::{Error, Result};
use super::super::type_set::essential_name;
use super::super::types::{Kind, TypeId};
use super::super::view::TypeView;
use super::super::CoreReloKind;
use super::access::{is_flex_array, Accessor, Spec, MAX_SPEC_LEN};
use super::compat::{fields_are_compat, kinds_compat, types_are_compat, types_match};

/// A type in one of the target BTFs: index into the targets list and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Which target BTF (0 is vmlinux, then modules).
    pub btf: usize,
    /// The type id in that BTF.
    pub id: TypeId,
}

/// What a relocation computes to, local and target side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The value the compiler assumed (from the local BTF).
    pub orig_val: u64,
    /// The value for the target kernel.
    pub new_val: u64,
    /// Local field size for loads/stores (0 when not a plain field offset).
    pub orig_size: u32,
    /// Target field size.
    pub new_size: u32,
    /// No target: the instruction is replaced by an invalid call.
    pub poison: bool,
    /// The instruction must hold `orig_val` (false for bitfields).
    pub validate: bool,
    /// The load/store size would change in an unsafe way.
    pub fail_memsz_adjust: bool,
}

/// Candidate target types for local type `local_id`: same essential name
/// and compatible kind, searched in vmlinux first and in modules only when
/// vmlinux has none (as libbpf does).
pub fn find_candidates<T: TypeView + ?Sized>(
    local: &dyn TypeView,
    local_id: TypeId,
    targets: &[&T],
) -> Result<Vec<Candidate>> {
    let t = local.ty(local_id)?;
    let name = local.str_at(t.name_off)?;
    let essential = essential_name(name);
    if essential.is_empty() {
        return Err(Error::invalid(
            "CO-RE relocations on anonymous types are not supported",
        ));
    }
    let kind = t.kind.tag();
    let mut cands = Vec::new();
    for (i, targ) in targets.iter().enumerate() {
        if i > 0 && !cands.is_empty() {
            break;
        }
        for id in targ.own_ids_by_essential_name(essential) {
            if kinds_compat(targ.ty(id)?.kind.tag(), kind) {
                cands.push(Candidate { btf: i, id });
            }
        }
    }
    Ok(cands)
}

/// Matches the local spec against a candidate; `None` when it does not fit.
pub fn match_spec<'t>(
    local: &Spec,
    targ: &'t dyn TypeView,
    targ_id: TypeId,
) -> Result<Option<Spec<'t>>> {
    let mut spec = Spec {
        btf: targ,
        root_type_id: targ_id,
        kind: local.kind,
        accessors: Vec::new(),
        raw: Vec::new(),
        bit_offset: 0,
    };
    if local.kind.is_type() {
        let ok = if local.kind == CoreReloKind::TypeMatches {
            types_match(local.btf, local.root_type_id, targ, targ_id)?
        } else {
            types_are_compat(local.btf, local.root_type_id, targ, targ_id)?
        };
        spec.raw.push(0);
        return Ok(ok.then_some(spec));
    }
    if local.kind.is_enumval() {
        let Some(acc) = local.accessors.first() else {
            return Ok(None);
        };
        let want = essential_name(acc.name.unwrap_or(""));
        let tid = targ.skip_mods_and_typedefs(targ_id)?;
        let tt = targ.ty(tid)?;
        let Some(e) = tt.kind.enumeration() else {
            return Ok(None);
        };
        for (i, v) in e.values.iter().enumerate() {
            let n = targ.str_at(v.name_off)?;
            if !n.is_empty() && essential_name(n) == want {
                spec.accessors.push(Accessor {
                    type_id: tid,
                    idx: i as u32,
                    name: Some(n),
                });
                spec.raw.push(i as u32);
                return Ok(Some(spec));
            }
        }
        return Ok(None);
    }
    let mut targ_id = targ_id;
    for (i, acc) in local.accessors.iter().enumerate() {
        if acc.name.is_some() {
            match match_member(local.btf, acc, targ, targ_id, &mut spec, 0)? {
                Some(next) => targ_id = next,
                None => return Ok(None),
            }
        } else {
            if i > 0 {
                let tid = targ.skip_mods_and_typedefs(targ_id)?;
                let Kind::Array(a) = targ.ty(tid)?.kind else {
                    return Ok(None);
                };
                let flex = is_flex_array(targ, spec.accessors.last(), a.nelems);
                if !flex && acc.idx >= a.nelems {
                    return Ok(None);
                }
                targ_id = targ.skip_mods_and_typedefs(a.elem)?;
            }
            if spec.raw.len() >= MAX_SPEC_LEN {
                return Err(Error::invalid("CO-RE target access too deep"));
            }
            spec.accessors.push(Accessor {
                type_id: targ_id,
                idx: acc.idx,
                name: None,
            });
            spec.raw.push(acc.idx);
            let size = targ.resolve_size(targ_id)? as u64;
            spec.bit_offset += acc.idx as u64 * size * 8;
        }
    }
    Ok(Some(spec))
}

/// Finds the local named member `acc` in target composite `targ_id`,
/// descending into anonymous members; returns the member's type.
fn match_member<'t>(
    local: &dyn TypeView,
    acc: &Accessor,
    targ: &'t dyn TypeView,
    targ_id: TypeId,
    spec: &mut Spec<'t>,
    depth: usize,
) -> Result<Option<TypeId>> {
    if depth > MAX_SPEC_LEN {
        return Err(Error::invalid("CO-RE target nesting too deep"));
    }
    let lt = local.ty(acc.type_id)?;
    let Some(lc) = lt.kind.composite() else {
        return Ok(None);
    };
    let Some(lm) = lc.members.get(acc.idx as usize) else {
        return Ok(None);
    };
    let local_name = local.str_at(lm.name_off)?;
    let tid = targ.skip_mods_and_typedefs(targ_id)?;
    let tt = targ.ty(tid)?;
    let Some(tc) = tt.kind.composite() else {
        return Ok(None);
    };
    for (i, m) in tc.members.iter().enumerate() {
        if spec.raw.len() >= MAX_SPEC_LEN {
            return Err(Error::invalid("CO-RE target access too deep"));
        }
        spec.bit_offset += m.bit_offset as u64;
        spec.raw.push(i as u32);
        let name = targ.str_at(m.name_off)?;
        if name.is_empty() {
            if let Some(found) = match_member(local, acc, targ, m.ty, spec, depth + 1)? {
                return Ok(Some(found));
            }
        } else if name == local_name {
            if !fields_are_compat(local, lm.ty, targ, m.ty)? {
                return Ok(None);
            }
            spec.accessors.push(Accessor {
                type_id: tid,
                idx: i as u32,
                name: Some(name),
            });
            return Ok(Some(m.ty));
        }
        spec.bit_offset -= m.bit_offset as u64;
        spec.raw.pop();
    }
    Ok(None)
}

/// Field value of a relocation on one side; `None` asks for poisoning.
struct FieldValue {
    val: u64,
    size: u32,
    type_id: TypeId,
    validate: bool,
}

fn calc_field(kind: CoreReloKind, spec: Option<&Spec>) -> Result<Option<FieldValue>> {
    if kind == CoreReloKind::FieldExists {
        return Ok(Some(FieldValue {
            val: spec.is_some() as u64,
            size: 0,
            type_id: 0,
            validate: true,
        }));
    }
    let Some(spec) = spec else {
        return Ok(None);
    };
    let btf = spec.btf;
    let acc = spec
        .last()
        .ok_or_else(|| Error::invalid("empty CO-RE field spec"))?;
    if acc.name.is_none() {
        let size = btf.resolve_size(acc.type_id)?;
        let (val, fsize, type_id) = match kind {
            CoreReloKind::FieldByteOffset => (spec.bit_offset / 8, size, acc.type_id),
            CoreReloKind::FieldByteSize => (size as u64, 0, 0),
            other => {
                return Err(Error::invalid(format!(
                    "relocation {} cannot be applied to an array access",
                    other.name()
                )))
            }
        };
        return Ok(Some(FieldValue {
            val,
            size: fsize,
            type_id,
            validate: true,
        }));
    }
    let t = btf.ty(acc.type_id)?;
    let c = t
        .kind
        .composite()
        .ok_or_else(|| Error::invalid("CO-RE accessor is not a member"))?;
    let m = c
        .members
        .get(acc.idx as usize)
        .ok_or_else(|| Error::invalid("CO-RE accessor out of range"))?;
    let field_type_id = btf.skip_mods_and_typedefs(m.ty)?;
    let mt = btf.ty(field_type_id)?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = m.bitfield_size as u64;
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz) = if bitfield {
        let mut byte_sz = btf.resolve_size(field_type_id)? as u64;
        if byte_sz == 0 {
            return Err(Error::invalid("bitfield of a zero-size type"));
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err(Error::invalid("bitfield cannot be read with a 64-bit load"));
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz)
    } else {
        let sz = btf.resolve_size(field_type_id)? as u64;
        bit_sz = sz * 8;
        (bit_off / 8, sz)
    };
    let mut validate = !bitfield;
    let mut out = FieldValue {
        val: 0,
        size: 0,
        type_id: 0,
        validate,
    };
    out.val = match kind {
        CoreReloKind::FieldByteOffset => {
            if !bitfield {
                out.size = byte_sz as u32;
                out.type_id = field_type_id;
            }
            byte_off
        }
        CoreReloKind::FieldByteSize => byte_sz,
        CoreReloKind::FieldSigned => {
            validate = true;
            let signed = match &mt.kind {
                Kind::Enum(e) | Kind::Enum64(e) => e.signed,
                Kind::Int(i) => i.is_signed(),
                _ => false,
            };
            signed as u64
        }
        CoreReloKind::FieldLshiftU64 => 64u64.wrapping_sub(bit_off + bit_sz - byte_off * 8),
        CoreReloKind::FieldRshiftU64 => {
            validate = true;
            64u64.wrapping_sub(bit_sz)
        }
        other => {
            return Err(Error::invalid(format!(
                "{} is not a field relocation",
                other.name()
            )))
        }
    };
    out.validate = validate;
    Ok(Some(out))
}

fn calc_type(kind: CoreReloKind, spec: Option<&Spec>) -> Result<u64> {
    let Some(spec) = spec else {
        return Ok(0);
    };
    Ok(match kind {
        CoreReloKind::TypeIdTarget | CoreReloKind::TypeIdLocal => spec.root_type_id as u64,
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => 1,
        CoreReloKind::TypeSize => spec.btf.resolve_size(spec.root_type_id)? as u64,
        other => {
            return Err(Error::invalid(format!(
                "{} is not a type relocation",
                other.name()
            )))
        }
    })
}

fn calc_enumval(kind: CoreReloKind, spec: Option<&Spec>) -> Result<Option<u64>> {
    match kind {
        CoreReloKind::EnumvalExists => Ok(Some(spec.is_some() as u64)),
        CoreReloKind::EnumvalValue => {
            let Some(spec) = spec else {
                return Ok(None);
            };
            let acc = spec
                .accessors
                .first()
                .ok_or_else(|| Error::invalid("empty enum spec"))?;
            let t = spec.btf.ty(acc.type_id)?;
            let e = t
                .kind
                .enumeration()
                .ok_or_else(|| Error::invalid("enum accessor on a non-enum"))?;
            let v = e
                .values
                .get(acc.idx as usize)
                .ok_or_else(|| Error::invalid("enumerator out of range"))?;
            Ok(Some(v.value as u64))
        }
        other => Err(Error::invalid(format!(
            "{} is not an enum relocation",
            other.name()
        ))),
    }
}

/// Computes local and target values (target `None`: no candidate matched).
pub fn calc(local: &Spec, targ: Option<&Spec>) -> Result<Outcome> {
    let kind = local.kind;
    let mut out = Outcome {
        validate: true,
        ..Outcome::default()
    };
    if kind.is_field() {
        let l = calc_field(kind, Some(local))?
            .ok_or_else(|| Error::invalid("local field spec missing"))?;
        out.orig_val = l.val;
        out.orig_size = l.size;
        out.validate = l.validate;
        match calc_field(kind, targ)? {
            None => out.poison = true,
            Some(t) => {
                out.new_val = t.val;
                out.new_size = t.size;
                if let (true, Some(targ)) = (l.size != t.size, targ) {
                    let lt = local.btf.ty(l.type_id)?;
                    let nt = targ.btf.ty(t.type_id)?;
                    let safe = match (&lt.kind, &nt.kind) {
                        (Kind::Ptr(_), Kind::Ptr(_)) => true,
                        (Kind::Int(a), Kind::Int(b)) => !a.is_signed() && !b.is_signed(),
                        _ => false,
                    };
                    out.fail_memsz_adjust = !safe;
                }
            }
        }
    } else if kind.is_type() {
        out.orig_val = calc_type(kind, Some(local))?;
        out.new_val = calc_type(kind, targ)?;
    } else {
        out.orig_val = calc_enumval(kind, Some(local))?
            .ok_or_else(|| Error::invalid("local enum spec missing"))?;
        match calc_enumval(kind, targ)? {
            Some(v) => out.new_val = v,
            None => out.poison = true,
        }
    }
    Ok(out)
}

/// The match chosen for a relocation, with the target spec's description.
pub struct Resolved<'t> {
    /// The target spec (None: no candidate matched).
    pub target: Option<(Candidate, Spec<'t>)>,
    /// Values to patch.
    pub outcome: Outcome,
}

/// Resolves a relocation whose local spec is `local` against `targets`.
pub fn resolve<'t>(
    local: &Spec,
    local_id: TypeId,
    targets: &[&'t dyn TypeView],
) -> Result<Resolved<'t>> {
    if local.kind == CoreReloKind::TypeIdLocal {
        let v = local.root_type_id as u64;
        return Ok(Resolved {
            target: None,
            outcome: Outcome {
                orig_val: v,
                new_val: v,
                validate: false,
                ..Outcome::default()
            },
        });
    }
    let cands = find_candidates(local.btf, local_id, targets)?;
    let mut chosen: Option<(Candidate, Spec<'t>, Outcome)> = None;
    for cand in cands {
        let targ = targets[cand.btf];
        let Some(spec) = match_spec(local, targ, cand.id)? else {
            continue;
        };
        let outcome = calc(local, Some(&spec))?;
        match &chosen {
            None => chosen = Some((cand, spec, outcome)),
            Some((first, first_spec, first_out)) => {
                if spec.bit_offset != first_spec.bit_offset {
                    return Err(Error::invalid(format!(
                        "field offset ambiguity: candidates [{}] and [{}] put it at bit {} and {}",
                        first.id, cand.id, first_spec.bit_offset, spec.bit_offset
                    )));
                }
                if outcome.poison != first_out.poison || outcome.new_val != first_out.new_val {
                    return Err(Error::invalid(format!(
                        "relocation ambiguity: candidates [{}] and [{}] resolve to {} and {}",
                        first.id, cand.id, first_out.new_val, outcome.new_val
                    )));
                }
            }
        }
    }
    Ok(match chosen {
        Some((cand, spec, outcome)) => Resolved {
            target: Some((cand, spec)),
            outcome,
        },
        None => Resolved {
            target: None,
            outcome: calc(local, None)?,
        },
    })
}

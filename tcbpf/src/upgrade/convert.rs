//! Following a value across a layout change: [`compile`] compares an old
//! and a new BTF type and builds a [`Converter`] (a short list of byte
//! operations) that turns an old value into the new one, with the
//! [`Changes`] it found; or says why no value can follow ([`Refusal`]).
//! Struct members are matched by name through nested structs, integers
//! may widen (sign-extended when signed), enums are matched by enumerator
//! name, arrays may grow. Pure: no syscalls.

use crate::btf::{Btf, Kind, TypeId};

/// How a value of the old layout becomes one of the new layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converter {
    ops: Vec<Op>,
    old_size: usize,
    new_size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Bytes copied as they are.
    Copy { from: usize, to: usize, len: usize },
    /// An integer widened (zero- or sign-extended).
    Int {
        from: usize,
        from_size: usize,
        to: usize,
        to_size: usize,
        signed: bool,
    },
    /// A bitfield copied bit by bit (same width).
    Bits { from: u32, to: u32, bits: u32 },
    /// An enum translated by enumerator name.
    Enum {
        path: String,
        from: usize,
        from_size: usize,
        signed: bool,
        to: usize,
        to_size: usize,
        values: Vec<(i64, i64)>,
    },
}

/// What changed between the two layouts, as member paths (`a.b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Members only the new layout has (they start zero).
    pub added: Vec<String>,
    /// Members only the old layout has (their values are dropped).
    pub dropped: Vec<String>,
    /// Members that grew: `path: old → new`.
    pub widened: Vec<String>,
    /// Enums whose enumerators changed values or went away: `path`.
    pub renumbered: Vec<String>,
    /// Members that moved to another offset.
    pub moved: Vec<String>,
}

impl Changes {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.widened.is_empty()
            && self.renumbered.is_empty()
            && self.moved.is_empty()
    }
}

/// Why no value can follow the change: the member (path, empty for the
/// whole value) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The member path (`a.b`), empty for the value itself.
    pub path: String,
    /// What changed.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "member '{}': {}", self.path, self.reason)
        }
    }
}

/// A value the converter cannot carry (an enumerator the new enum lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoesNotFit {
    /// The member path.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "member '{}': {}", self.path, self.reason)
    }
}

/// Compares `old_ty` of `old` with `new_ty` of `new` and builds the
/// converter from old values to new ones.
pub fn compile(
    old: &Btf,
    old_ty: TypeId,
    new: &Btf,
    new_ty: TypeId,
) -> Result<(Converter, Changes), Refusal> {
    let bad = |reason: String| Refusal {
        path: String::new(),
        reason,
    };
    let old_size = old.resolve_size(old_ty).map_err(|e| bad(e.to_string()))? as usize;
    let new_size = new.resolve_size(new_ty).map_err(|e| bad(e.to_string()))? as usize;
    let mut c = Compiler {
        old,
        new,
        ops: Vec::new(),
        changes: Changes::default(),
    };
    c.walk(old_ty, new_ty, 0, 0, "")?;
    let ops = merge(c.ops);
    Ok((
        Converter {
            ops,
            old_size,
            new_size,
        },
        c.changes,
    ))
}

/// Integer leaves (byte offset, size) of a type when every leaf is a plain
/// integer (no enum, pointer, float, bitfield or union): the counters a
/// `sum` reconciliation adds. `None` when some leaf is not.
pub fn counters(btf: &Btf, ty: TypeId) -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    leaves(btf, ty, 0, &mut out, 0).then_some(out)
}

fn leaves(btf: &Btf, ty: TypeId, off: usize, out: &mut Vec<(usize, usize)>, depth: u32) -> bool {
    if depth as usize > crate::btf::MAX_RESOLVE_DEPTH {
        return false;
    }
    let Ok(id) = btf.skip_mods_and_typedefs(ty) else {
        return false;
    };
    let Ok(t) = btf.ty(id) else { return false };
    match &t.kind {
        Kind::Int(i) if i.offset == 0 && i.bits as u32 == i.size * 8 => {
            out.push((off, i.size as usize));
            true
        }
        Kind::Struct(c) => c.members.iter().all(|m| {
            m.bitfield_size == 0
                && m.bit_offset % 8 == 0
                && leaves(btf, m.ty, off + (m.bit_offset / 8) as usize, out, depth + 1)
        }),
        Kind::Array(a) => {
            let Ok(size) = btf.resolve_size(a.elem) else {
                return false;
            };
            (0..a.nelems as usize)
                .all(|i| leaves(btf, a.elem, off + i * size as usize, out, depth + 1))
        }
        _ => false,
    }
}

/// A member of a struct as C names it (see [`slots`]).
struct Slot {
    /// Empty for an anonymous union.
    name: String,
    ty: TypeId,
    /// From the start of the struct.
    bit_offset: u32,
    /// Bitfield width (0: not a bitfield).
    bits: u8,
}

/// The members of struct `c` as C names them, as `Btf::flat_members` and
/// the typed output name them: those of an anonymous struct member are
/// its own (`v.packets` for `struct v { struct { __u64 packets; }; }`),
/// recursively, at bit offsets from `c`'s start, so a build that wraps
/// members in an anonymous struct keeps their values. An anonymous union
/// stays one member, matched by its place among the anonymous unions (its
/// bytes are followed only when nothing in it changed); an unnamed
/// bitfield is padding. A name twice is refused as `(path, reason)`.
fn slots(btf: &Btf, c: &crate::btf::Composite, path: &str) -> Result<Vec<Slot>, (String, String)> {
    fn walk(
        btf: &Btf,
        c: &crate::btf::Composite,
        base: u32,
        depth: usize,
        path: &str,
        out: &mut Vec<Slot>,
    ) -> Result<(), (String, String)> {
        let fail = |r: &str| (path.to_string(), r.to_string());
        if depth > crate::btf::MAX_RESOLVE_DEPTH {
            return Err(fail("anonymous members nested too deep"));
        }
        for m in &c.members {
            let name = btf.str_at(m.name_off).map_err(|e| fail(&e.to_string()))?;
            let bit_offset = base
                .checked_add(m.bit_offset)
                .ok_or_else(|| fail("member offset beyond 2^32 bits"))?;
            let bits = if c.kind_flag { m.bitfield_size } else { 0 };
            if name.is_empty() {
                let id = btf
                    .skip_mods_and_typedefs(m.ty)
                    .map_err(|e| fail(&e.to_string()))?;
                match &btf.ty(id).map_err(|e| fail(&e.to_string()))?.kind {
                    Kind::Struct(inner) if bits == 0 => {
                        walk(btf, inner, bit_offset, depth + 1, path, out)?;
                        continue;
                    }
                    Kind::Union(_) if bits == 0 => {}
                    _ => continue, // an unnamed bitfield: padding
                }
            } else if out.iter().any(|s| s.name == name) {
                return Err((
                    join(path, name),
                    "the member appears twice (the members of an anonymous struct are its parent's, as in C)".into(),
                ));
            }
            out.push(Slot {
                name: name.to_string(),
                ty: m.ty,
                bit_offset,
                bits,
            });
        }
        Ok(())
    }
    let mut out = Vec::with_capacity(c.members.len());
    walk(btf, c, 0, 0, path, &mut out)?;
    Ok(out)
}

struct Compiler<'a> {
    old: &'a Btf,
    new: &'a Btf,
    ops: Vec<Op>,
    changes: Changes,
}

/// The name a member's type is declared with (`__u32`, not `unsigned int`).
fn type_name(btf: &Btf, id: TypeId) -> String {
    let mut id = id;
    for _ in 0..crate::btf::MAX_RESOLVE_DEPTH {
        match btf.ty(id) {
            Ok(t) if t.kind.is_modifier() => id = t.kind.referenced().unwrap_or(0),
            Ok(t) => {
                return match btf.str_at(t.name_off) {
                    Ok(n) if !n.is_empty() => n.to_string(),
                    _ => btf.describe(id),
                }
            }
            Err(_) => break,
        }
    }
    btf.describe(id)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl Compiler<'_> {
    fn refuse(&self, path: &str, reason: String) -> Refusal {
        Refusal {
            path: path.to_string(),
            reason,
        }
    }

    /// Byte offsets `from`/`to` of the member at `path`.
    fn walk(
        &mut self,
        old_ty: TypeId,
        new_ty: TypeId,
        from: usize,
        to: usize,
        path: &str,
    ) -> Result<(), Refusal> {
        let err = |e: crate::btf::Error| Refusal {
            path: path.to_string(),
            reason: e.to_string(),
        };
        let oid = self.old.skip_mods_and_typedefs(old_ty).map_err(err)?;
        let nid = self.new.skip_mods_and_typedefs(new_ty).map_err(err)?;
        let ot = self.old.ty(oid).map_err(err)?.clone();
        let nt = self.new.ty(nid).map_err(err)?.clone();
        if from != to && !path.is_empty() && !self.changes.moved.iter().any(|m| m == path) {
            self.changes.moved.push(path.to_string());
        }
        match (&ot.kind, &nt.kind) {
            (Kind::Int(a), Kind::Int(b)) => {
                if a.offset != 0 || b.offset != 0 {
                    return Err(self.refuse(path, "integer with a bit offset".into()));
                }
                if b.size < a.size {
                    return Err(self.refuse(
                        path,
                        format!("integer narrowed from {} to {} bytes", a.size, b.size),
                    ));
                }
                if a.is_signed() != b.is_signed() {
                    return Err(self.refuse(
                        path,
                        format!(
                            "signedness changed ({} to {})",
                            self.old.describe(oid),
                            self.new.describe(nid)
                        ),
                    ));
                }
                if a.size == b.size {
                    self.ops.push(Op::Copy {
                        from,
                        to,
                        len: a.size as usize,
                    });
                } else {
                    self.changes.widened.push(format!(
                        "{}: {} → {}",
                        if path.is_empty() { "value" } else { path },
                        type_name(self.old, old_ty),
                        type_name(self.new, new_ty)
                    ));
                    self.ops.push(Op::Int {
                        from,
                        from_size: a.size as usize,
                        to,
                        to_size: b.size as usize,
                        signed: a.is_signed(),
                    });
                }
                Ok(())
            }
            (Kind::Enum(a) | Kind::Enum64(a), Kind::Enum(b) | Kind::Enum64(b)) => {
                if b.size < a.size {
                    return Err(self.refuse(
                        path,
                        format!("enum narrowed from {} to {} bytes", a.size, b.size),
                    ));
                }
                let mut values = Vec::new();
                let mut renumbered = false;
                for v in &a.values {
                    let name = self.old.str_at(v.name_off).map_err(err)?;
                    let found = b
                        .values
                        .iter()
                        .find(|w| self.new.str_at(w.name_off).ok() == Some(name));
                    match found {
                        Some(w) => {
                            renumbered |= w.value != v.value;
                            values.push((v.value, w.value));
                        }
                        None => renumbered = true,
                    }
                }
                if renumbered {
                    self.changes
                        .renumbered
                        .push(if path.is_empty() { "value" } else { path }.to_string());
                }
                if !renumbered && a.size == b.size {
                    self.ops.push(Op::Copy {
                        from,
                        to,
                        len: a.size as usize,
                    });
                } else {
                    if a.size != b.size {
                        self.changes.widened.push(format!(
                            "{}: {} bytes → {} bytes",
                            if path.is_empty() { "value" } else { path },
                            a.size,
                            b.size
                        ));
                    }
                    self.ops.push(Op::Enum {
                        path: path.to_string(),
                        from,
                        from_size: a.size as usize,
                        signed: a.signed,
                        to,
                        to_size: b.size as usize,
                        values,
                    });
                }
                Ok(())
            }
            (Kind::Struct(a), Kind::Struct(b)) => {
                let old = slots(self.old, a, path).map_err(|(p, r)| self.refuse(&p, r))?;
                let new = slots(self.new, b, path).map_err(|(p, r)| self.refuse(&p, r))?;
                let old_unions: Vec<usize> =
                    (0..old.len()).filter(|&i| old[i].name.is_empty()).collect();
                let mut unions_seen = 0;
                let mut matched = vec![false; old.len()];
                for ns in &new {
                    let i = if ns.name.is_empty() {
                        unions_seen += 1;
                        old_unions.get(unions_seen - 1).copied()
                    } else {
                        old.iter().position(|os| os.name == ns.name)
                    };
                    let label = if ns.name.is_empty() {
                        format!("(anonymous union {unions_seen})")
                    } else {
                        ns.name.clone()
                    };
                    let mpath = join(path, &label);
                    let Some(i) = i else {
                        self.changes.added.push(mpath);
                        continue;
                    };
                    matched[i] = true;
                    let os = &old[i];
                    if os.bits != 0 || ns.bits != 0 {
                        if os.bits != ns.bits {
                            return Err(self.refuse(
                                &mpath,
                                format!("bitfield width changed ({} to {} bits)", os.bits, ns.bits),
                            ));
                        }
                        self.ops.push(Op::Bits {
                            from: from as u32 * 8 + os.bit_offset,
                            to: to as u32 * 8 + ns.bit_offset,
                            bits: u32::from(os.bits),
                        });
                        continue;
                    }
                    if os.bit_offset % 8 != 0 || ns.bit_offset % 8 != 0 {
                        return Err(self.refuse(&mpath, "member not on a byte boundary".into()));
                    }
                    self.walk(
                        os.ty,
                        ns.ty,
                        from + (os.bit_offset / 8) as usize,
                        to + (ns.bit_offset / 8) as usize,
                        &mpath,
                    )?;
                }
                for (os, _) in old.iter().zip(&matched).filter(|(_, m)| !**m) {
                    let label = if os.name.is_empty() {
                        "(anonymous union)".to_string()
                    } else {
                        os.name.clone()
                    };
                    self.changes.dropped.push(join(path, &label));
                }
                Ok(())
            }
            (Kind::Union(a), Kind::Union(b)) => {
                // A union's bytes mean what its members say; follow it only
                // when nothing in it changed.
                let mut inner = Compiler {
                    old: self.old,
                    new: self.new,
                    ops: Vec::new(),
                    changes: Changes::default(),
                };
                for (om, nm) in a.members.iter().zip(&b.members) {
                    inner.walk(
                        om.ty,
                        nm.ty,
                        (om.bit_offset / 8) as usize,
                        (nm.bit_offset / 8) as usize,
                        path,
                    )?;
                }
                if a.size != b.size
                    || a.members.len() != b.members.len()
                    || !inner.changes.is_empty()
                {
                    return Err(self.refuse(path, "union changed".into()));
                }
                self.ops.push(Op::Copy {
                    from,
                    to,
                    len: a.size as usize,
                });
                Ok(())
            }
            (Kind::Array(a), Kind::Array(b)) => {
                if b.nelems < a.nelems {
                    return Err(self.refuse(
                        path,
                        format!("array shrunk from {} to {} elements", a.nelems, b.nelems),
                    ));
                }
                let osz = self.old.resolve_size(a.elem).map_err(err)? as usize;
                let nsz = self.new.resolve_size(b.elem).map_err(err)? as usize;
                let before = self.changes.clone();
                for i in 0..a.nelems as usize {
                    self.walk(a.elem, b.elem, from + i * osz, to + i * nsz, path)?;
                    if i == 0 && self.changes == before && osz == nsz {
                        // The element is unchanged: copy the whole array at once.
                        self.ops.push(Op::Copy {
                            from,
                            to,
                            len: osz * a.nelems as usize,
                        });
                        break;
                    }
                }
                dedup(&mut self.changes);
                if b.nelems > a.nelems {
                    self.changes.widened.push(format!(
                        "{}: [{}] → [{}]",
                        if path.is_empty() { "value" } else { path },
                        a.nelems,
                        b.nelems
                    ));
                }
                Ok(())
            }
            (Kind::Float(a), Kind::Float(b)) if a == b => {
                self.ops.push(Op::Copy {
                    from,
                    to,
                    len: *a as usize,
                });
                Ok(())
            }
            (Kind::Ptr(_), Kind::Ptr(_)) => {
                self.ops.push(Op::Copy { from, to, len: 8 });
                Ok(())
            }
            (o, n) => Err(self.refuse(
                path,
                format!(
                    "type kind changed from {} ({}) to {} ({})",
                    o.tag().name(),
                    self.old.describe(oid),
                    n.tag().name(),
                    self.new.describe(nid)
                ),
            )),
        }
    }
}

fn dedup(c: &mut Changes) {
    for v in [
        &mut c.added,
        &mut c.dropped,
        &mut c.widened,
        &mut c.renumbered,
        &mut c.moved,
    ] {
        let mut seen = std::collections::HashSet::new();
        v.retain(|s| seen.insert(s.clone()));
    }
}

/// Adjacent copies become one.
fn merge(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        if let (
            Some(Op::Copy { from, to, len }),
            Op::Copy {
                from: f2,
                to: t2,
                len: l2,
            },
        ) = (out.last_mut(), &op)
        {
            if *from + *len == *f2 && *to + *len == *t2 {
                *len += l2;
                continue;
            }
        }
        out.push(op);
    }
    out
}

fn read_int(b: &[u8], size: usize, signed: bool) -> i128 {
    let mut v: u64 = 0;
    for (i, byte) in b[..size].iter().enumerate() {
        let shift = if cfg!(target_endian = "little") {
            i * 8
        } else {
            (size - 1 - i) * 8
        };
        v |= u64::from(*byte) << shift;
    }
    if signed && size < 8 {
        let bits = size * 8;
        let v = ((v << (64 - bits)) as i64) >> (64 - bits);
        i128::from(v)
    } else if signed {
        i128::from(v as i64)
    } else {
        i128::from(v)
    }
}

fn write_int(b: &mut [u8], size: usize, v: i128) {
    let v = v as u64;
    for (i, byte) in b[..size].iter_mut().enumerate() {
        let shift = if cfg!(target_endian = "little") {
            i * 8
        } else {
            (size - 1 - i) * 8
        };
        *byte = (v >> shift) as u8;
    }
}

fn bit(b: &[u8], n: u32) -> bool {
    let byte = b[(n / 8) as usize];
    if cfg!(target_endian = "little") {
        byte >> (n % 8) & 1 == 1
    } else {
        byte >> (7 - n % 8) & 1 == 1
    }
}

fn set_bit(b: &mut [u8], n: u32, on: bool) {
    let mask = if cfg!(target_endian = "little") {
        1u8 << (n % 8)
    } else {
        1u8 << (7 - n % 8)
    };
    let byte = &mut b[(n / 8) as usize];
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
}

impl Converter {
    /// Size of an old value in bytes.
    pub fn old_size(&self) -> usize {
        self.old_size
    }

    /// Size of a new value in bytes.
    pub fn new_size(&self) -> usize {
        self.new_size
    }

    /// A converter that copies a value of `size` bytes as it is (maps
    /// without BTF whose value size did not change).
    pub fn bytes(size: usize) -> Converter {
        Converter {
            ops: vec![Op::Copy {
                from: 0,
                to: 0,
                len: size,
            }],
            old_size: size,
            new_size: size,
        }
    }

    /// True when a value is copied byte for byte into the same place.
    pub fn is_identity(&self) -> bool {
        self.old_size == self.new_size
            && self
                .ops
                .iter()
                .all(|op| matches!(op, Op::Copy { from, to, .. } if from == to))
    }

    /// Writes the new form of `old` (at least `old_size` bytes) into `new`
    /// (at least `new_size` bytes, zeroed by the caller: members the old
    /// layout lacks stay zero).
    pub fn convert(&self, old: &[u8], new: &mut [u8]) -> Result<(), DoesNotFit> {
        for op in &self.ops {
            match op {
                Op::Copy { from, to, len } => {
                    new[*to..*to + *len].copy_from_slice(&old[*from..*from + *len])
                }
                Op::Int {
                    from,
                    from_size,
                    to,
                    to_size,
                    signed,
                } => {
                    let v = read_int(&old[*from..], *from_size, *signed);
                    write_int(&mut new[*to..], *to_size, v);
                }
                Op::Bits { from, to, bits } => {
                    for i in 0..*bits {
                        set_bit(new, to + i, bit(old, from + i));
                    }
                }
                Op::Enum {
                    path,
                    from,
                    from_size,
                    signed,
                    to,
                    to_size,
                    values,
                } => {
                    let v = read_int(&old[*from..], *from_size, *signed) as i64;
                    // A 32-bit enumerator is stored sign-extended in BTF.
                    let v32 = if *from_size == 4 {
                        i64::from(v as i32)
                    } else {
                        v
                    };
                    let Some((_, nv)) = values.iter().find(|(o, _)| *o == v || *o == v32) else {
                        return Err(DoesNotFit {
                            path: path.clone(),
                            reason: format!("value {v} has no enumerator in the new enum"),
                        });
                    };
                    write_int(&mut new[*to..], *to_size, i128::from(*nv));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfBuilder;

    /// v1 {packets, bytes: u32}; v2 {packets, bytes: u64, drops};
    /// bad {packets, bytes: struct}.
    fn types() -> (Btf, TypeId, TypeId, TypeId, TypeId) {
        let mut b = BtfBuilder::new();
        let u32t = b.int("__u32", 4, false);
        let u64t = b.int("__u64", 8, false);
        let v1 = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("bytes", u32t, 64, 0)],
        );
        let v2 = b.structure(
            "counter",
            24,
            &[
                ("packets", u64t, 0, 0),
                ("drops", u64t, 64, 0),
                ("bytes", u64t, 128, 0),
            ],
        );
        let inner = b.structure("pair", 8, &[("lo", u32t, 0, 0), ("hi", u32t, 32, 0)]);
        let bad = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("bytes", inner, 64, 0)],
        );
        let narrow = b.structure(
            "counter",
            8,
            &[("packets", u32t, 0, 0), ("bytes", u32t, 32, 0)],
        );
        (b.build(), v1, v2, bad, narrow)
    }

    #[test]
    fn member_added_and_widened_carries_values_by_name() {
        let (btf, v1, v2, _, _) = types();
        let (conv, changes) = compile(&btf, v1, &btf, v2).unwrap();
        assert_eq!(changes.added, vec!["drops"]);
        assert_eq!(changes.widened, vec!["bytes: __u32 → __u64"]);
        assert_eq!(changes.moved, vec!["bytes"]);
        let mut old = vec![0u8; 16];
        old[..8].copy_from_slice(&7u64.to_ne_bytes());
        old[8..12].copy_from_slice(&0xffff_fff0u32.to_ne_bytes());
        let mut new = vec![0u8; 24];
        conv.convert(&old, &mut new).unwrap();
        assert_eq!(u64::from_ne_bytes(new[..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_ne_bytes(new[8..16].try_into().unwrap()), 0);
        assert_eq!(
            u64::from_ne_bytes(new[16..24].try_into().unwrap()),
            0xffff_fff0
        );
        assert!(!conv.is_identity());
    }

    #[test]
    fn members_dropped_are_reported_and_the_rest_kept() {
        let mut b = BtfBuilder::new();
        let u64t = b.int("__u64", 8, false);
        let v2 = b.structure(
            "counter",
            24,
            &[
                ("packets", u64t, 0, 0),
                ("drops", u64t, 64, 0),
                ("bytes", u64t, 128, 0),
            ],
        );
        let v1 = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("bytes", u64t, 64, 0)],
        );
        let btf = b.build();
        let (conv, changes) = compile(&btf, v2, &btf, v1).unwrap();
        assert_eq!(changes.dropped, vec!["drops"]);
        let old: Vec<u8> = [1u64, 2, 3].iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut new = vec![0u8; 16];
        conv.convert(&old, &mut new).unwrap();
        assert_eq!(new[..8], 1u64.to_ne_bytes());
        assert_eq!(new[8..], 3u64.to_ne_bytes());
    }

    /// A build that wraps members in an anonymous struct keeps their
    /// values: C (and the typed output) still names them `v.packets`.
    #[test]
    fn members_moved_into_an_anonymous_struct_keep_their_values() {
        let mut b = BtfBuilder::new();
        let u64t = b.int("__u64", 8, false);
        let u32t = b.int("__u32", 4, false);
        let v1 = b.structure(
            "counter",
            24,
            &[
                ("packets", u64t, 0, 0),
                ("bytes", u64t, 64, 0),
                ("flags", u32t, 128, 0),
            ],
        );
        let inner = b.structure("", 16, &[("bytes", u64t, 0, 0), ("packets", u64t, 64, 0)]);
        let v2 = b.structure(
            "counter",
            32,
            &[
                ("drops", u64t, 0, 0),
                ("", inner, 64, 0),
                ("flags", u32t, 192, 0),
            ],
        );
        let btf = b.build();
        let (conv, changes) = compile(&btf, v1, &btf, v2).unwrap();
        assert_eq!(changes.added, vec!["drops"]);
        assert!(changes.dropped.is_empty(), "{:?}", changes.dropped);
        let old: Vec<u8> = [7u64, 70, 3].iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut new = vec![0u8; 32];
        conv.convert(&old, &mut new).unwrap();
        let got: Vec<u64> = new
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got[..3], [0, 70, 7], "drops, bytes, packets");
        assert_eq!(new[24..28], 3u32.to_ne_bytes(), "flags");
        // And back: the anonymous struct's members are the old struct's.
        let (_, changes) = compile(&btf, v2, &btf, v1).unwrap();
        assert_eq!(changes.dropped, vec!["drops"]);
    }

    #[test]
    fn a_member_name_twice_through_an_anonymous_struct_is_refused() {
        let mut b = BtfBuilder::new();
        let u64t = b.int("__u64", 8, false);
        let v1 = b.structure("counter", 8, &[("packets", u64t, 0, 0)]);
        let inner = b.structure("", 8, &[("packets", u64t, 0, 0)]);
        let v2 = b.structure(
            "counter",
            16,
            &[("packets", u64t, 0, 0), ("", inner, 64, 0)],
        );
        let btf = b.build();
        let r = compile(&btf, v1, &btf, v2).unwrap_err();
        assert_eq!(r.path, "packets");
        assert!(r.reason.contains("appears twice"), "{r}");
    }

    #[test]
    fn integer_turned_into_struct_is_refused_naming_the_member() {
        let (btf, v1, _, bad, _) = types();
        let r = compile(&btf, v1, &btf, bad).unwrap_err();
        assert_eq!(r.path, "bytes");
        assert!(r.reason.contains("type kind changed from INT"), "{r}");
    }

    #[test]
    fn narrowed_integer_is_refused() {
        let (btf, v1, _, _, narrow) = types();
        let r = compile(&btf, v1, &btf, narrow).unwrap_err();
        assert_eq!(r.path, "packets");
        assert!(r.reason.contains("narrowed"), "{r}");
    }

    #[test]
    fn same_layout_is_identity() {
        let (btf, v1, ..) = types();
        let (conv, changes) = compile(&btf, v1, &btf, v1).unwrap();
        assert!(changes.is_empty());
        assert!(conv.is_identity());
    }

    #[test]
    fn enums_follow_by_name_and_unknown_values_do_not_fit() {
        let mut b = BtfBuilder::new();
        let old = b.enumeration("state", &[("NEW", 0), ("EST", 1), ("GONE", 2)]);
        let new = b.enumeration("state", &[("EST", 5), ("NEW", 6)]);
        let btf = b.build();
        let (conv, changes) = compile(&btf, old, &btf, new).unwrap();
        assert_eq!(changes.renumbered, vec!["value"]);
        let mut out = [0u8; 4];
        conv.convert(&1i32.to_ne_bytes(), &mut out).unwrap();
        assert_eq!(i32::from_ne_bytes(out), 5);
        let e = conv.convert(&2i32.to_ne_bytes(), &mut out).unwrap_err();
        assert!(e.reason.contains("value 2"), "{e}");
    }

    #[test]
    fn signed_integers_widen_with_their_sign() {
        let mut b = BtfBuilder::new();
        let i32t = b.int("int", 4, true);
        let i64t = b.int("long", 8, true);
        let btf = b.build();
        let (conv, _) = compile(&btf, i32t, &btf, i64t).unwrap();
        let mut out = [0u8; 8];
        conv.convert(&(-3i32).to_ne_bytes(), &mut out).unwrap();
        assert_eq!(i64::from_ne_bytes(out), -3);
    }

    #[test]
    fn nested_structs_match_members_by_name() {
        let mut b = BtfBuilder::new();
        let u32t = b.int("__u32", 4, false);
        let in1 = b.structure("in", 8, &[("a", u32t, 0, 0), ("b", u32t, 32, 0)]);
        let in2 = b.structure("in", 8, &[("b", u32t, 0, 0), ("a", u32t, 32, 0)]);
        let o1 = b.structure("out", 12, &[("x", u32t, 0, 0), ("in", in1, 32, 0)]);
        let o2 = b.structure("out", 12, &[("in", in2, 0, 0), ("x", u32t, 64, 0)]);
        let btf = b.build();
        let (conv, changes) = compile(&btf, o1, &btf, o2).unwrap();
        assert!(changes.added.is_empty() && changes.dropped.is_empty());
        let old: Vec<u8> = [1u32, 2, 3].iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut new = vec![0u8; 12];
        conv.convert(&old, &mut new).unwrap();
        let got: Vec<u32> = new
            .chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        // in.b, in.a, x
        assert_eq!(got, vec![3, 2, 1]);
    }

    #[test]
    fn counters_lists_integer_leaves_or_none() {
        let (btf, v1, v2, bad, _) = types();
        assert_eq!(counters(&btf, v1), Some(vec![(0, 8), (8, 4)]));
        assert_eq!(counters(&btf, v2), Some(vec![(0, 8), (8, 8), (16, 8)]));
        assert_eq!(counters(&btf, bad), Some(vec![(0, 8), (8, 4), (12, 4)]));
        let mut b = BtfBuilder::new();
        let e = b.enumeration("s", &[("A", 0)]);
        let s = b.structure("x", 4, &[("s", e, 0, 0)]);
        assert_eq!(counters(&b.build(), s), None);
    }
}

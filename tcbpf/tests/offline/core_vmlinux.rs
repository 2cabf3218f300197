//! CO-RE on the committed core_classifier.o against the running kernel's
//! BTF (/sys/kernel/btf/vmlinux, read as a file): every relocation
//! resolves, and the values agree with what the kernel's BTF says.

use object::{Object, ObjectSection};
use tcbpf::btf::core::{relocate_section, Resolution, INSN_SIZE, POISON_HELPER};
use tcbpf::btf::*;

struct Fixture {
    btf: Btf,
    ext: BtfExt,
    insns: Vec<u8>,
}

fn fixture() -> Fixture {
    let data = std::fs::read(format!(
        "{}/../bpf/core_classifier.o",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let sec = |n: &str| elf.section_by_name(n).unwrap().data().unwrap().to_vec();
    Fixture {
        btf: Btf::parse(&sec(".BTF")).unwrap(),
        ext: BtfExt::parse(&sec(".BTF.ext")).unwrap(),
        insns: sec("classifier"),
    }
}

fn vmlinux() -> Btf {
    Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap()).unwrap()
}

fn insn(insns: &[u8], idx: u32) -> (u8, i16, i32) {
    let i = &insns[idx as usize * INSN_SIZE..][..INSN_SIZE];
    (
        i[0],
        i16::from_le_bytes([i[2], i[3]]),
        i32::from_le_bytes([i[4], i[5], i[6], i[7]]),
    )
}

/// Byte offset of `path` (member names, anonymous members searched) in `ty`.
fn offset_of(btf: &Btf, ty: &str, path: &[&str]) -> Option<u32> {
    fn find(btf: &Btf, id: TypeId, name: &str) -> Option<(u32, TypeId)> {
        let id = btf.skip_mods_and_typedefs(id).ok()?;
        for m in &btf.ty(id).ok()?.kind.composite()?.members {
            let n = btf.str_at(m.name_off).ok()?;
            if n == name {
                return Some((m.bit_offset, m.ty));
            }
            if n.is_empty() {
                if let Some((off, t)) = find(btf, m.ty, name) {
                    return Some((m.bit_offset + off, t));
                }
            }
        }
        None
    }
    let mut id = btf.find_by_name_kind(ty, BtfKind::Struct)?;
    let mut bits = 0;
    for p in path {
        let (off, next) = find(btf, id, p)?;
        bits += off;
        id = next;
    }
    Some(bits / 8)
}

fn by_local<'a>(
    res: &'a [Resolution],
    local_prefix: &str,
    kind: CoreReloKind,
) -> Vec<&'a Resolution> {
    res.iter()
        .filter(|r| r.kind == kind && r.local.contains(local_prefix))
        .collect()
}

#[test]
fn every_relocation_of_core_classifier_resolves_against_the_kernel() {
    let f = fixture();
    let target = vmlinux();
    let mut insns = f.insns.clone();
    let res = relocate_section(&f.btf, &f.ext, "classifier", &mut insns, &[&target]).unwrap();
    for r in &res {
        eprintln!("{r}");
    }
    assert_eq!(res.len(), f.ext.core_relos_of(&f.btf, "classifier").len());
    assert!(res.iter().all(|r| r.program == "core_classify"));

    // Field offsets equal the kernel's own layout.
    for (ty, field, want_access) in [
        ("__sk_buff", "data", "0:15"),
        ("__sk_buff", "data_end", "0:16"),
        ("ethhdr", "h_proto", "0:2"),
        ("iphdr", "protocol", "0:7"),
        ("udphdr", "dest", "0:1"),
    ] {
        let want = offset_of(&target, ty, &[field]).unwrap() as u64;
        let matching: Vec<_> = by_local(
            &res,
            &format!("{ty}.{field} "),
            CoreReloKind::FieldByteOffset,
        );
        assert!(!matching.is_empty(), "{ty}.{field}");
        for r in matching {
            assert_eq!(r.access, want_access);
            assert_eq!(r.outcome.new_val, want, "{r}");
            assert!(r.target.as_deref().unwrap().starts_with("vmlinux"));
            let (_, off, imm) = insn(&insns, r.insn);
            assert!(
                off as u64 == want || imm as u64 == want,
                "{r}: insn off {off} imm {imm}"
            );
        }
    }

    // The iphdr bitfields: version is the high nibble of byte 0, ihl the low.
    let iphdr = target.find_by_name_kind("iphdr", BtfKind::Struct).unwrap();
    let c = target.ty(iphdr).unwrap().kind.composite().unwrap().clone();
    let ihl = c
        .members
        .iter()
        .find(|m| target.str_at(m.name_off).unwrap() == "ihl")
        .unwrap();
    let version = c
        .members
        .iter()
        .find(|m| target.str_at(m.name_off).unwrap() == "version")
        .unwrap();
    for (name, m) in [("version", version), ("ihl", ihl)] {
        let bits = m.bitfield_size as u64;
        let check = |kind, want: u64| {
            let rs = by_local(&res, &format!("iphdr.{name} "), kind);
            assert!(!rs.is_empty(), "{name} {kind:?}");
            for r in rs {
                assert_eq!(r.outcome.new_val, want, "{r}");
            }
        };
        check(CoreReloKind::FieldByteOffset, 0);
        check(CoreReloKind::FieldByteSize, 1);
        check(CoreReloKind::FieldSigned, 0);
        check(CoreReloKind::FieldRshiftU64, 64 - bits);
        check(
            CoreReloKind::FieldLshiftU64,
            64 - (m.bit_offset as u64 + bits),
        );
    }

    // Type size, type id, enum value and existence against the kernel's BTF.
    let size = &by_local(&res, "struct iphdr", CoreReloKind::TypeSize)[0];
    assert_eq!(size.outcome.new_val, 20);
    let id = &by_local(&res, "struct iphdr", CoreReloKind::TypeIdTarget)[0];
    assert_eq!(id.outcome.new_val, iphdr as u64);
    let (code, _, lo) = insn(&insns, id.insn);
    assert_eq!(code, 0x18, "type id is loaded with LD_IMM64");
    assert_eq!(lo as u32, iphdr);
    let redirect = &by_local(&res, "BPF_REDIRECT", CoreReloKind::EnumvalValue)[0];
    assert_eq!(redirect.outcome.new_val, 7);
    let hw = &by_local(&res, "__sk_buff.hwtstamp", CoreReloKind::FieldExists)[0];
    assert_eq!(hw.outcome.new_val, 1);

    // The flavored struct matches the kernel's __sk_buff, but its invented
    // field does not exist: existence 0, and the guarded read is poisoned.
    let future = by_local(
        &res,
        "__sk_buff___future.not_yet_invented",
        CoreReloKind::FieldExists,
    );
    assert_eq!(future.len(), 2);
    assert!(future
        .iter()
        .all(|r| r.outcome.new_val == 0 && !r.outcome.poison));
    let read = &by_local(
        &res,
        "__sk_buff___future.not_yet_invented",
        CoreReloKind::FieldByteOffset,
    )[0];
    assert!(read.outcome.poison);
    assert_eq!(insn(&insns, read.insn), (0x85, 0, POISON_HELPER));

    // Nothing else changed: instructions without relocations are untouched.
    let patched: Vec<u32> = res.iter().map(|r| r.insn).collect();
    for i in 0..(insns.len() / INSN_SIZE) as u32 {
        if !patched.contains(&i) && !patched.contains(&(i.wrapping_sub(1))) {
            assert_eq!(insn(&insns, i), insn(&f.insns, i), "insn #{i}");
        }
    }
}

#[test]
fn a_target_without_the_types_poisons_fields_and_zeroes_existence() {
    let f = fixture();
    let mut b = BtfBuilder::new();
    b.int("int", 4, true);
    let empty = b.build();
    let mut insns = f.insns.clone();
    let res = relocate_section(&f.btf, &f.ext, "classifier", &mut insns, &[&empty]).unwrap();
    for r in &res {
        match r.kind {
            CoreReloKind::FieldExists | CoreReloKind::TypeSize | CoreReloKind::TypeIdTarget => {
                assert_eq!((r.outcome.new_val, r.outcome.poison), (0, false), "{r}")
            }
            _ => assert!(r.outcome.poison, "{r}"),
        }
    }
    assert_eq!(insn(&insns, res[0].insn).2, POISON_HELPER);
}

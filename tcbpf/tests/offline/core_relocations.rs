//! CO-RE resolution and patching on hand-built BTF (no root, no kernel):
//! moved, vanished and nested fields, `___flavor` names, enum values,
//! bitfields, type relocations, ambiguity, poisoning and bad input.

use tcbpf::btf::core::{relocate_section, CoreError, Resolution, INSN_SIZE, POISON_HELPER};
use tcbpf::btf::*;

/// LDX_MEM(W) r0 = *(u32 *)(r1 + off)
fn ldx_w(off: i16) -> [u8; 8] {
    let o = off.to_le_bytes();
    [0x61, 0x10, o[0], o[1], 0, 0, 0, 0]
}

/// ALU64 MOV r0 = imm
fn mov64(imm: i32) -> [u8; 8] {
    let i = imm.to_le_bytes();
    [0xb7, 0x00, 0, 0, i[0], i[1], i[2], i[3]]
}

/// LD_IMM64 r0 = imm (two instructions)
fn ld_imm64(imm: u64) -> [u8; 16] {
    let lo = (imm as u32).to_le_bytes();
    let hi = ((imm >> 32) as u32).to_le_bytes();
    [
        0x18, 0, 0, 0, lo[0], lo[1], lo[2], lo[3], 0, 0, 0, 0, hi[0], hi[1], hi[2], hi[3],
    ]
}

/// One relocation on the first instruction of `insns`, resolved and applied.
fn relocate(
    local: &mut Btf,
    root: TypeId,
    access: &str,
    kind: CoreReloKind,
    insns: &mut [u8],
    targets: &[&Btf],
) -> std::result::Result<Resolution, CoreError> {
    let access_str_off = local.add_string(access);
    let sec_name_off = local.add_string("prog");
    let ext = BtfExt {
        core_relos: vec![ExtSection {
            sec_name_off,
            records: vec![CoreRelo {
                insn_off: 0,
                type_id: root,
                access_str_off,
                kind,
            }],
        }],
        ..BtfExt::default()
    };
    let before = insns.to_vec();
    let got = relocate_section(local, &ext, "prog", insns, targets).map(|mut v| v.remove(0));
    // The loader resolves against TargetBtf (decoded on demand): the same
    // relocation must give the same result and the same instructions.
    let lazy = as_target_btfs(targets);
    let lazy: Vec<&TargetBtf> = lazy.iter().map(|t| t.as_ref()).collect();
    let mut again = before;
    let lazy_got =
        relocate_section(local, &ext, "prog", &mut again, &lazy).map(|mut v| v.remove(0));
    assert_eq!(got, lazy_got, "Btf and TargetBtf targets disagree");
    assert_eq!(insns, &again[..]);
    got
}

/// `targets` as the loader holds them: the first standalone, the others
/// split on it when they are split.
fn as_target_btfs(targets: &[&Btf]) -> Vec<std::sync::Arc<TargetBtf>> {
    let mut out: Vec<std::sync::Arc<TargetBtf>> = Vec::new();
    for t in targets {
        let bytes = Box::new(t.to_bytes());
        let parsed = match (t.base(), out.first()) {
            (Some(_), Some(base)) => TargetBtf::parse_split(bytes, base.clone()),
            _ => TargetBtf::parse(bytes),
        };
        out.push(std::sync::Arc::new(parsed.unwrap()));
    }
    out
}

fn off(insns: &[u8]) -> i16 {
    i16::from_le_bytes([insns[2], insns[3]])
}

fn imm(insns: &[u8]) -> i32 {
    i32::from_le_bytes([insns[4], insns[5], insns[6], insns[7]])
}

/// `struct task { int pid; int tgid; }` as the program was compiled.
fn local_task(name: &str) -> (Btf, TypeId) {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let t = b.structure(name, 8, &[("pid", int, 0, 0), ("tgid", int, 32, 0)]);
    (b.build(), t)
}

/// The kernel's `struct task` with a `long state` in front.
fn target_task(names: &[&str], with_tgid: bool) -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let long = b.int("long", 8, true);
    for name in names {
        if with_tgid {
            b.structure(
                name,
                16,
                &[
                    ("state", long, 0, 0),
                    ("pid", int, 64, 0),
                    ("tgid", int, 96, 0),
                ],
            );
        } else {
            b.structure(name, 12, &[("state", long, 0, 0), ("pid", int, 64, 0)]);
        }
    }
    b.build()
}

#[test]
fn a_field_that_moved_gets_its_new_offset() {
    let (mut local, task) = local_task("task");
    let target = target_task(&["task"], true);
    let mut insns = ldx_w(4).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!((r.outcome.orig_val, r.outcome.new_val), (4, 12));
    assert_eq!(off(&insns), 12);
    assert_eq!(insns[0], 0x61, "access size unchanged");
    assert_eq!(r.to_string(), "insn #0 <byte_off> [2] struct task.tgid (0:1 @ offset 4): 4 -> 12 (vmlinux [3] struct task.tgid (0:2 @ offset 12))");
}

#[test]
fn a_field_that_vanished_does_not_exist_and_its_read_is_poisoned() {
    let (mut local, task) = local_task("task");
    let target = target_task(&["task"], false);
    let mut insns = mov64(1).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldExists,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 0);
    assert_eq!(imm(&insns), 0);
    let mut insns = ldx_w(4).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert!(r.outcome.poison);
    assert_eq!((insns[0], imm(&insns)), (0x85, POISON_HELPER));
    assert!(r
        .to_string()
        .ends_with("no match in target, instruction poisoned"));
}

#[test]
fn a_flavored_local_struct_matches_the_kernel_name() {
    let (mut local, task) = local_task("task___v2");
    let target = target_task(&["task"], true);
    let mut insns = ldx_w(0).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:0",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 8);
    assert_eq!(essential_name("task___v2"), "task");
    assert_eq!(essential_name("a___b___c"), "a___b");
    assert_eq!(essential_name("___x"), "___x");
    assert_eq!(essential_name("x____y"), "x____y");
}

#[test]
fn candidates_that_agree_are_fine_and_ones_that_disagree_are_ambiguous() {
    let (mut local, task) = local_task("task");
    let agree = target_task(&["task", "task___old"], true);
    let mut insns = ldx_w(4).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&agree],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 12);

    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    b.structure("task", 8, &[("pid", int, 0, 0), ("tgid", int, 32, 0)]);
    b.structure(
        "task___old",
        12,
        &[("x", int, 0, 0), ("pid", int, 32, 0), ("tgid", int, 64, 0)],
    );
    let disagree = b.build();
    let mut insns = ldx_w(4).to_vec();
    let before = insns.clone();
    let e = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&disagree],
    )
    .unwrap_err();
    assert!(e.reason.contains("ambiguity"), "{e}");
    assert_eq!(e.insn, 0);
    assert!(e.to_string().contains("struct task access '0:1'"), "{e}");
    assert_eq!(insns, before, "nothing patched on error");
}

#[test]
fn enum_values_are_taken_from_the_target() {
    let mut b = BtfBuilder::new();
    let state = b.enumeration(
        "state",
        &[("RUNNING", 0), ("STOPPED", 1), ("ZOMBIE___new", 2)],
    );
    let mut local = b.build();
    let mut b = BtfBuilder::new();
    b.enum64(
        "state",
        &[("STARTING", 0), ("RUNNING", 5), ("STOPPED", 1 << 33)],
    );
    let target = b.build();

    let mut insns = ld_imm64(1).to_vec();
    let r = relocate(
        &mut local,
        state,
        "1",
        CoreReloKind::EnumvalValue,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 1 << 33);
    assert_eq!((imm(&insns) as u32, imm(&insns[8..]) as u32), (0, 2));
    assert!(r.local.contains("enum state::STOPPED = 1"), "{}", r.local);

    let mut insns = mov64(1).to_vec();
    let r = relocate(
        &mut local,
        state,
        "2",
        CoreReloKind::EnumvalExists,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!((r.outcome.new_val, imm(&insns)), (0, 0));
    let mut insns = ld_imm64(2).to_vec();
    let r = relocate(
        &mut local,
        state,
        "2",
        CoreReloKind::EnumvalValue,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert!(r.outcome.poison);
    assert_eq!(
        (imm(&insns), imm(&insns[8..])),
        (POISON_HELPER, POISON_HELPER),
        "both halves poisoned"
    );
}

#[test]
fn bitfield_offsets_sizes_and_shifts_follow_the_target_layout() {
    let mut b = BtfBuilder::new();
    let u8t = b.int("unsigned char", 1, false);
    let flags = b.structure("flags", 1, &[("a", u8t, 0, 3), ("b", u8t, 3, 5)]);
    let mut local = b.build();
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    b.structure(
        "flags",
        4,
        &[("x", u32t, 0, 10), ("b", u32t, 10, 7), ("a", u32t, 17, 3)],
    );
    let target = b.build();
    let cases = [
        (CoreReloKind::FieldByteOffset, 0, 0),
        (CoreReloKind::FieldByteSize, 1, 4),
        (CoreReloKind::FieldLshiftU64, 64 - 8, 64 - 17),
        (CoreReloKind::FieldRshiftU64, 64 - 5, 64 - 7),
        (CoreReloKind::FieldSigned, 0, 0),
    ];
    for (kind, orig, new) in cases {
        // Bitfield values are not validated against the instruction, except
        // signedness and right shift; give the instruction the local value.
        let mut insns = mov64(orig).to_vec();
        let r = relocate(&mut local, flags, "0:1", kind, &mut insns, &[&target]).unwrap();
        assert_eq!(
            (r.outcome.orig_val, r.outcome.new_val),
            (orig as u64, new),
            "{kind:?}"
        );
        assert_eq!(imm(&insns) as u64, new);
    }
    // The shifts extract bits 10..17 of the loaded 32-bit word.
    let word: u64 = 0b1010110 << 10 | 0x3ff;
    assert_eq!(word << (64 - 17) >> (64 - 7), 0b1010110);
}

#[test]
fn named_fields_are_found_inside_anonymous_unions_and_arrays_are_indexed() {
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let arr = b.array(u32t, u32t, 4);
    let ip = b.structure("iphdr", 20, &[("saddr", u32t, 0, 0), ("opts", arr, 32, 0)]);
    let mut local = b.build();
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let addrs = b.structure("", 8, &[("saddr", u32t, 0, 0), ("daddr", u32t, 32, 0)]);
    let anon = b.union("", 8, &[("", addrs, 0, 0)]);
    let arr = b.array(u32t, u32t, 8);
    b.structure(
        "iphdr",
        52,
        &[
            ("ver", u32t, 0, 0),
            ("", anon, 96, 0),
            ("opts", arr, 160, 0),
        ],
    );
    let target = b.build();
    let mut insns = ldx_w(0).to_vec();
    let r = relocate(
        &mut local,
        ip,
        "0:0",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 12);
    assert!(r.target.unwrap().contains("(0:1:0:0 @ offset 12)"));
    let mut insns = ldx_w(12).to_vec();
    let r = relocate(
        &mut local,
        ip,
        "0:1:2",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!((r.outcome.orig_val, r.outcome.new_val), (12, 28));
    assert!(r.local.contains("struct iphdr.opts[2]"), "{}", r.local);
    let mut insns = ldx_w(36).to_vec();
    let e = relocate(
        &mut local,
        ip,
        "0:1:9",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert!(e.reason.contains("array index 9 out of range"), "{e}");
}

#[test]
fn type_relocations_report_existence_size_ids_and_matches() {
    let (mut local, task) = local_task("task");
    let target = target_task(&["task"], true);
    let tid = target.find_by_name_kind("task", BtfKind::Struct).unwrap();
    let check = |local: &mut Btf, kind, orig: i32, new: u64| {
        let mut insns = mov64(orig).to_vec();
        let r = relocate(local, task, "0", kind, &mut insns, &[&target]).unwrap();
        assert_eq!(r.outcome.new_val, new, "{kind:?}");
        assert_eq!(imm(&insns) as u64, new, "{kind:?}");
    };
    check(&mut local, CoreReloKind::TypeExists, 1, 1);
    check(&mut local, CoreReloKind::TypeSize, 8, 16);
    check(
        &mut local,
        CoreReloKind::TypeIdTarget,
        task as i32,
        tid as u64,
    );
    check(
        &mut local,
        CoreReloKind::TypeIdLocal,
        task as i32,
        task as u64,
    );
    // The target has all local members with the same types: it matches.
    check(&mut local, CoreReloKind::TypeMatches, 1, 1);
    // A member of another size does not match, though the type exists.
    let mut b = BtfBuilder::new();
    let long = b.int("int", 8, true);
    b.structure("task", 16, &[("pid", long, 0, 0), ("tgid", long, 64, 0)]);
    let other = b.build();
    let mut insns = mov64(1).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0",
        CoreReloKind::TypeMatches,
        &mut insns,
        &[&other],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 0);
    let mut insns = mov64(1).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0",
        CoreReloKind::TypeExists,
        &mut insns,
        &[&other],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 1);
}

#[test]
fn module_btf_is_searched_only_when_vmlinux_lacks_the_type() {
    let (mut local, task) = local_task("task");
    let vmlinux = std::sync::Arc::new(target_task(&["other"], true));
    let mut m = BtfBuilder::split(vmlinux.clone());
    let int = vmlinux.find_by_name_kind("int", BtfKind::Int).unwrap();
    let long = vmlinux.find_by_name_kind("long", BtfKind::Int).unwrap();
    let in_module = m.structure(
        "task",
        24,
        &[
            ("x", long, 0, 0),
            ("tgid", int, 128, 0),
            ("pid", int, 160, 0),
        ],
    );
    let module = m.build();
    let mut insns = ldx_w(4).to_vec();
    let r = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&vmlinux, &module],
    )
    .unwrap();
    assert_eq!(r.outcome.new_val, 16);
    let t = r.target.unwrap();
    assert!(
        t.starts_with(&format!("module#1 [{in_module}] struct task")),
        "{t}"
    );
}

#[test]
fn load_size_follows_unsigned_growth_and_poisons_signed_change() {
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let i32t = b.int("int", 4, true);
    let s = b.structure("s", 8, &[("u", u32t, 0, 0), ("i", i32t, 32, 0)]);
    let mut local = b.build();
    let mut b = BtfBuilder::new();
    let u64t = b.int("unsigned long", 8, false);
    let i64t = b.int("long", 8, true);
    b.structure("s", 16, &[("u", u64t, 0, 0), ("i", i64t, 64, 0)]);
    let target = b.build();
    let mut insns = ldx_w(0).to_vec();
    relocate(
        &mut local,
        s,
        "0:0",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!(insns[0], 0x79, "LDX W became LDX DW");
    let mut insns = ldx_w(4).to_vec();
    relocate(
        &mut local,
        s,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap();
    assert_eq!((insns[0], imm(&insns)), (0x85, POISON_HELPER));
}

#[test]
fn bad_relocations_fail_with_program_instruction_access_and_type() {
    let (mut local, task) = local_task("task");
    let target = target_task(&["task"], true);
    // The instruction does not hold what the compiler assumed.
    let mut insns = ldx_w(6).to_vec();
    let e = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "CO-RE relocation failed in program 'prog' (section 'prog') at insn #0: \
         <byte_off> [2] struct task access '0:1': instruction #0 (LDX/ST/STX) has offset 6, expected 4 (to become 12)"
    );
    for (access, want) in [
        ("0:x", "does not parse"),
        ("0:7", "member #7 out of range"),
        ("", "empty"),
    ] {
        let mut insns = ldx_w(4).to_vec();
        let e = relocate(
            &mut local,
            task,
            access,
            CoreReloKind::FieldByteOffset,
            &mut insns,
            &[&target],
        )
        .unwrap_err();
        assert!(e.reason.contains(want), "{access}: {e}");
    }
    let mut insns = mov64(0).to_vec();
    let e = relocate(
        &mut local,
        99,
        "0",
        CoreReloKind::TypeSize,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert!(e.reason.contains("type id 99 out of range"), "{e}");
    // The relocation points past the end of the program.
    let mut insns = Vec::new();
    let e = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert!(e.reason.contains("outside the 0-byte section"), "{e}");
    // A jump cannot carry a field offset.
    let mut insns = [0x05u8, 0, 4, 0, 0, 0, 0, 0].to_vec();
    let e = relocate(
        &mut local,
        task,
        "0:1",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert!(e.reason.contains("cannot carry a CO-RE relocation"), "{e}");
    // Anonymous roots have no name to match.
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let anon = b.structure("", 4, &[("x", int, 0, 0)]);
    let mut anon_local = b.build();
    let mut insns = ldx_w(0).to_vec();
    let e = relocate(
        &mut anon_local,
        anon,
        "0:0",
        CoreReloKind::FieldByteOffset,
        &mut insns,
        &[&target],
    )
    .unwrap_err();
    assert!(e.reason.contains("anonymous"), "{e}");
    assert_eq!(insns.len(), INSN_SIZE);
}

#[test]
fn verifier_rejections_of_poisoned_instructions_are_recognised() {
    let log =
        "0: R1=ctx() R10=fp0\n12: (85) call unknown#195896080\ninvalid func unknown#195896080\n";
    assert_eq!(tcbpf::btf::core::poisoned_insn_in_log(log), Some(12));
    assert_eq!(
        tcbpf::btf::core::poisoned_insn_in_log("12: (85) call bpf_map_lookup_elem#1"),
        None
    );
}

#[test]
fn a_function_gets_only_the_relocations_that_fall_inside_it() {
    let (mut local, task) = local_task("task");
    let target = target_task(&["task"], true);
    let access_str_off = local.add_string("0:1");
    let sec_name_off = local.add_string("prog");
    let relo = |insn: u32| CoreRelo {
        insn_off: insn * 8,
        type_id: task,
        access_str_off,
        kind: CoreReloKind::FieldByteOffset,
    };
    let ext = BtfExt {
        core_relos: vec![ExtSection {
            sec_name_off,
            records: vec![relo(0), relo(3)],
        }],
        ..BtfExt::default()
    };
    // The second function of the section: instructions 2..4.
    let mut second = [mov64(0), ldx_w(4)].concat();
    let res = tcbpf::btf::core::relocate_function(&local, &ext, "prog", 2, &mut second, &[&target])
        .unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].insn, 3);
    assert_eq!((off(&second[8..]), imm(&second)), (12, 0));
    // A relocation past the end of its section is refused up front.
    let e = tcbpf::btf::core::check_bounds(&local, &ext, |_| Some(24)).unwrap_err();
    assert_eq!(e.insn, 3);
    assert!(
        e.reason
            .contains("not an instruction of the 24-byte section"),
        "{e}"
    );
    assert!(tcbpf::btf::core::check_bounds(&local, &ext, |_| Some(32)).is_ok());
}

#[test]
fn type_matches_follows_pointers_forward_declarations_and_enumerators() {
    use tcbpf::btf::core::{types_are_compat, types_match};
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let fwd = b.fwd("sock", FwdKind::Struct);
    let pfwd = b.ptr(fwd);
    let state = b.enumeration("state", &[("UP", 1)]);
    let local_s = b.structure(
        "conn",
        16,
        &[("sk", pfwd, 0, 0), ("st", state, 64, 0), ("n", int, 96, 0)],
    );
    let local = b.build();

    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let sock = b.structure("sock", 8, &[("x", int, 0, 0)]);
    let psock = b.ptr(sock);
    let state = b.enumeration("state", &[("DOWN", 0), ("UP", 1)]);
    let extra = b.int("long", 8, true);
    let targ_s = b.structure(
        "conn",
        24,
        &[
            ("n", int, 0, 0),
            ("sk", psock, 64, 0),
            ("st", state, 128, 0),
            ("more", extra, 192, 0),
        ],
    );
    // A forward declaration behind a pointer matches the struct; members
    // may move and the target may have more; enumerators must all exist.
    let target = b.build();
    assert!(types_match(&local, local_s, &target, targ_s).unwrap());

    // A union where the local forward declares a struct, or a missing
    // enumerator: no match, though the type is still compatible.
    for (sock_is_union, values) in [
        (true, &[("DOWN", 0), ("UP", 1)][..]),
        (false, &[("DOWN", 0)][..]),
    ] {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let sock = if sock_is_union {
            b.union("sock", 8, &[("x", int, 0, 0)])
        } else {
            b.structure("sock", 8, &[("x", int, 0, 0)])
        };
        let psock = b.ptr(sock);
        let state = b.enumeration("state", values);
        let other_s = b.structure(
            "conn",
            24,
            &[
                ("n", int, 0, 0),
                ("sk", psock, 64, 0),
                ("st", state, 128, 0),
            ],
        );
        let other = b.build();
        assert!(
            !types_match(&local, local_s, &other, other_s).unwrap(),
            "union {sock_is_union}"
        );
        assert!(types_are_compat(&local, local_s, &other, other_s).unwrap());
    }
}

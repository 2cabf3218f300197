//! Parsing objects into specs (no syscalls): what each fixture holds, and
//! clear one-line errors naming file, section and symbol for bad input.

use object::{Object, ObjectSection};
use std::path::PathBuf;
use tcbpf::abi::{map_flags as flags, MapType};
use tcbpf::elf::{MapOrigin, ObjectSpec, Pinning, SectionKind, SlotTarget};

fn fixture(name: &str) -> PathBuf {
    tcbpf_testkit::fixture(&format!("{name}.o"))
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn parse(name: &str, data: &[u8]) -> Result<ObjectSpec, String> {
    ObjectSpec::parse(&format!("{name}.o"), data).map_err(|e| e.to_string())
}

/// The file range of section `section`.
fn section_range(data: &[u8], section: &str) -> std::ops::Range<usize> {
    let file = object::File::parse(data).unwrap();
    let s = file.section_by_name(section).unwrap();
    let (off, len) = s.file_range().unwrap();
    off as usize..(off + len) as usize
}

/// The byte offset of section `index`'s header field at `field`.
fn shdr_field(data: &[u8], index: usize, field: usize) -> usize {
    let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
    let entsize = u16::from_le_bytes([data[0x3a], data[0x3b]]) as usize;
    shoff + index * entsize + field
}

fn section_index(data: &[u8], section: &str) -> usize {
    let file = object::File::parse(data).unwrap();
    file.section_by_name(section).unwrap().index().0
}

#[test]
fn legacy_object_lists_maps_with_ids_pinning_and_entry_size() {
    let spec = parse("legacy", &bytes("legacy")).unwrap();
    assert_eq!(spec.legacy_map_size, Some(36));
    assert_eq!(spec.license, "GPL");
    let maps: Vec<(&str, MapType, u32, Pinning)> = spec
        .maps
        .iter()
        .map(|m| (m.name.as_str(), m.map_type, m.id, m.pinning))
        .collect();
    assert_eq!(maps[0], ("proto_count", MapType::Hash, 1, Pinning::None));
    assert_eq!(
        maps[3],
        ("custom_pinned", MapType::Array, 4, Pinning::Custom(42))
    );
    assert!(spec.maps.iter().all(|m| m.origin == MapOrigin::Legacy));
    let names: Vec<&str> = spec.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["cls_main", "act_main"]);
    assert_eq!(spec.programs[0].map_refs.len(), 6);
    let kinds: Vec<SectionKind> = spec.sections.iter().map(|s| s.kind).collect();
    assert!(kinds.contains(&SectionKind::LegacyMaps) && kinds.contains(&SectionKind::Btf));
}

#[test]
fn old_struct_sizes_fill_missing_fields_with_zero() {
    for (size, ids) in [(20usize, [0u32, 1]), (24, [7, 8]), (28, [7, 8])] {
        let spec = parse("v", &bytes(&format!("legacy_v{size}"))).unwrap();
        assert_eq!(spec.legacy_map_size, Some(size));
        let got: Vec<u32> = spec.maps.iter().map(|m| m.id).collect();
        assert_eq!(got, ids, "v{size}");
        assert_eq!(spec.maps[0].flags, flags::NO_PREALLOC);
        assert!(spec
            .maps
            .iter()
            .all(|m| m.pinning == Pinning::None && m.inner_id == 0));
    }
}

#[test]
fn subprograms_are_appended_once_after_the_program() {
    let spec = parse("subprog", &bytes("subprog")).unwrap();
    assert_eq!(spec.programs.len(), 1);
    let p = &spec.programs[0];
    let names: Vec<&str> = p.layout.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["calls", "add_one", "same_section", "times_three"]);
    assert_eq!(p.layout.iter().map(|l| l.len).sum::<usize>(), p.insns.len());
    assert_eq!(p.func_info.len(), 4, "one func info per function");
    assert!(p.func_info.windows(2).all(|w| w[0][0] < w[1][0]));
}

#[test]
fn global_data_sections_become_one_entry_arrays() {
    let spec = parse("global_data", &bytes("global_data")).unwrap();
    let names: Vec<&str> = spec.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [".rodata", ".data", ".bss"]);
    let ro = &spec.maps[0];
    assert!(ro.freeze && ro.flags == flags::RDONLY_PROG && ro.max_entries == 1);
    assert_eq!(&ro.data.as_ref().unwrap()[..4], &2u32.to_le_bytes());
    assert_eq!(
        spec.maps[1].data.as_deref(),
        Some(&100u64.to_le_bytes()[..])
    );
    assert!(spec.maps[2].data.as_ref().unwrap().iter().all(|&b| b == 0));
    assert!(spec.maps.iter().all(|m| m.btf_value_type_id != 0));
}

#[test]
fn btf_values_become_initial_slots() {
    let spec = parse("mim_btf", &bytes("mim_btf")).unwrap();
    let outer = spec.maps.iter().find(|m| m.name == "outer").unwrap();
    let slots: Vec<(u32, SlotTarget)> = outer
        .initial_slots
        .iter()
        .map(|s| (s.key, s.target.clone()))
        .collect();
    assert_eq!(
        slots,
        vec![(1, SlotTarget::Map(0)), (2, SlotTarget::Map(1))]
    );
    let inner = outer.inner.as_ref().unwrap();
    assert_eq!(
        (inner.map_type, inner.value_size, inner.max_entries),
        (MapType::Array, 8, 2)
    );

    let spec = parse("tailcall_btf", &bytes("tailcall_btf")).unwrap();
    let jmp = spec.maps.iter().find(|m| m.name == "jmp").unwrap();
    assert_eq!(
        jmp.initial_slots[0].target,
        SlotTarget::Program("tail_a".into())
    );
}

#[test]
fn tail_call_sections_name_their_slot() {
    let spec = parse("tailcall", &bytes("tailcall")).unwrap();
    let slots: Vec<(String, Option<(u32, u32)>)> = spec
        .programs
        .iter()
        .map(|p| (p.section.clone(), p.tail_call.map(|t| (t.map_id, t.key))))
        .collect();
    assert_eq!(slots[0], ("classifier".into(), None));
    assert_eq!(slots[3], ("1/2".into(), Some((1, 2))));
}

#[test]
fn not_elf_is_refused() {
    let err = parse("x", b"hello, this is not an object").unwrap_err();
    assert_eq!(err, "x.o: not an ELF file");
}

#[test]
fn truncated_objects_are_refused_without_panic() {
    let data = bytes("legacy");
    for len in [0, 3, 20, 63, 64, 200, data.len() / 2, data.len() - 1] {
        let err = parse("legacy", &data[..len]).unwrap_err();
        assert!(err.starts_with("legacy.o: "), "{len}: {err}");
    }
}

#[test]
fn wrong_machine_is_refused() {
    let mut data = bytes("legacy");
    data[18..20].copy_from_slice(&62u16.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert!(err.contains("machine is 62, not eBPF"), "{err}");
}

#[test]
fn big_endian_object_is_refused() {
    let mut data = bytes("legacy");
    data[5] = 2;
    let err = parse("legacy", &data).unwrap_err();
    assert!(err.contains("big-endian"), "{err}");
}

#[test]
fn unknown_map_type_names_section_and_symbol() {
    let mut data = bytes("legacy");
    let r = section_range(&data, "maps");
    data[r.start..r.start + 4].copy_from_slice(&999u32.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert_eq!(
        err,
        "legacy.o: section 'maps': symbol 'proto_count': unknown map type 999"
    );
}

#[test]
fn zero_key_or_value_size_is_refused() {
    let mut data = bytes("legacy");
    let r = section_range(&data, "maps");
    data[r.start + 36 + 4..r.start + 36 + 8].copy_from_slice(&0u32.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert_eq!(
        err,
        "legacy.o: section 'maps': symbol 'obj_pinned': array map with key size 0"
    );
    let mut data = bytes("legacy");
    data[r.start + 8..r.start + 12].copy_from_slice(&0u32.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert!(err.ends_with("hash map with value size 0"), "{err}");
}

#[test]
fn more_legacy_maps_than_fit_are_refused() {
    let err = parse("legacy_65maps", &bytes("legacy_65maps")).unwrap_err();
    assert!(
        err.contains("section 'maps': 65 maps: more than fit (64"),
        "{err}"
    );
}

#[test]
fn relocation_to_unknown_symbol_or_out_of_bounds_is_refused() {
    let clean = bytes("legacy");
    let rel = section_range(&clean, ".relclassifier");
    // r_info of the first entry: symbol 0 (the undefined null symbol).
    let mut data = clean.clone();
    data[rel.start + 8..rel.start + 16].copy_from_slice(&1u64.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert!(
        err.contains("section 'classifier'") && err.contains("unknown symbol"),
        "{err}"
    );
    // A symbol index past the table.
    let mut data = clean.clone();
    data[rel.start + 8..rel.start + 16].copy_from_slice(&((9999u64 << 32) | 1).to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert!(err.contains("symbol 9999, which does not exist"), "{err}");
    // An offset past the section.
    let mut data = clean;
    data[rel.start..rel.start + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let err = parse("legacy", &data).unwrap_err();
    assert!(
        err.contains("section 'classifier': symbol 'proto_count': relocation out of bounds"),
        "{err}"
    );
}

#[test]
fn oversized_section_is_refused_without_allocating_it() {
    let mut data = bytes("global_data");
    let bss = section_index(&data, ".bss");
    let at = shdr_field(&data, bss, 32);
    data[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = parse("global_data", &data).unwrap_err();
    assert!(err.contains("section '.bss': section too large"), "{err}");
    let mut data = bytes("global_data");
    let text = section_index(&data, "classifier");
    let at = shdr_field(&data, text, 32);
    data[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = parse("global_data", &data).unwrap_err();
    assert!(err.contains("'classifier' lies outside the file"), "{err}");
}

#[test]
fn bad_btf_names_the_btf_section() {
    let mut data = bytes("btf_maps");
    let r = section_range(&data, ".BTF");
    data[r.start..r.start + 2].copy_from_slice(&[0, 0]);
    let err = parse("btf_maps", &data).unwrap_err();
    assert!(err.starts_with("btf_maps.o: section '.BTF': "), "{err}");
}

//! `.BTF.ext` parsing: function info, line info and CO-RE relocation records
//! of the committed objects, and refusal of corrupt sections.

use object::{Object, ObjectSection};
use tcbpf::btf::*;

fn sections(name: &str) -> (Btf, Vec<u8>, object::SectionIndex, u64) {
    let data = std::fs::read(format!("{}/../bpf/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let btf = Btf::parse(elf.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
    let ext = elf
        .section_by_name(".BTF.ext")
        .unwrap()
        .data()
        .unwrap()
        .to_vec();
    let prog = elf.section_by_name("classifier").unwrap();
    (btf, ext, prog.index(), prog.size())
}

#[test]
fn core_classifier_ext_has_func_line_and_core_records() {
    let (btf, raw, _, prog_size) = sections("core_classifier.o");
    let ext = BtfExt::parse(&raw).unwrap();
    let funcs = ext.func_info_of(&btf, "classifier");
    assert_eq!(funcs.len(), 1);
    assert_eq!(funcs[0].insn_off, 0);
    assert_eq!(btf.name(funcs[0].type_id).unwrap(), "core_classify");
    let lines = ext.line_info_of(&btf, "classifier");
    assert!(lines.len() > 10);
    assert!(lines
        .iter()
        .all(|l| (l.insn_off as u64) < prog_size && l.insn_off % 8 == 0));
    let file = btf.str_at(lines[0].file_name_off).unwrap();
    assert!(file.ends_with("core_classifier.c"), "{file}");
    assert!(lines[0].line() > 0);
    let relos = ext.core_relos_of(&btf, "classifier");
    for r in relos {
        eprintln!(
            "{:5} {:16} {} {}",
            r.insn_off / 8,
            r.kind.name(),
            btf.describe(r.type_id),
            btf.str_at(r.access_str_off).unwrap()
        );
    }
    assert!(relos.len() >= 10);
    assert!(ext.core_relos_of(&btf, "nope").is_empty());
}

#[test]
fn corrupt_btf_ext_sections_are_refused_with_the_reason() {
    let (_, raw, _, _) = sections("core_classifier.o");
    let err = |bytes: &[u8]| BtfExt::parse(bytes).unwrap_err().to_string();
    assert!(err(&raw[..10]).contains("truncated"));
    let mut bad = raw.clone();
    bad[0] = 0;
    assert!(err(&bad).contains(".BTF.ext magic"));
    let u32_at =
        |d: &[u8], at: usize| u32::from_le_bytes(d[at..at + 4].try_into().unwrap()) as usize;
    let hdr_len = u32_at(&raw, 4);
    // func_info record size 4 is smaller than a record.
    let mut small = raw.clone();
    let func_off = hdr_len + u32_at(&raw, 8);
    small[func_off..func_off + 4].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(err(&small), ".BTF.ext func_info record size 4 is invalid");
    // core_relo section claims more records than it holds.
    let mut many = raw.clone();
    let core_off = hdr_len + u32_at(&raw, 24);
    many[core_off + 8..core_off + 12].copy_from_slice(&100_000u32.to_le_bytes());
    assert!(
        err(&many).contains("truncated: core_relo"),
        "{}",
        err(&many)
    );
    // An unknown relocation kind.
    let mut kind = raw.clone();
    kind[core_off + 12 + 12..core_off + 12 + 16].copy_from_slice(&99u32.to_le_bytes());
    assert_eq!(err(&kind), "unknown CO-RE relocation kind 99");
    // Sections running past the end.
    let mut past = raw.clone();
    past[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(err(&past).contains("runs past the section"));
}

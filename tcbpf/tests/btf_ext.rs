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

//! Kernel fix-ups of clang's BTF: data section sizes, variable offsets and
//! sanitizing, checked on hand-built BTF and on the committed demo object,
//! whose fixed-up BTF the running kernel must accept (BTF_LOAD, root).

use object::{Object, ObjectSection, ObjectSymbol};
use tcbpf::btf::*;

fn object_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../bpf/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Fixes `btf` from the ELF file `elf` as the loader does.
fn fixup_from_elf(btf: &mut Btf, elf: &object::File) -> FixupReport {
    btf.fixup_datasecs(
        |sec| elf.section_by_name(sec).map(|s| s.size() as u32),
        |sec, var| {
            let index = elf.section_by_name(sec)?.index();
            elf.symbols()
                .find(|s| s.section_index() == Some(index) && s.name() == Ok(var))
                .map(|s| s.address() as u32)
        },
    )
    .unwrap()
}

#[test]
fn demo_object_datasecs_get_their_elf_sizes() {
    let data = object_bytes("demo.o");
    let elf = object::File::parse(&*data).unwrap();
    let mut btf = Btf::parse(elf.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
    let (_, maps) = btf.datasec(".maps").unwrap();
    assert_eq!(maps.size, 0, "clang leaves DATASEC sizes at 0");
    let report = fixup_from_elf(&mut btf, &elf);
    for name in [".maps", "license"] {
        let (_, sec) = btf.datasec(name).unwrap();
        let elf_size = elf.section_by_name(name).unwrap().size() as u32;
        assert_eq!(sec.size, elf_size, "{name}");
        assert!(sec.size > 0);
    }
    assert!(report.sized.contains(&(".maps".to_string(), 32)));
    assert!(report.sized.contains(&("license".to_string(), 4)));
}

#[test]
fn kernel_refuses_clang_btf_and_accepts_it_fixed_up() {
    tcbpf_testkit::require_root!();
    let data = object_bytes("demo.o");
    let elf = object::File::parse(&*data).unwrap();
    let raw = elf.section_by_name(".BTF").unwrap().data().unwrap();
    let err = tcbpf::sys::btf::load(raw).unwrap_err();
    assert!(err.log.contains("size"), "kernel log: {}", err.log);
    let mut btf = Btf::parse(raw).unwrap();
    fixup_from_elf(&mut btf, &elf);
    btf.sanitize_for_kernel().unwrap();
    let fd = tcbpf::sys::btf::load(&btf.to_bytes()).unwrap_or_else(|e| panic!("{e}\n{}", e.log));
    let back = tcbpf::sys::info::btf_data(&fd).unwrap();
    assert_eq!(Btf::parse(&back).unwrap().end_id(), btf.end_id());
}

/// `.data` with two globals clang placed at offset 0, listed out of order.
fn two_globals() -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let long = b.int("long", 8, true);
    let a = b.var("a", int, VarLinkage::GlobalAllocated);
    let c = b.var("c", long, VarLinkage::GlobalAllocated);
    let s = b.var("s", int, VarLinkage::Static);
    b.datasec(".data", 0, &[(c, 0, 8), (a, 0, 4), (s, 12, 4)]);
    b.build()
}

#[test]
fn variable_offsets_come_from_symbols_and_are_sorted() {
    let mut btf = two_globals();
    let report = btf
        .fixup_datasecs(
            |sec| (sec == ".data").then_some(16),
            |_, var| match var {
                "a" => Some(8),
                "c" => Some(0),
                _ => None,
            },
        )
        .unwrap();
    let (_, sec) = btf.datasec(".data").unwrap();
    assert_eq!(sec.size, 16);
    let placed: Vec<(String, u32)> = sec
        .vars
        .iter()
        .map(|v| (btf.name(v.ty).unwrap().to_string(), v.offset))
        .collect();
    assert_eq!(placed, [("c".into(), 0), ("a".into(), 8), ("s".into(), 12)]);
    assert_eq!(report.placed, [(".data".to_string(), "a".to_string(), 8)]);
}

#[test]
fn missing_section_or_symbol_is_named_in_the_error() {
    let mut btf = two_globals();
    let err = btf
        .fixup_datasecs(|_| None, |_, _| Some(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'.data'"), "{err}");
    let mut btf = two_globals();
    let err = btf
        .fixup_datasecs(|_| Some(16), |_, v| (v == "a").then_some(8))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "BTF variable 'c' in section '.data' has no ELF symbol");
    let mut btf = two_globals();
    let err = btf
        .fixup_datasecs(|_| Some(4), |_, _| Some(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("runs past section '.data'"), "{err}");
}

#[test]
fn empty_datasec_and_externs_are_sanitized_into_what_the_kernel_loads() {
    tcbpf_testkit::require_root!();
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let ext = b.var("ext", int, VarLinkage::GlobalExtern);
    let proto = b.func_proto(int, &[]);
    let _f = b.func("helper", proto, FuncLinkage::Extern);
    let empty = b.datasec(".bss", 0, &[]);
    let _ds = b.datasec(".data", 4, &[(ext, 0, 4)]);
    let mut btf = b.build();
    let err = tcbpf::sys::btf::load(&btf.to_bytes()).unwrap_err();
    assert!(err.log.contains("Linkage not supported"), "{}", err.log);
    let report = btf.sanitize_for_kernel().unwrap();
    assert_eq!(report.sanitized.len(), 3, "{:?}", report.sanitized);
    assert_eq!(btf.ty(empty).unwrap().kind.tag(), BtfKind::Struct);
    tcbpf::sys::btf::load(&btf.to_bytes()).unwrap_or_else(|e| panic!("{e}\n{}", e.log));
}

#[test]
fn zero_size_datasec_alone_is_refused_by_the_kernel_until_sanitized() {
    tcbpf_testkit::require_root!();
    let mut b = BtfBuilder::new();
    b.int("int", 4, true);
    b.datasec(".bss", 0, &[]);
    let mut btf = b.build();
    btf.fixup_datasecs(|_| None, |_, _| None).unwrap();
    let err = tcbpf::sys::btf::load(&btf.to_bytes()).unwrap_err();
    assert!(err.log.contains("size == 0"), "{}", err.log);
    btf.sanitize_for_kernel().unwrap();
    tcbpf::sys::btf::load(&btf.to_bytes()).unwrap_or_else(|e| panic!("{e}\n{}", e.log));
}

#[test]
fn every_committed_object_btf_loads_into_the_kernel_after_fixup() {
    tcbpf_testkit::require_root!();
    let dir = format!("{}/../bpf", env!("CARGO_MANIFEST_DIR"));
    let mut checked = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    paths.sort();
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let Some(raw) = elf.section_by_name(".BTF").and_then(|s| s.data().ok()) else {
            continue;
        };
        let mut btf = Btf::parse(raw).unwrap();
        fixup_from_elf(&mut btf, &elf);
        btf.sanitize_for_kernel().unwrap();
        if let Err(e) = tcbpf::sys::btf::load(&btf.to_bytes()) {
            panic!("{}: {e}\n{}", path.display(), e.log);
        }
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        checked.iter().any(|n| n == "core_classifier.o"),
        "{checked:?}"
    );
    assert!(checked.len() >= 5, "{checked:?}");
}

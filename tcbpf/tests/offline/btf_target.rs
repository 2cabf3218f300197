//! `TargetBtf` (the lazily decoded target BTF CO-RE resolves against) must
//! agree with `Btf::parse` on everything: the same blobs accepted, the same
//! error for the others (truncations, corrupt words, bad ids and name
//! offsets), the same type for every id, the same strings and the same
//! candidates by essential name; lookups out of range are errors.

use std::sync::Arc;

use tcbpf::btf::*;
use tcbpf::sys::mmap::MappedFile;

fn target(bytes: &[u8]) -> Result<TargetBtf> {
    TargetBtf::parse(Box::new(bytes.to_vec()))
}

/// Both parsers on one blob: same verdict, same error text, same types.
fn assert_agree(bytes: &[u8]) -> bool {
    let (full, lazy) = (Btf::parse(bytes), target(bytes));
    match (&full, &lazy) {
        (Ok(b), Ok(t)) => {
            assert_eq!(b.end_id(), t.end_id());
            for (id, ty) in b.all_types() {
                assert_eq!(&*TypeView::ty(t, id).unwrap(), ty, "type [{id}]");
                assert_eq!(
                    Btf::str_at(b, ty.name_off),
                    TypeView::str_at(t, ty.name_off)
                );
            }
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            false
        }
        _ => panic!(
            "Btf::parse gave {:?} but TargetBtf::parse gave {:?}",
            full.map(|b| b.end_id()),
            lazy.map(|t| t.end_id())
        ),
    }
}

/// One type of every kind, with names, members, values and parameters.
fn every_kind() -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let long = b.int("long", 8, true);
    let p = b.ptr(int);
    let td = b.typedef("myint", int);
    let c = b.constant(td);
    let arr = b.array(c, int, 4);
    let s = b.structure("task", 32, &[("pid", int, 0, 0), ("v", arr, 32, 0)]);
    b.union("u", 8, &[("a", long, 0, 0), ("b", p, 0, 0)]);
    b.enumeration("color", &[("RED", 0), ("BLUE", -1)]);
    b.enum64("big", &[("HUGE", i64::MAX)]);
    b.fwd("later", FwdKind::Union);
    let proto = b.func_proto(int, &[("t", s), ("", 0)]);
    b.func("run", proto, FuncLinkage::Global);
    let v = b.var("counter", long, VarLinkage::GlobalAllocated);
    b.datasec(".data", 8, &[(v, 0, 8)]);
    b.add("volatile_int", Kind::Volatile(int));
    b.add("", Kind::Restrict(p));
    b.add("float", Kind::Float(4));
    b.add(
        "tag",
        Kind::DeclTag(DeclTag {
            target: s,
            component_idx: 1,
            attribute: false,
        }),
    );
    b.add(
        "user",
        Kind::TypeTag(TypeTag {
            target: int,
            attribute: false,
        }),
    );
    b.structure("task___v2", 4, &[("pid", int, 0, 0)]);
    b.build()
}

#[test]
fn every_truncation_of_a_blob_fails_as_btf_parse_does() {
    let blob = every_kind().to_bytes();
    assert!(assert_agree(&blob), "the whole blob parses");
    for len in 0..blob.len() {
        assert!(!assert_agree(&blob[..len]), "{len} bytes must not parse");
    }
}

#[test]
fn every_corrupt_word_is_judged_as_btf_parse_does() {
    let blob = every_kind().to_bytes();
    let mut accepted = 0;
    for i in (0..blob.len() / 4).map(|w| w * 4) {
        let old = u32::from_le_bytes(blob[i..i + 4].try_into().unwrap());
        for v in [
            0,
            1,
            u32::MAX,
            old ^ 0x8000_0000,
            old ^ 0x0001_0000,
            old.wrapping_add(1),
            0x1f00_0000 | (old & 0xffff),
            0x0e00_0001,
            0x0c00_0003,
            500,
        ] {
            let mut d = blob.clone();
            d[i..i + 4].copy_from_slice(&v.to_le_bytes());
            accepted += assert_agree(&d) as u32;
        }
    }
    assert!(accepted > 0, "some corruptions stay valid BTF");
}

#[test]
fn bad_type_ids_and_name_offsets_are_the_errors_btf_parse_gives() {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    b.ptr(int);
    let good = b.build();
    let mut bad_id = good.clone();
    bad_id.ty_mut(2).unwrap().kind = Kind::Ptr(99);
    let err = target(&bad_id.to_bytes()).unwrap_err().to_string();
    assert_eq!(
        err,
        "BTF type [2] PTR refers to type id 99, but ids end at 3"
    );
    let mut bad_name = good.clone();
    bad_name.ty_mut(1).unwrap().name_off = 10_000;
    let err = target(&bad_name.to_bytes()).unwrap_err().to_string();
    assert_eq!(err, "BTF type [1] has bad name offset 10000");
    assert!(!assert_agree(&bad_id.to_bytes()));
    assert!(!assert_agree(&bad_name.to_bytes()));
}

#[test]
fn lookups_outside_the_blob_are_errors() {
    let btf = every_kind();
    let t = target(&btf.to_bytes()).unwrap();
    let end = t.end_id();
    assert_eq!(
        TypeView::ty(&t, end).unwrap_err(),
        Error::TypeIdOutOfRange { id: end, end }
    );
    assert_eq!(
        TypeView::ty(&t, u32::MAX).unwrap_err(),
        Error::TypeIdOutOfRange { id: u32::MAX, end }
    );
    assert_eq!(TypeView::ty(&t, 0).unwrap().kind, Kind::Void);
    assert_eq!(
        TypeView::str_at(&t, 1 << 30).unwrap_err(),
        Error::BadString(1 << 30)
    );
    // An offset inside a name reads its tail, as Btf does.
    let name_off = btf.ty(1).unwrap().name_off;
    assert_eq!(TypeView::str_at(&t, name_off + 1).unwrap(), "nt");
    assert_eq!(t.describe(end), format!("[{end}] (invalid)"));
    assert!(t.resolve_size(end).is_err());
}

#[test]
fn essential_name_candidates_match_btf_and_skip_non_types() {
    let btf = every_kind();
    let t = target(&btf.to_bytes()).unwrap();
    for name in [
        "task", "int", "run", "counter", ".data", "color", "later", "nope", "ta",
    ] {
        assert_eq!(
            TypeView::own_ids_by_essential_name(&t, name),
            btf.own_ids_by_essential_name(name),
            "{name}"
        );
    }
    let task = TypeView::own_ids_by_essential_name(&t, "task");
    assert_eq!(task.len(), 2, "task and task___v2");
    assert!(TypeView::own_ids_by_essential_name(&t, "run").is_empty());
    // Indexing names together gives what indexing them one by one gives.
    let batched = target(&btf.to_bytes()).unwrap();
    batched.index_essential_names(["task", "color", "nope", "task"]);
    for name in ["task", "color", "nope", "int"] {
        assert_eq!(
            TypeView::own_ids_by_essential_name(&batched, name),
            TypeView::own_ids_by_essential_name(&t, name)
        );
    }
}

#[test]
fn split_target_continues_base_ids_and_strings() {
    let base = Arc::new(every_kind());
    let mut m = BtfBuilder::split(base.clone());
    let int = base.find_by_name_kind("int", BtfKind::Int).unwrap();
    let own = m.structure("task", 4, &[("pid", int, 0, 0)]);
    let module = m.build();
    let tbase = Arc::new(target(&base.to_bytes()).unwrap());
    let t = TargetBtf::parse_split(Box::new(module.to_bytes()), tbase.clone()).unwrap();
    assert_eq!(t.first_id(), base.end_id());
    assert_eq!(t.end_id(), module.end_id());
    for (id, ty) in module.all_types() {
        assert_eq!(&*TypeView::ty(&t, id).unwrap(), ty);
        assert_eq!(
            module.str_at(ty.name_off).unwrap(),
            TypeView::str_at(&t, ty.name_off).unwrap()
        );
    }
    assert_eq!(TypeView::own_ids_by_essential_name(&t, "task"), vec![own]);
    assert_eq!(t.describe(own), "struct task");
    // A split blob is judged as Btf::parse_split judges it.
    let blob = module.to_bytes();
    for len in 0..blob.len() {
        let full = Btf::parse_split(&blob[..len], base.clone()).map(|_| ());
        let lazy =
            TargetBtf::parse_split(Box::new(blob[..len].to_vec()), tbase.clone()).map(|_| ());
        assert_eq!(full, lazy, "{len} bytes");
    }
}

#[test]
fn vmlinux_decodes_every_type_as_btf_parse_does() {
    let path = std::path::Path::new("/sys/kernel/btf/vmlinux");
    let bytes = std::fs::read(path).unwrap();
    let full = Btf::parse(&bytes).unwrap();
    let mapped = MappedFile::open(path).expect("Linux 6.16+ maps its BTF");
    assert_eq!(mapped.as_ref(), &bytes[..]);
    let t = TargetBtf::parse(Box::new(mapped)).unwrap();
    assert_eq!(t.end_id(), full.end_id());
    for (id, ty) in full.all_types() {
        assert_eq!(&*TypeView::ty(&t, id).unwrap(), ty, "type [{id}]");
    }
    let names = [
        "sk_buff",
        "__sk_buff",
        "iphdr",
        "task_struct",
        "bpf_ret_code",
        "pid_t",
    ];
    t.index_essential_names(names);
    for name in names {
        let ids = TypeView::own_ids_by_essential_name(&t, name);
        assert!(!ids.is_empty(), "{name}");
        assert_eq!(ids, full.own_ids_by_essential_name(name), "{name}");
        for id in ids {
            assert_eq!(t.describe(id), full.describe(id));
            assert_eq!(
                TypeView::resolve_size(&t, id).ok(),
                full.resolve_size(id).ok()
            );
        }
    }
}

#[test]
fn mapping_refuses_missing_and_empty_files() {
    let dir = std::env::temp_dir().join(format!("tcbpf-mmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let missing = MappedFile::open(&dir.join("missing")).unwrap_err();
    assert!(missing.to_string().contains("missing"), "{missing}");
    std::fs::write(dir.join("empty"), b"").unwrap();
    assert!(MappedFile::open(&dir.join("empty")).is_err());
    std::fs::write(dir.join("blob"), b"BTF bytes").unwrap();
    assert_eq!(
        MappedFile::open(&dir.join("blob")).unwrap().as_ref(),
        b"BTF bytes"
    );
}

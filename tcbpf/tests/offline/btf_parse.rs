//! BTF parsing, writing, lookups and `.maps` definitions, on hand-built
//! blobs, the committed demo object and the running kernel's BTF.

use std::sync::Arc;

use object::{Object, ObjectSection};
use tcbpf::btf::maps::{parse_map_def, ValuesKind};
use tcbpf::btf::*;

/// Index of the first differing byte (or the shorter length), None if equal.
fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

fn section(path: &str, name: &str) -> Vec<u8> {
    let data = std::fs::read(format!("{}/../bpf/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let obj = object::File::parse(&*data).unwrap();
    obj.section_by_name(name).unwrap().data().unwrap().to_vec()
}

/// One type of every kind, named where the kernel allows a name.
fn every_kind() -> Btf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let ptr = b.ptr(int);
    let arr = b.array(int, int, 3);
    let _st = b.structure("pair", 8, &[("a", int, 0, 0), ("b", int, 32, 3)]);
    let _un = b.union("either", 4, &[("x", int, 0, 0), ("y", ptr, 0, 0)]);
    let _en = b.enumeration("color", &[("RED", -1), ("GREEN", 7)]);
    let _fw = b.fwd("later", FwdKind::Union);
    let td = b.typedef("myint", int);
    let vol = b.add("", Kind::Volatile(td));
    let _co = b.constant(vol);
    let _re = b.add("", Kind::Restrict(ptr));
    let proto = b.func_proto(int, &[("x", int), ("", 0)]);
    let f = b.func("main", proto, FuncLinkage::Global);
    let v = b.var("counter", arr, VarLinkage::GlobalAllocated);
    let _ds = b.datasec(".data", 12, &[(v, 0, 12)]);
    let _fl = b.add("double", Kind::Float(8));
    let _dt = b.add(
        "tag",
        Kind::DeclTag(DeclTag {
            target: f,
            component_idx: -1,
            attribute: false,
        }),
    );
    let _tt = b.add(
        "user",
        Kind::TypeTag(TypeTag {
            target: int,
            attribute: true,
        }),
    );
    let _e64 = b.enum64("big", &[("HUGE", 1 << 40)]);
    b.build()
}

#[test]
fn every_kind_round_trips_through_bytes() {
    let btf = every_kind();
    let bytes = btf.to_bytes();
    let again = Btf::parse(&bytes).unwrap();
    assert_eq!(first_diff(&again.to_bytes(), &bytes), None);
    assert_eq!(again.end_id(), btf.end_id());
    let kinds: Vec<BtfKind> = again.own_types().map(|(_, t)| t.kind.tag()).collect();
    assert_eq!(kinds.len(), 19);
    for (id, t) in btf.own_types() {
        assert_eq!(again.ty(id).unwrap(), t, "type [{id}]");
        assert_eq!(again.name(id).unwrap(), btf.name(id).unwrap());
    }
    let color = again.find_by_name_kind("color", BtfKind::Enum).unwrap();
    let e = again.ty(color).unwrap().kind.enumeration().unwrap().clone();
    assert_eq!(e.values[0].value, -1);
    let big = again.find_by_name_kind("big", BtfKind::Enum64).unwrap();
    assert_eq!(
        again.ty(big).unwrap().kind.enumeration().unwrap().values[0].value,
        1 << 40
    );
    let pair = again.find_by_name_kind("pair", BtfKind::Struct).unwrap();
    let b_member = again.member(pair, "b").unwrap().unwrap();
    assert_eq!((b_member.bit_offset, b_member.bitfield_size), (32, 3));
}

#[test]
fn demo_object_btf_round_trips_byte_for_byte() {
    let raw = section("demo.o", ".BTF");
    let btf = Btf::parse(&raw).unwrap();
    assert_eq!(first_diff(&btf.to_bytes(), &raw), None);
    let skb = btf.find_by_name_kind("__sk_buff", BtfKind::Struct).unwrap();
    assert_eq!(btf.resolve_size(skb).unwrap(), 192);
    let data = btf.member(skb, "data").unwrap().unwrap();
    assert_eq!(data.bit_offset, 608);
    assert_eq!(btf.describe(skb), "struct __sk_buff");
}

#[test]
fn kernel_btf_parses_and_round_trips() {
    let raw = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let btf = Btf::parse(&raw).unwrap();
    assert_eq!(first_diff(&btf.to_bytes(), &raw), None);
    let iphdr = btf.find_by_name_kind("iphdr", BtfKind::Struct).unwrap();
    assert_eq!(btf.resolve_size(iphdr).unwrap(), 20);
    let daddr = btf.member(iphdr, "daddr").unwrap();
    // daddr sits in an anonymous union in recent kernels; saddr/daddr are at 12/16.
    if let Some(m) = daddr {
        assert_eq!(m.bit_offset, 128);
    }
    let u32_id = btf.find_by_name_kind("__u32", BtfKind::Typedef).unwrap();
    let int = btf.skip_mods_and_typedefs(u32_id).unwrap();
    assert_eq!(btf.name(int).unwrap(), "unsigned int");
    assert_eq!(btf.resolve_size(u32_id).unwrap(), 4);
}

#[test]
fn split_btf_continues_ids_and_strings_after_its_base() {
    let base = Arc::new(every_kind());
    let mut m = BtfBuilder::split(base.clone());
    let int = base.find_by_name_kind("int", BtfKind::Int).unwrap();
    let s = m.structure("module_thing", 4, &[("v", int, 0, 0)]);
    assert_eq!(s, base.end_id());
    let module = m.build();
    let bytes = module.to_bytes();
    let mut again = Btf::parse_split(&bytes, base.clone()).unwrap();
    assert_eq!(again.first_id(), base.end_id());
    assert_eq!(again.name(s).unwrap(), "module_thing");
    assert_eq!(again.name(int).unwrap(), "int");
    assert_eq!(again.find_by_name_kind("int", BtfKind::Int), Some(int));
    assert_eq!(again.member(s, "v").unwrap().unwrap().ty, int);
    assert!(
        again.ty_mut(int).is_err(),
        "base types are read-only through the split BTF"
    );
    // A split blob alone is not a valid standalone BTF: its ids point below it.
    assert!(Btf::parse(&bytes).is_err());
}

fn header(type_len: u32, str_len: u32) -> Vec<u8> {
    let mut h = vec![0x9f, 0xeb, 1, 0];
    for v in [24, 0, type_len, type_len, str_len] {
        h.extend_from_slice(&u32::to_le_bytes(v));
    }
    h
}

#[test]
fn malformed_blobs_are_refused_with_the_reason() {
    let good = every_kind().to_bytes();
    assert!(matches!(
        Btf::parse(&good[..10]),
        Err(Error::Truncated { .. })
    ));
    let mut bad_magic = good.clone();
    bad_magic[0] = 0;
    assert!(matches!(Btf::parse(&bad_magic), Err(Error::BadHeader(_))));
    let mut big_endian = good.clone();
    big_endian.swap(0, 1);
    assert!(Btf::parse(&big_endian)
        .unwrap_err()
        .to_string()
        .contains("big-endian"));
    let mut past_end = good.clone();
    past_end[20] = 0xff;
    assert!(matches!(Btf::parse(&past_end), Err(Error::BadHeader(_))));
    // One INT record cut short.
    let mut cut = header(12, 1);
    cut.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0]);
    assert!(matches!(
        Btf::parse(&cut),
        Err(Error::Truncated {
            what: "INT data",
            ..
        })
    ));
    // Kind 31 does not exist.
    let mut unknown = header(12, 1);
    unknown.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 31, 4, 0, 0, 0, 0]);
    assert_eq!(
        Btf::parse(&unknown).unwrap_err(),
        Error::UnknownKind { id: 1, kind: 31 }
    );
    // A pointer to type 7 in a one-type blob.
    let mut dangling = header(12, 1);
    dangling.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 7, 0, 0, 0, 0]);
    let err = Btf::parse(&dangling).unwrap_err().to_string();
    assert!(err.contains("refers to type id 7"), "{err}");
    // A name offset beyond the strings.
    let mut bad_name = header(12, 1);
    bad_name.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0]);
    assert!(Btf::parse(&bad_name)
        .unwrap_err()
        .to_string()
        .contains("bad name offset 9"));
}

#[test]
fn lookups_fail_cleanly_on_bad_ids() {
    let btf = every_kind();
    let end = btf.end_id();
    assert_eq!(
        btf.ty(end).unwrap_err(),
        Error::TypeIdOutOfRange { id: end, end }
    );
    assert!(btf.resolve_size(0).is_err());
    assert!(btf.str_at(10_000).is_err());
    let int = btf.find_by_name_kind("int", BtfKind::Int).unwrap();
    assert!(btf.member(int, "x").is_err());
}

#[test]
fn cyclic_typedefs_are_an_error_not_a_hang() {
    let mut b = BtfBuilder::new();
    let a = b.typedef("a", 2);
    let _b = b.typedef("b", a);
    let btf = Btf::parse(&b.build().to_bytes()).unwrap();
    assert!(btf.skip_mods_and_typedefs(a).is_err());
    assert!(btf.resolve_size(a).is_err());
}

#[test]
fn demo_map_definition_reads_type_key_value_and_max_entries() {
    let btf = Btf::parse(&section("demo.o", ".BTF")).unwrap();
    let (_, maps) = btf.datasec(".maps").unwrap();
    let var = maps.vars[0].ty;
    assert_eq!(btf.name(var).unwrap(), "proto_stats");
    let def = parse_map_def(&btf, var, "proto_stats").unwrap();
    assert_eq!(def.map_type, Some(1));
    assert_eq!(def.key_size, Some(4));
    assert_eq!(def.value_size, Some(16));
    assert_eq!(def.max_entries, Some(256));
    assert_eq!(btf.describe(def.value_type.unwrap()), "struct counter");
    assert_eq!(def.def_size, 32);
    assert!(def.inner.is_none() && def.values.is_none());
}

/// `__uint(name, v)` as libbpf's headers write it.
fn uint(b: &mut BtfBuilder, int: TypeId, v: u32) -> TypeId {
    let arr = b.array(int, int, v);
    b.ptr(arr)
}

#[test]
fn map_in_map_and_prog_array_values_are_decoded() {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let t_array = uint(&mut b, int, 2);
    let k = b.ptr(int);
    let one = uint(&mut b, int, 1);
    let inner = b.structure(
        "",
        24,
        &[
            ("type", t_array, 0, 0),
            ("key", k, 64, 0),
            ("max_entries", one, 128, 0),
        ],
    );
    let inner_ptr = b.ptr(inner);
    let values = b.array(inner_ptr, int, 0);
    let t_hom = uint(&mut b, int, 13);
    let eight = uint(&mut b, int, 8);
    let pin = uint(&mut b, int, 1);
    let outer = b.structure(
        "",
        32,
        &[
            ("type", t_hom, 0, 0),
            ("max_entries", eight, 64, 0),
            ("pinning", pin, 128, 0),
            ("values", values, 192, 0),
        ],
    );
    let var = b.var("outer", outer, VarLinkage::GlobalAllocated);
    let proto = b.func_proto(int, &[]);
    let proto_ptr = b.ptr(proto);
    let progs = b.array(proto_ptr, int, 0);
    let t_prog = uint(&mut b, int, 3);
    let jmp = b.structure("", 16, &[("type", t_prog, 0, 0), ("values", progs, 64, 0)]);
    let btf = b.build();

    let def = parse_map_def(&btf, var, "outer").unwrap();
    assert_eq!(
        (def.map_type, def.max_entries, def.pinning),
        (Some(13), Some(8), Some(1))
    );
    let slots = def.values.unwrap();
    assert_eq!((slots.offset, slots.kind), (24, ValuesKind::Maps));
    let inner = def.inner.unwrap();
    assert_eq!(
        (inner.map_type, inner.key_size, inner.max_entries),
        (Some(2), Some(4), Some(1))
    );

    let def = parse_map_def(&btf, jmp, "jmp").unwrap();
    assert_eq!(def.values.unwrap().kind, ValuesKind::Programs);
    assert!(def.inner.is_none());
}

#[test]
fn bad_map_definitions_name_the_map_and_field() {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let four = uint(&mut b, int, 4);
    let eight = uint(&mut b, int, 8);
    let k = b.ptr(int);
    let unknown = b.structure("", 8, &[("colour", four, 0, 0)]);
    let conflict = b.structure("", 16, &[("key", k, 0, 0), ("key_size", eight, 64, 0)]);
    let not_ptr = b.structure("", 4, &[("type", int, 0, 0)]);
    let btf = b.build();
    let e = parse_map_def(&btf, unknown, "m1").unwrap_err().to_string();
    assert_eq!(e, "map 'm1': unknown field 'colour'");
    let e = parse_map_def(&btf, conflict, "m2").unwrap_err().to_string();
    assert_eq!(e, "map 'm2': conflicting key size 4 != 8");
    let e = parse_map_def(&btf, not_ptr, "m3").unwrap_err().to_string();
    assert!(e.starts_with("map 'm3': field 'type' is int"), "{e}");
    assert!(parse_map_def(&btf, int, "m4").is_err());
}

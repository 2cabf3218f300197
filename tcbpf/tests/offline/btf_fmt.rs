//! Map keys and values decoded by their BTF type: integers, bitfields,
//! enums, char arrays, nested structs and arrays, data sections; printed
//! as C-like text and JSON.

use object::{Object, ObjectSection};
use tcbpf::btf::fmt::{decode, BtfValue};
use tcbpf::btf::*;

#[test]
fn demo_counter_value_prints_its_fields() {
    let data = std::fs::read(format!("{}/../bpf/demo.o", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let btf = Btf::parse(elf.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
    let counter = btf.find_by_name_kind("counter", BtfKind::Struct).unwrap();
    let mut bytes = 3u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&192u64.to_le_bytes());
    let v = decode(&btf, counter, &bytes).unwrap();
    assert_eq!(v.to_string(), "{.packets = 3, .bytes = 192}");
    assert_eq!(v.to_json(), r#"{"packets":3,"bytes":192}"#);
    let u32_id = btf.find_by_name_kind("__u32", BtfKind::Typedef).unwrap();
    assert_eq!(
        decode(&btf, u32_id, &17u32.to_le_bytes()).unwrap(),
        BtfValue::Uint(17)
    );
    let e = decode(&btf, counter, &bytes[..10]).unwrap_err().to_string();
    assert_eq!(e, "struct counter needs 16 bytes, got 10");
}

#[test]
fn bitfields_enums_strings_arrays_and_signs_decode() {
    let mut b = BtfBuilder::new();
    let u8t = b.int("unsigned char", 1, false);
    let i16t = b.int("short", 2, true);
    let chr = b.add(
        "char",
        Kind::Int(Int {
            size: 1,
            encoding: int_encoding::SIGNED | int_encoding::CHAR,
            offset: 0,
            bits: 8,
        }),
    );
    let boolean = b.add(
        "_Bool",
        Kind::Int(Int {
            size: 1,
            encoding: int_encoding::BOOL,
            offset: 0,
            bits: 8,
        }),
    );
    let color = b.enumeration("color", &[("RED", 0), ("BLUE", -2)]);
    let name = b.array(chr, u8t, 8);
    let pair = b.array(i16t, u8t, 2);
    let s = b.structure(
        "rec",
        20,
        &[
            ("ihl", u8t, 0, 4),
            ("version", u8t, 4, 4),
            ("delta", i16t, 16, 0),
            ("color", color, 32, 0),
            ("name", name, 64, 0),
            ("pair", pair, 128, 0),
        ],
    );
    let flag = b.structure("flag", 1, &[("on", boolean, 0, 0)]);
    let btf = b.build();
    let mut bytes = vec![0x45, 0, 0xfe, 0xff];
    bytes.extend_from_slice(&(-2i32).to_le_bytes());
    bytes.extend_from_slice(b"eth0\0\0\0\0");
    bytes.extend_from_slice(&7i16.to_le_bytes());
    bytes.extend_from_slice(&(-7i16).to_le_bytes());
    let v = decode(&btf, s, &bytes).unwrap();
    assert_eq!(
        v.to_string(),
        r#"{.ihl = 5, .version = 4, .delta = -2, .color = BLUE, .name = "eth0", .pair = [7, -7]}"#
    );
    assert_eq!(
        v.to_json(),
        r#"{"ihl":5,"version":4,"delta":-2,"color":"BLUE","name":"eth0","pair":[7,-7]}"#
    );
    assert_eq!(
        decode(&btf, flag, &[1]).unwrap().to_string(),
        "{.on = true}"
    );
    // An enum value without a name prints as a number; binary chars as numbers.
    let mut other = bytes.clone();
    other[4..8].copy_from_slice(&5i32.to_le_bytes());
    other[8] = 0x01;
    let v = decode(&btf, s, &other).unwrap();
    assert!(
        v.to_string()
            .contains(".color = 5, .name = [1, 116, 104, 48, 0, 0, 0, 0]"),
        "{v}"
    );
}

#[test]
fn data_sections_decode_their_variables() {
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let u64t = b.int("unsigned long long", 8, false);
    let hits = b.var("hits", u64t, VarLinkage::GlobalAllocated);
    let limit = b.var("limit", u32t, VarLinkage::Static);
    let sec = b.datasec(".data", 16, &[(hits, 0, 8), (limit, 8, 4)]);
    let btf = b.build();
    let mut bytes = 9u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    assert_eq!(
        decode(&btf, sec, &bytes).unwrap().to_string(),
        "{.hits = 9, .limit = 100}"
    );
}

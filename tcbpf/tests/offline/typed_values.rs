//! `value::typed` without the kernel: JSON ↔ bytes by BTF types built by
//! hand and from the committed typed_maps fixture, errors naming member
//! paths, per-CPU buffers, entries, NDJSON and `-j` arrays, sums and
//! integer leaves.

use std::sync::Arc;

use object::{Object, ObjectSection};
use serde_json::json;
use tcbpf::btf::fmt::BtfValue;
use tcbpf::btf::*;
use tcbpf::value::typed::{int_fields, parse_entries, sum_values, MapTypes};

fn fixture_btf() -> Arc<Btf> {
    let data = std::fs::read(tcbpf_testkit::fixture("typed_maps.o")).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    Arc::new(Btf::parse(elf.section_by_name(".BTF").unwrap().data().unwrap()).unwrap())
}

fn types(btf: &Arc<Btf>, key: &str, value: &str, cpus: Option<usize>) -> MapTypes {
    let find = |name: &str| -> TypeId {
        [
            BtfKind::Struct,
            BtfKind::Typedef,
            BtfKind::Enum,
            BtfKind::Int,
        ]
        .iter()
        .find_map(|&k| btf.find_by_name_kind(name, k))
        .unwrap_or_else(|| panic!("no type {name}"))
    };
    let (k, v) = (find(key), find(value));
    let ks = btf.resolve_size(k).unwrap() as usize;
    let vs = btf.resolve_size(v).unwrap() as usize;
    MapTypes::new(btf.clone(), Some(k), Some(v), ks, vs, cpus).unwrap()
}

#[test]
fn struct_values_round_trip_through_json_and_name_their_members() {
    let btf = fixture_btf();
    let t = types(&btf, "__u32", "counter", None);
    let key = t.encode_key(&json!(17)).unwrap();
    assert_eq!(key, 17u32.to_le_bytes());
    let value = t
        .encode_value(&json!({"packets": 5, "bytes": 6}), false)
        .unwrap();
    let mut want = 5u64.to_le_bytes().to_vec();
    want.extend_from_slice(&6u64.to_le_bytes());
    assert_eq!(value, want);
    assert_eq!(
        t.entry_to_json(&key, &value).unwrap(),
        r#"{"key":17,"value":{"packets":5,"bytes":6}}"#
    );
    assert_eq!(t.decode_key(&key).unwrap(), BtfValue::Uint(17));
    let back = serde_json::from_str(&t.entry_to_json(&key, &value).unwrap()).unwrap();
    assert_eq!(t.entry_from_json(&back, false).unwrap(), (key, value));

    let err = |v: serde_json::Value| t.encode_value(&v, false).unwrap_err().to_string();
    assert_eq!(
        err(json!({"packets": 5})),
        "value: missing member 'bytes' (give it, or use 'partial' to zero-fill)"
    );
    assert_eq!(
        err(json!({"packets": 5, "bytes": 6, "drops": 1})),
        "value: unknown member 'drops' of struct counter"
    );
    assert_eq!(
        err(json!({"packets": "many", "bytes": 6})),
        "value.packets: expected an integer for unsigned long long, got a string"
    );
    assert_eq!(
        err(json!({"packets": -1, "bytes": 6})),
        "value.packets: -1 is out of range for u64"
    );
    assert_eq!(
        t.encode_key(&json!(1u64 << 32)).unwrap_err().to_string(),
        "key: 4294967296 is out of range for u32"
    );
    let partial = t.encode_value(&json!({"bytes": 6}), true).unwrap();
    assert_eq!(&partial[..8], &[0; 8]);
}

#[test]
fn nested_structs_arrays_unions_enums_chars_and_bitfields() {
    let btf = fixture_btf();
    let nested = types(&btf, "__u32", "nested", None);
    let v = json!({"id": 1, "in": {"port": 80, "proto": 6, "delta": -3},
                   "hist": [1, 2, 3], "u": {"as_u32": 0x0a0b0c0d, "as_bytes": [13, 12, 11, 10]}});
    let bytes = nested.encode_value(&v, false).unwrap();
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[4..8], &[80, 0, 6, 0xfd]);
    assert_eq!(
        nested.decode_value(&bytes).unwrap().to_json(),
        r#"{"id":1,"in":{"port":80,"proto":6,"delta":-3},"hist":[1,2,3],"u":{"as_u32":168496141,"as_bytes":[13,12,11,10]}}"#
    );
    let e = nested
        .encode_value(&json!({"id": 1, "in": {"port": 80, "proto": 300, "delta": 0}, "hist": [1,2,3], "u": {"as_u32": 0}}), false)
        .unwrap_err();
    assert_eq!(e.to_string(), "value.in.proto: 300 is out of range for u8");
    let e = nested
        .encode_value(&json!({"id": 1, "in": {"port": 80, "proto": 3, "delta": 0}, "hist": [1,2], "u": {"as_u32": 0}}), false)
        .unwrap_err();
    assert_eq!(e.to_string(), "value.hist: expected 3 elements, got 2");
    let e = nested
        .encode_value(&json!({"id": 1, "in": {"port": 80, "proto": 3, "delta": 0}, "hist": [1,2,"x"], "u": {"as_u32": 0}}), false)
        .unwrap_err();
    assert_eq!(e.path, "value.hist[2]");

    let verdicts = types(&btf, "__u32", "verdict", None);
    assert_eq!(
        verdicts.encode_value(&json!("V_REDIRECT"), false).unwrap(),
        7u32.to_le_bytes()
    );
    assert_eq!(
        verdicts
            .decode_value(&2u32.to_le_bytes())
            .unwrap()
            .to_string(),
        "V_DROP"
    );
    assert_eq!(
        verdicts
            .encode_value(&json!("V_MAYBE"), false)
            .unwrap_err()
            .to_string(),
        "value: unknown enumerator 'V_MAYBE' of enum verdict"
    );

    let bits = types(&btf, "__u32", "bits", None);
    let v =
        json!({"ihl": 5, "version": 4, "flags": 2, "offset": -100, "tos": 255, "v": "V_REDIRECT"});
    let bytes = bits.encode_value(&v, false).unwrap();
    assert_eq!(bytes[0], 0x45);
    assert_eq!(
        bits.decode_value(&bytes).unwrap().to_json(),
        r#"{"ihl":5,"version":4,"flags":2,"offset":-100,"tos":255,"v":"V_REDIRECT"}"#
    );
    let e = bits
        .encode_value(
            &json!({"ihl": 16, "version": 4, "flags": 2, "offset": 0, "tos": 0, "v": 0}),
            false,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "value.ihl: 16 is out of range for u4");
    let e = bits
        .encode_value(
            &json!({"ihl": 1, "version": 4, "flags": 2, "offset": 4096, "tos": 0, "v": 0}),
            false,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "value.offset: 4096 is out of range for i13");
}

#[test]
fn char_arrays_are_strings_that_must_fit() {
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let chr = b.add(
        "char",
        Kind::Int(Int {
            size: 1,
            encoding: int_encoding::SIGNED | int_encoding::CHAR,
            offset: 0,
            bits: 8,
        }),
    );
    let name = b.array(chr, u32t, 8);
    let btf = Arc::new(b.build());
    let t = MapTypes::new(btf, Some(u32t), Some(name), 4, 8, None).unwrap();
    let v = t.encode_value(&json!("eth0"), false).unwrap();
    assert_eq!(v, b"eth0\0\0\0\0");
    assert_eq!(t.decode_value(&v).unwrap().to_json(), r#""eth0""#);
    assert_eq!(
        t.encode_value(&json!("too-long-name"), false)
            .unwrap_err()
            .to_string(),
        "value: string of 13 bytes does not fit in char[8]"
    );
}

#[test]
fn per_cpu_values_are_one_per_cpu_or_one_for_all_and_sum() {
    let btf = fixture_btf();
    let t = types(&btf, "__u32", "counter", Some(3));
    assert_eq!(t.value_buf_size(), 48);
    let all = t
        .encode_values(&json!({"packets": 1, "bytes": 2}), false)
        .unwrap();
    assert_eq!(t.decode_values(&all).unwrap().len(), 3);
    let each = json!([{"cpu": 0, "value": {"packets": 1, "bytes": 10}},
                      {"cpu": 1, "value": {"packets": 2, "bytes": 20}},
                      {"cpu": 2, "value": {"packets": 3, "bytes": 30}}]);
    let buf = t.encode_values(&each, false).unwrap();
    let key = 9u32.to_le_bytes();
    let text = t.entry_to_json(&key, &buf).unwrap();
    assert_eq!(
        text,
        r#"{"key":9,"values":[{"cpu":0,"value":{"packets":1,"bytes":10}},{"cpu":1,"value":{"packets":2,"bytes":20}},{"cpu":2,"value":{"packets":3,"bytes":30}}]}"#
    );
    let back = t
        .entry_from_json(&serde_json::from_str(&text).unwrap(), false)
        .unwrap();
    assert_eq!(back, (key.to_vec(), buf.clone()));
    let sum = sum_values(&t.decode_values(&buf).unwrap()).unwrap();
    assert_eq!(sum.to_json(), r#"{"packets":6,"bytes":60}"#);
    assert_eq!(
        int_fields(&sum),
        vec![("packets".to_string(), 6), ("bytes".to_string(), 60)]
    );
    let missing = json!([{"cpu": 0, "value": {"packets": 1, "bytes": 10}}]);
    assert_eq!(
        t.encode_values(&missing, false).unwrap_err().to_string(),
        "values: cpu 1 is missing (3 possible CPUs; use 'partial' to zero-fill)"
    );
    let bad = json!([{"cpu": 5, "value": {}}]);
    assert_eq!(
        t.encode_values(&bad, false).unwrap_err().to_string(),
        "values[0]: 'cpu' must be a number below 3"
    );
}

#[test]
fn data_sections_and_maps_without_btf() {
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let u64t = b.int("unsigned long long", 8, false);
    let chr = b.add(
        "char",
        Kind::Int(Int {
            size: 1,
            encoding: int_encoding::SIGNED | int_encoding::CHAR,
            offset: 0,
            bits: 8,
        }),
    );
    let arr = b.array(chr, u32t, 8);
    let hits = b.var("hits", u64t, VarLinkage::GlobalAllocated);
    let label = b.var("label", arr, VarLinkage::GlobalAllocated);
    let sec = b.datasec(".data", 16, &[(hits, 0, 8), (label, 8, 8)]);
    let fixed = Arc::new(b.build());
    let size = 16;
    let t = MapTypes::new(fixed, None, Some(sec), 4, size, None).unwrap();
    let v = t
        .encode_value(&json!({"hits": 5, "label": "edge"}), false)
        .unwrap();
    assert_eq!(
        t.decode_value(&v).unwrap().to_json(),
        r#"{"hits":5,"label":"edge"}"#
    );
    assert_eq!(t.decode_key(&[0; 4]).unwrap(), BtfValue::Uint(0));
    assert!(!t.key_is_typed() && t.key_is_scalar() && t.value_is_typed());

    let raw = MapTypes::untyped(4, 3, None);
    assert_eq!(raw.encode_key(&json!(7)).unwrap(), [7, 0, 0, 0]);
    let v = raw.encode_value(&json!(["0x01", 2, "ff"]), false).unwrap();
    assert_eq!(v, [1, 2, 255]);
    assert_eq!(
        raw.decode_value(&v).unwrap().to_json(),
        r#"["0x01","0x02","0xff"]"#
    );
    assert_eq!(
        raw.encode_value(&json!(5), false).unwrap_err().to_string(),
        "value: expected an array of 3 bytes, got a number"
    );
}

#[test]
fn pointers_and_functions_cannot_be_printed_and_say_raw() {
    let mut b = BtfBuilder::new();
    let u64t = b.int("unsigned long long", 8, false);
    let ptr = b.ptr(u64t);
    let s = b.structure("holder", 8, &[("p", ptr, 0, 0)]);
    let btf = Arc::new(b.build());
    let t = MapTypes::new(btf, Some(u64t), Some(s), 8, 8, None).unwrap();
    assert!(!t.value_is_typed());
    let e = t.decode_value(&[0; 8]).unwrap_err().to_string();
    assert!(
        e.starts_with("value: a pointer (") && e.ends_with("use 'raw' for its bytes"),
        "{e}"
    );
    assert!(t.encode_value(&json!({"p": 1}), false).is_err());
    // Sizes that disagree with the map's are refused.
    let b2 = Arc::new(Btf::new());
    assert!(MapTypes::new(b2, Some(99), None, 4, 4, None).is_err());
}

#[test]
fn entries_come_as_a_dump_array_or_one_object_per_line() {
    let lines = "{\"key\":1,\"value\":2}\n\n{\"key\":3,\"value\":4}\n";
    assert_eq!(parse_entries(lines).unwrap().len(), 2);
    let arr = "[{\"key\":1,\"value\":2},\n {\"key\":3,\"value\":4}]";
    assert_eq!(parse_entries(arr).unwrap().len(), 2);
    let e = parse_entries("{\"key\":1,\"value\":2}\n{\"key\":3,").unwrap_err();
    assert!(e.to_string().starts_with("line 2: bad JSON"), "{e}");
    let t = MapTypes::untyped(4, 8, None);
    let e = t
        .entry_from_json(&json!({"key": 1, "val": 2}), false)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown field 'val' (expected key and value)"
    );
}

/// xorshift: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The fast NDJSON path gives exactly what parsing to `serde_json::Value`
/// then `entry_from_json` gives: the same bytes, or an error.
#[test]
fn ndjson_lines_encode_the_same_by_the_fast_path_and_by_values() {
    let btf = fixture_btf();
    let maps = [
        ("__u32", "counter", None),
        ("__u32", "nested", None),
        ("__u32", "bits", None),
        ("__u32", "verdict", None),
        ("__u32", "quad", None),
        ("flow", "__u64", None),
        ("__u32", "counter", Some(2)),
    ];
    let ints = [
        "0",
        "1",
        "-1",
        "255",
        "256",
        "65535",
        "65536",
        "-128",
        "-129",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "1.5",
        "1e3",
        "01",
        "-0",
        "\"7\"",
        "true",
        "null",
        " 3 ",
        "\"V_DROP\"",
        "\"eth0\"",
        "[1,2,3]",
        "[1,2]",
        "{}",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut compared = (0, 0);
    for (k, v, cpus) in maps {
        let t = types(&btf, k, v, cpus);
        // Start from a valid line, then replace numbers and names at random.
        let key = t.decode_key(&vec![0; t.key_size()]).unwrap().to_json();
        let value = t.decode_value(&vec![0; t.value_size()]).unwrap().to_json();
        let base = format!("{{\"key\":{key},\"value\":{value}}}");
        for _ in 0..3000 {
            let mut line = String::new();
            let mut chars = base.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_ascii_digit() && rng.next() % 3 == 0 {
                    while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                        chars.next();
                    }
                    line.push_str(rng.pick(&ints));
                } else if c == ',' && rng.next() % 40 == 0 {
                    line.push_str(rng.pick(&[",", " , ", ",\"extra\":1,", ",\"key\":1,"]));
                } else {
                    line.push(c);
                }
            }
            if rng.next() % 20 == 0 {
                line = line.replacen("\"value\"", "\"values\"", 1);
            }
            let (mut kb, mut vb) = (Vec::new(), Vec::new());
            let fast = t.entry_from_json_line(line.as_bytes(), false, &mut kb, &mut vb);
            let slow = serde_json::from_str::<serde_json::Value>(&line)
                .map_err(|e| e.to_string())
                .and_then(|j| t.entry_from_json(&j, false).map_err(|e| e.to_string()));
            match (&fast, &slow) {
                (Ok(()), Ok((sk, sv))) => {
                    assert_eq!((&kb, &vb), (sk, sv), "{line}");
                    compared.0 += 1;
                }
                (Err(_), Err(_)) => compared.1 += 1,
                _ => panic!("{line}: fast {fast:?}, values {slow:?}"),
            }
        }
    }
    assert!(compared.0 > 1000 && compared.1 > 1000, "{compared:?}");
}

#[test]
fn an_array_member_off_a_byte_boundary_is_refused_by_both_encoders() {
    // BTF as one flipped bit could leave it: `__u8 pad[3]` four bits into
    // its struct. The general encoder refuses it; the fast NDJSON path
    // once placed it at the byte below instead.
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let u8t = b.int("unsigned char", 1, false);
    let pad = b.array(u8t, u32t, 3);
    let event = b.structure("event", 8, &[("seq", u32t, 0, 0), ("pad", pad, 36, 0)]);
    let btf = Arc::new(b.build());
    let t = MapTypes::new(btf, Some(u32t), Some(event), 4, 8, None).unwrap();
    let line = br#"{"key":0,"value":{"seq":1,"pad":[0,0,0]}}"#;
    let (mut kb, mut vb) = (Vec::new(), Vec::new());
    let fast = t.entry_from_json_line(line, false, &mut kb, &mut vb);
    let slow = t.entry_from_json(&serde_json::from_slice(line).unwrap(), false);
    assert!(slow.is_err(), "{slow:?}");
    assert!(fast.is_err(), "the fast path wrote {vb:?}");
}

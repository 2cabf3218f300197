//! Anonymous struct and union members, as C names them: their own
//! members are members of the enclosing struct (`v.a`, `v.x`), printed
//! inline in JSON and text by both printers (compiled and `BtfValue`),
//! taken back by both encoders (`serde_json` and the NDJSON fast path),
//! recursively; a name that then appears twice is an error naming it.

use std::sync::Arc;

use serde_json::json;
use tcbpf::btf::*;
use tcbpf::value::typed::{int_fields, write_style, MapTypes, Printer, Style};

/// `struct v { __u64 packets; union { __u32 a; __u32 b; };
/// struct { __u16 x, y; }; };` and, in `w`, an anonymous struct holding
/// an anonymous union: `struct w { __u32 id; struct { __u16 lo;
/// union { __u16 hi; __s16 shi; }; }; __u8 :4; __u8 f:4; };`
pub struct Types {
    pub btf: Arc<Btf>,
    v: TypeId,
    w: TypeId,
    /// `struct dup { __u32 a; union { __u32 a; __u32 c; }; }`
    dup: TypeId,
}

pub fn types() -> Types {
    let mut b = BtfBuilder::new();
    let u8t = b.int("unsigned char", 1, false);
    let u16t = b.int("unsigned short", 2, false);
    let s16t = b.int("short", 2, true);
    let u32t = b.int("unsigned int", 4, false);
    let u64t = b.int("unsigned long long", 8, false);
    let ab = b.union("", 4, &[("a", u32t, 0, 0), ("b", u32t, 0, 0)]);
    let xy = b.structure("", 4, &[("x", u16t, 0, 0), ("y", u16t, 16, 0)]);
    let v = b.structure(
        "v",
        16,
        &[("packets", u64t, 0, 0), ("", ab, 64, 0), ("", xy, 96, 0)],
    );
    let his = b.union("", 2, &[("hi", u16t, 0, 0), ("shi", s16t, 0, 0)]);
    let lohi = b.structure("", 4, &[("lo", u16t, 0, 0), ("", his, 16, 0)]);
    let w = b.structure(
        "w",
        12,
        &[
            ("id", u32t, 0, 0),
            ("", lohi, 32, 0),
            ("", u8t, 64, 4),
            ("f", u8t, 68, 4),
        ],
    );
    let ac = b.union("", 4, &[("a", u32t, 0, 0), ("c", u32t, 0, 0)]);
    let dup = b.structure("dup", 8, &[("a", u32t, 0, 0), ("", ac, 32, 0)]);
    Types {
        btf: Arc::new(b.build()),
        v,
        w,
        dup,
    }
}

fn map_types(t: &Types, value: TypeId) -> MapTypes {
    let size = t.btf.resolve_size(value).unwrap() as usize;
    MapTypes::new(t.btf.clone(), None, Some(value), 4, size, None).unwrap()
}

fn v_bytes() -> Vec<u8> {
    let mut b = 1u64.to_le_bytes().to_vec();
    b.extend(2u32.to_le_bytes());
    b.extend(3u16.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    b
}

/// What the compiled printer writes, or `None` when it gave up.
fn compiled(t: &Types, id: TypeId, bytes: &[u8], style: Style) -> Option<String> {
    let p = Printer::new(&t.btf, id)?;
    let mut out = Vec::new();
    p.write(bytes, style, &mut out)
        .then(|| String::from_utf8(out).unwrap())
}

/// What decoding to a `BtfValue` then printing writes.
fn general(t: &Types, id: TypeId, bytes: &[u8], style: Style) -> String {
    let v = tcbpf::btf::fmt::decode(&t.btf, id, bytes).unwrap();
    let mut out = Vec::new();
    write_style(&v, style, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn anonymous_members_print_inline_in_json_and_text_by_both_printers() {
    let t = types();
    let bytes = v_bytes();
    let json = r#"{"packets":1,"a":2,"b":2,"x":3,"y":4}"#;
    let text = "{packets: 1, a: 2, b: 2, x: 3, y: 4}";
    assert_eq!(general(&t, t.v, &bytes, Style::Json), json);
    assert_eq!(general(&t, t.v, &bytes, Style::Text), text);
    assert_eq!(
        compiled(&t, t.v, &bytes, Style::Json).as_deref(),
        Some(json)
    );
    assert_eq!(
        compiled(&t, t.v, &bytes, Style::Text).as_deref(),
        Some(text)
    );
    let m = map_types(&t, t.v);
    let mut out = Vec::new();
    m.write_value(&bytes, Style::Json, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), json);
    assert_eq!(
        m.entry_to_json(&7u32.to_le_bytes(), &bytes).unwrap(),
        format!(r#"{{"key":7,"value":{json}}}"#)
    );
    // C's display form, and the integer leaves (metrics, health) by the
    // names C gives them.
    assert_eq!(
        tcbpf::btf::fmt::decode(&t.btf, t.v, &bytes)
            .unwrap()
            .to_string(),
        "{.packets = 1, .a = 2, .b = 2, .x = 3, .y = 4}"
    );
    let leaves = int_fields(&m.decode_value(&bytes).unwrap());
    let names: Vec<&str> = leaves.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["packets", "a", "b", "x", "y"]);
}

#[test]
fn anonymous_inside_anonymous_inlines_recursively_and_unnamed_bitfields_are_padding() {
    let t = types();
    // id 9, lo 0x0102, hi 0xfffe (shi -2), 4 bits of padding set, f 5.
    let bytes = [9, 0, 0, 0, 0x02, 0x01, 0xfe, 0xff, 0x5f, 0, 0, 0];
    let json = r#"{"id":9,"lo":258,"hi":65534,"shi":-2,"f":5}"#;
    assert_eq!(general(&t, t.w, &bytes, Style::Json), json);
    assert_eq!(
        compiled(&t, t.w, &bytes, Style::Json).as_deref(),
        Some(json)
    );
    assert_eq!(
        compiled(&t, t.w, &bytes, Style::Text).as_deref(),
        Some("{id: 9, lo: 258, hi: 65534, shi: -2, f: 5}")
    );
    let m = map_types(&t, t.w);
    // Back: the padding bits are zero, as a C initializer leaves them.
    let back = m
        .encode_value(&serde_json::from_str(json).unwrap(), false)
        .unwrap();
    assert_eq!(back, [9, 0, 0, 0, 0x02, 0x01, 0xfe, 0xff, 0x50, 0, 0, 0]);
    // A member of an anonymous union may be left out (as a union's);
    // one of an anonymous struct outside any union may not.
    assert_eq!(
        m.encode_value(&json!({"id": 1, "lo": 2, "f": 3}), false)
            .unwrap(),
        [1, 0, 0, 0, 2, 0, 0, 0, 0x30, 0, 0, 0]
    );
    assert_eq!(
        m.encode_value(&json!({"id": 1, "hi": 2, "f": 3}), false)
            .unwrap_err()
            .to_string(),
        "value: missing member 'lo' (give it, or use 'partial' to zero-fill)"
    );
    assert_eq!(
        m.encode_value(&json!({"id": 1, "lo": 70000, "f": 3}), false)
            .unwrap_err()
            .to_string(),
        "value.lo: 70000 is out of range for u16"
    );
}

#[test]
fn what_json_printed_for_anonymous_members_encodes_back_by_both_encoders() {
    let t = types();
    let m = map_types(&t, t.v);
    let bytes = v_bytes();
    let printed = m.decode_value(&bytes).unwrap().to_json();
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(m.encode_value(&value, false).unwrap(), bytes);
    // NDJSON: the fast path (it declines unions) and the Value path agree.
    let line = format!(r#"{{"key":1,"value":{printed}}}"#);
    let (mut k, mut v) = (Vec::new(), Vec::new());
    m.entry_from_json_line(line.as_bytes(), false, &mut k, &mut v)
        .unwrap();
    assert_eq!((k, v), (1u32.to_le_bytes().to_vec(), bytes.clone()));
    // An anonymous struct alone takes the fast path: the same bytes.
    let mut b = BtfBuilder::new();
    let u16t = b.int("unsigned short", 2, false);
    let xy = b.structure("", 4, &[("x", u16t, 0, 0), ("y", u16t, 16, 0)]);
    let s = b.structure("s", 6, &[("n", u16t, 0, 0), ("", xy, 16, 0)]);
    let m = MapTypes::new(Arc::new(b.build()), None, Some(s), 4, 6, None).unwrap();
    let (mut k, mut v) = (Vec::new(), Vec::new());
    m.entry_from_json_line(
        br#"{"key":2,"value":{"n":1,"x":2,"y":3}}"#,
        false,
        &mut k,
        &mut v,
    )
    .unwrap();
    assert_eq!(v, [1, 0, 2, 0, 3, 0]);
    // Nested under the anonymous member's (empty) name is no member.
    assert_eq!(
        m.encode_value(&json!({"n": 1, "": {"x": 2, "y": 3}}), false)
            .unwrap_err()
            .to_string(),
        "value: missing member 'x' (give it, or use 'partial' to zero-fill)"
    );
    assert_eq!(
        m.encode_value(&json!({"n": 1, "x": 2, "y": 3, "z": 4}), false)
            .unwrap_err()
            .to_string(),
        "value: unknown member 'z' of struct s"
    );
}

#[test]
fn a_name_twice_after_inlining_is_an_error_naming_it() {
    let t = types();
    let why = "member 'a' of struct dup appears twice (the members of its anonymous structs and unions are its own, as in C)";
    assert_eq!(t.btf.flat_members(t.dup).unwrap_err().to_string(), why);
    let e = tcbpf::btf::fmt::decode(&t.btf, t.dup, &[0; 8]).unwrap_err();
    assert!(e.to_string().contains(why), "{e}");
    assert!(Printer::new(&t.btf, t.dup).is_none());
    let m = map_types(&t, t.dup);
    let said = format!("value: {why}; use 'raw' for its bytes");
    assert_eq!(m.decode_value(&[0; 8]).unwrap_err().to_string(), said);
    let mut out = Vec::new();
    assert_eq!(
        m.write_value(&[0; 8], Style::Json, &mut out)
            .unwrap_err()
            .to_string(),
        said
    );
    assert!(out.is_empty());
    assert_eq!(
        m.encode_value(&json!({"a": 1, "c": 2}), false)
            .unwrap_err()
            .to_string(),
        said
    );
}

#[test]
fn flat_members_give_offsets_from_the_outer_struct_and_whether_bytes_are_shared() {
    let t = types();
    let got: Vec<(&str, u32, bool)> = t
        .btf
        .flat_members(t.w)
        .unwrap()
        .iter()
        .map(|m| (m.name, m.bit_offset, m.shared))
        .collect();
    assert_eq!(
        got,
        [
            ("id", 0, false),
            ("lo", 32, false),
            ("hi", 48, true),
            ("shi", 48, true),
            ("f", 68, false)
        ]
    );
    assert!(t
        .btf
        .flat_members(
            t.btf
                .find_by_name_kind("unsigned int", BtfKind::Int)
                .unwrap()
        )
        .is_err());
    // Many members (past the pairwise check): a repeat inside an anonymous
    // member at the end is found too; without it, none is.
    let mut b = BtfBuilder::new();
    let u8t = b.int("unsigned char", 1, false);
    let names: Vec<String> = (0..20).map(|k| format!("m{k}")).collect();
    let direct: Vec<(&str, TypeId, u32, u8)> = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.as_str(), u8t, k as u32 * 8, 0))
        .collect();
    let tail = b.structure("", 1, &[("m7", u8t, 0, 0)]);
    let other = b.structure("", 1, &[("m20", u8t, 0, 0)]);
    let mut with = direct.clone();
    with.push(("", tail, 160, 0));
    let many = b.structure("many", 21, &with);
    let mut without = direct;
    without.push(("", other, 160, 0));
    let fine = b.structure("fine", 21, &without);
    let btf = b.build();
    assert_eq!(
        btf.flat_members(many).unwrap_err().to_string(),
        "member 'm7' of struct many appears twice (the members of its anonymous structs and unions are its own, as in C)"
    );
    assert_eq!(btf.flat_members(fine).unwrap().len(), 21);
}

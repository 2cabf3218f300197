//! A value type with anonymous struct and union members, as a real map's
//! BTF (loaded into the kernel, the map made with it): `-j` and text print
//! their members inline under the names C gives them (`v.a`, `v.x`), what
//! `-j` printed feeds back through `update … value json`, member words
//! and `load json`, `map add field` finds a member of an anonymous struct,
//! and a type whose inlined names repeat is an error naming the member.
//! Run as root; the maps die with their descriptors.

use crate::typed_support::{k32, run_with_stdin, tcbpf};

use serde_json::json;
use std::os::fd::{AsFd, AsRawFd};
use tcbpf::btf::BtfBuilder;
use tcbpf::sys::{map, BtfFd, MapFd};

/// `struct v { __u64 packets; union { __u32 a; __u32 b; };
/// struct { __u16 x, y; }; };` with a `__u32` key, and
/// `struct dup { __u32 a; union { __u32 a; __u32 c; }; }`, and
/// `struct cnt { __u64 total; struct { __u32 hits; __u32 bytes; }; }`.
struct Types {
    btf: BtfFd,
    u32t: u32,
    v: u32,
    dup: u32,
    cnt: u32,
}

fn types() -> Types {
    let mut b = BtfBuilder::new();
    let u16t = b.int("unsigned short", 2, false);
    let u32t = b.int("unsigned int", 4, false);
    let u64t = b.int("unsigned long long", 8, false);
    let ab = b.union("", 4, &[("a", u32t, 0, 0), ("b", u32t, 0, 0)]);
    let xy = b.structure("", 4, &[("x", u16t, 0, 0), ("y", u16t, 16, 0)]);
    let v = b.structure(
        "v",
        16,
        &[("packets", u64t, 0, 0), ("", ab, 64, 0), ("", xy, 96, 0)],
    );
    let ac = b.union("", 4, &[("a", u32t, 0, 0), ("c", u32t, 0, 0)]);
    let dup = b.structure("dup", 8, &[("a", u32t, 0, 0), ("", ac, 32, 0)]);
    let hm = b.structure("", 8, &[("hits", u32t, 0, 0), ("bytes", u32t, 32, 0)]);
    let cnt = b.structure("cnt", 16, &[("total", u64t, 0, 0), ("", hm, 64, 0)]);
    let btf = tcbpf::sys::btf::load(&b.build().to_bytes()).expect("BTF_LOAD");
    Types {
        btf,
        u32t,
        v,
        dup,
        cnt,
    }
}

fn hash(t: &Types, value: u32, value_size: u32) -> MapFd {
    map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size,
        max_entries: 8,
        name: &tcbpf_testkit::unique("anon"),
        btf: Some((t.btf.as_fd(), t.u32t, value)),
        ..Default::default()
    })
    .expect("a hash map with the BTF value type")
}

/// packets 1, a = b 2, x 3, y 4.
fn v_bytes(packets: u64, ab: u32, x: u16, y: u16) -> Vec<u8> {
    let mut b = packets.to_ne_bytes().to_vec();
    b.extend(ab.to_ne_bytes());
    b.extend(x.to_ne_bytes());
    b.extend(y.to_ne_bytes());
    b
}

fn raw(m: &MapFd, key: u32) -> Option<Vec<u8>> {
    let mut v = vec![0u8; 16];
    match map::lookup(m, &k32(key), &mut v, 0) {
        Ok(()) => Some(v),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("lookup {key}: {e}"),
    }
}

/// `tcbpf ARGS` with `FD` standing for `fd N` of `m`: code, stdout, stderr.
fn run(m: &MapFd, args: &str) -> (Option<i32>, String, String) {
    let fd = m.as_raw_fd();
    let words: Vec<String> = args
        .replace("FD", &format!("fd {fd}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    let out = tcbpf(&[fd], &words).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(m: &MapFd, args: &str) -> String {
    let (code, out, err) = run(m, args);
    assert_eq!(code, Some(0), "tcbpf {args}: {err}");
    out
}

#[test]
fn anonymous_members_print_inline_and_what_json_printed_updates_back_equal() {
    tcbpf_testkit::require_root!();
    let t = types();
    let m = hash(&t, t.v, 16);
    map::update(&m, &k32(1), &v_bytes(1, 2, 3, 4), 0).unwrap();

    // -j: the members inline, every key once.
    let printed = ok(&m, "-j map lookup FD key 1");
    assert_eq!(
        printed.trim_end(),
        r#"{"key":1,"value":{"packets":1,"a":2,"b":2,"x":3,"y":4}}"#
    );
    let dump: serde_json::Value = serde_json::from_str(&ok(&m, "-j map dump FD")).unwrap();
    assert_eq!(
        dump[0]["formatted"],
        json!({"key": 1, "value": {"packets": 1, "a": 2, "b": 2, "x": 3, "y": 4}})
    );
    // Text, likewise.
    assert_eq!(
        ok(&m, "map lookup FD key 1"),
        "key: 1  value: {packets: 1, a: 2, b: 2, x: 3, y: 4}\n"
    );

    // What -j printed, fed back, writes the same bytes and reads back equal.
    let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
    ok(
        &m,
        &format!("map update FD key json 2 value json {}", value["value"]),
    );
    assert_eq!(raw(&m, 2), raw(&m, 1));
    let again: serde_json::Value = serde_json::from_str(&ok(&m, "-j map lookup FD key 2")).unwrap();
    assert_eq!(again["value"], value["value"]);

    // Member words take the inlined names; a union's member may be left out.
    ok(&m, "map update FD key 3 value packets 5 a 6 x 7 y 8");
    assert_eq!(raw(&m, 3), Some(v_bytes(5, 6, 7, 8)));
    ok(&m, "map update FD key 4 value packets 5 b 9 x 7 y 8");
    assert_eq!(raw(&m, 4), Some(v_bytes(5, 9, 7, 8)));
    // A member of an anonymous struct outside a union may not.
    let (code, _, err) = run(&m, "map update FD key 5 value packets 5 a 6 x 7");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("value: missing member 'y'"), "{err}");
    assert_eq!(raw(&m, 5), None);

    // The whole -j dump loads back into a second map of the same type:
    // the same entries, byte for byte.
    let copy = hash(&t, t.v, 16);
    let dumped = ok(&m, "-j map dump FD");
    let cmd = tcbpf(
        &[copy.as_raw_fd()],
        &[
            "map".into(),
            "load".into(),
            "fd".into(),
            copy.as_raw_fd().to_string(),
            "json".into(),
            "from".into(),
            "-".into(),
        ],
    );
    let (code, _, err) = run_with_stdin(cmd, &dumped);
    assert_eq!(code, 0, "load json: {err}");
    for key in 1..=4 {
        assert_eq!(raw(&copy, key), raw(&m, key), "key {key}");
    }
    let by_key = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut entries = v.as_array().unwrap().clone();
        entries.sort_by_key(|e| e["formatted"]["key"].as_u64());
        entries
    };
    assert_eq!(by_key(&ok(&copy, "-j map dump FD")), by_key(&dumped));

    // map add: x is a member of the value (in an anonymous struct), a
    // lies in an anonymous union, whose members share bytes: refused.
    let add = hash(&t, t.v, 16);
    map::update(&add, &k32(1), &v_bytes(1, 2, 3, 4), 0).unwrap();
    let (code, _, err) = run(&add, "map add FD key 1 field packets value 10");
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&add, "map add FD key 1 field a value 1");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("field 'a' of struct v lies in an anonymous union"),
        "{err}"
    );
    assert_eq!(raw(&add, 1), Some(v_bytes(11, 2, 3, 4)));
    let cnt = hash(&t, t.cnt, 16);
    map::update(&cnt, &k32(1), &[0; 16], 0).unwrap();
    let (code, _, err) = run(&cnt, "map add FD key 1 field bytes value 3");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        ok(&cnt, "-j map lookup FD key 1").trim_end(),
        r#"{"key":1,"value":{"total":0,"hits":0,"bytes":3}}"#
    );
    // A member of an anonymous struct named like a TYPE word (`bytes`)
    // starts member words, as a direct member does.
    ok(&cnt, "map update FD key 2 value bytes 4 hits 5 total 6");
    assert_eq!(
        ok(&cnt, "map lookup FD key 2"),
        "key: 2  value: {total: 6, hits: 5, bytes: 4}\n"
    );
}

#[test]
fn a_member_name_twice_after_inlining_is_an_error_naming_it() {
    tcbpf_testkit::require_root!();
    let t = types();
    let m = hash(&t, t.dup, 8);
    map::update(&m, &k32(1), &[1, 0, 0, 0, 2, 0, 0, 0], 0).unwrap();
    let fd = m.as_raw_fd();
    let why = format!(
        "tcbpf: fd {fd}: value: member 'a' of struct dup appears twice (the members of its anonymous structs and unions are its own, as in C); use 'raw' for its bytes\n"
    );
    for args in ["map dump FD", "-j map lookup FD key 1"] {
        let (code, out, err) = run(&m, args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (Some(2), "", why.as_str()),
            "{args}"
        );
    }
    let (code, _, err) = run(&m, r#"map update FD key 2 value json {"a":1,"c":2}"#);
    let why = why.replace(&format!("fd {fd}: "), "");
    assert_eq!((code, err.as_str()), (Some(2), why.as_str()));
    assert_eq!(
        ok(&m, "map lookup FD key 1 raw"),
        "key: 01 00 00 00  value: 01 00 00 00 02 00 00 00\n"
    );
    let mut v = [0u8; 8];
    assert!(map::lookup(&m, &k32(2), &mut v, 0).is_err_and(|e| e.is_not_found()));
}

//! Keys and values given in a map's own types (run as root against the
//! typed_maps fixture): `key json`/`value json`, `key 17`, member words
//! `value packets 5 bytes 6` (nested `in.port 80`), enums by name, char
//! arrays as text, per-CPU and global data; bpftool's bare bytes keep
//! working; bad input exits 2 naming the member path and writes nothing.
//! Every write is checked through the sys layer.

use crate::typed_support;

use serde_json::json;
use std::os::fd::AsRawFd;
use typed_support::*;

#[test]
fn member_words_scalar_keys_and_json_write_the_bytes() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    f.ok("map update @counters key 17 value packets 5 bytes 6");
    assert_eq!(f.raw("counters", &k32(17)), Some(u64s(&[5, 6])));
    f.ok(r#"map update @counters key json 18 value json {"packets":1,"bytes":2}"#);
    assert_eq!(f.raw("counters", &k32(18)), Some(u64s(&[1, 2])));
    // bpftool's bare bytes, and typed DATA words, as before.
    f.ok("map update @counters key 7 0 0 0 value packets 9 bytes 9");
    assert_eq!(f.raw("counters", &k32(7)), Some(u64s(&[9, 9])));
    f.ok("map update @counters key u32 8 value u64 3 u64 4");
    assert_eq!(f.raw("counters", &k32(8)), Some(u64s(&[3, 4])));
    // What -j lookup prints feeds back.
    let got = f.json("-j map lookup @counters key 17");
    let value = got["value"].to_string();
    f.ok(&format!(
        "map update @counters key json {} value json {value}",
        19
    ));
    assert_eq!(f.raw("counters", &k32(19)), Some(u64s(&[5, 6])));
    assert_eq!(
        f.ok("map lookup @counters key 19"),
        "key: 19  value: {packets: 5, bytes: 6}\n"
    );
    f.ok("map delete @counters key 19");
    assert_eq!(f.raw("counters", &k32(19)), None);
    let (code, err) = f.fails("map lookup @counters key 19");
    assert_eq!(
        (code, err.trim_end()),
        (
            1,
            format!(
                "tcbpf: fd {}: key 19 not found",
                f.fd("counters").as_raw_fd()
            )
            .as_str()
        )
    );
    // partial zero-fills the members not given.
    f.ok("map update @counters key 20 value bytes 6 partial");
    assert_eq!(f.raw("counters", &k32(20)), Some(u64s(&[0, 6])));
}

#[test]
fn nested_members_enums_strings_bitfields_struct_keys_and_global_data() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    f.ok("map update @nesteds key 1 value id 1 in.port 80 in.proto 6 in.delta -3 hist [1,2,3] u.as_u32 16909060");
    let v = f.raw("nesteds", &k32(1)).unwrap();
    assert_eq!(&v[..8], &[1, 0, 0, 0, 80, 0, 6, 0xfd]);
    assert_eq!(&v[20..24], &0x0102_0304u32.to_ne_bytes());

    f.ok("map update @verdicts key 1 value V_DROP");
    assert_eq!(
        f.raw("verdicts", &k32(1)),
        Some(2u32.to_ne_bytes().to_vec())
    );
    f.ok("map update @verdicts key 2 value 7");
    assert_eq!(
        f.raw("verdicts", &k32(2)),
        Some(7u32.to_ne_bytes().to_vec())
    );

    f.ok("map update @names key 3 value eth1");
    assert_eq!(f.raw("names", &k32(3)).unwrap()[..5], *b"eth1\0");

    f.ok("map update @bitfields key 4 value ihl 5 version 4 flags 2 offset -100 tos 255 v V_REDIRECT");
    let offset = (-100i64 as u64) & 0x1fff;
    let bits: u64 = 5 | 4 << 4 | 2 << 8 | offset << 11 | 255 << 24 | 7 << 32;
    assert_eq!(
        f.raw("bitfields", &k32(4)),
        Some(bits.to_ne_bytes().to_vec())
    );

    f.ok("map update @flows key saddr 167772161 sport 443 proto 6 pad 0 value 9");
    let mut flow = 0x0a00_0001u32.to_ne_bytes().to_vec();
    flow.extend_from_slice(&443u16.to_ne_bytes());
    flow.extend_from_slice(&[6, 0]);
    assert_eq!(f.raw("flows", &flow), Some(9u64.to_ne_bytes().to_vec()));
    assert_eq!(
        f.ok("map lookup @flows key saddr 167772161 sport 443 proto 6 pad 0"),
        "key: {saddr: 167772161, sport: 443, proto: 6, pad: 0}  value: 9\n"
    );

    f.ok("map update @.data key 0 value hits 9 label core");
    let mut want = 9u64.to_ne_bytes().to_vec();
    want.extend_from_slice(b"core\0\0\0\0");
    assert_eq!(f.raw(".data", &k32(0)), Some(want));
}

#[test]
fn per_cpu_values_one_for_all_or_one_per_cpu() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let cpus = tcbpf::sys::possible_cpus().unwrap();
    f.ok("map update @pcpu key 1 value packets 1 bytes 2");
    assert_eq!(f.raw("pcpu", &k32(1)), Some(u64s(&[1, 2]).repeat(cpus)));
    let each: Vec<_> = (0..cpus)
        .map(|c| json!({"cpu": c, "value": {"packets": c, "bytes": 0}}))
        .collect();
    let each = serde_json::to_string(&each).unwrap();
    f.ok(&format!("map update @pcpu key 2 value json {each}"));
    let want: Vec<u8> = (0..cpus as u64).flat_map(|c| u64s(&[c, 0])).collect();
    assert_eq!(f.raw("pcpu", &k32(2)), Some(want));
}

#[test]
fn bad_typed_input_exits_2_naming_the_member_and_writes_nothing() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let cases = [
        ("map update @counters key 1 value packets 5", "value: missing member 'bytes' (give it, or use 'partial' to zero-fill)"),
        ("map update @counters key 1 value packets 5 bytes 6 drops 1", "value: unknown member 'drops' of struct counter"),
        ("map update @counters key 1 value packets five bytes 6", "value.packets: expected an integer for unsigned long long, got a string"),
        ("map update @counters key 1 value packets 5 bytes", "value: member 'bytes' has no value (expected NAME VALUE pairs)"),
        ("map update @nesteds key 1 value id 1 in.port 70000 in.proto 6 in.delta 0 hist [1,2,3] u.as_u32 0", "value.in.port: 70000 is out of range for u16"),
        ("map update @nesteds key 1 value id 1 in.port 1 in.proto 6 in.delta 0 hist [1,2] u.as_u32 0", "value.hist: expected 3 elements, got 2"),
        ("map update @verdicts key 1 value V_MAYBE", "value: unknown enumerator 'V_MAYBE' of enum verdict"),
        ("map update @names key 1 value this-name-is-too-long", "value: string of 21 bytes does not fit in char[16]"),
        ("map update @bitfields key 1 value ihl 16 version 0 flags 0 offset 0 tos 0 v 0", "value.ihl: 16 is out of range for u4"),
        ("map update @counters key 4294967296 value packets 1 bytes 1", "key: 4294967296 is out of range for u32"),
        ("map update @counters key json {\"a\":1} value packets 1 bytes 1", "key: expected an integer for unsigned int, got an object"),
        ("map update @counters key 1 value json {bad", "value: bad JSON: key must be a string at line 1 column 2"),
    ];
    for (args, want) in cases {
        let (code, err) = f.fails(args);
        assert_eq!(
            (code, err.trim_end()),
            (2, format!("tcbpf: {want}").as_str()),
            "{args}"
        );
    }
    assert_eq!(f.raw("counters", &k32(1)), None);
    assert_eq!(f.raw("nesteds", &k32(1)), None);
}

#[test]
fn maps_without_btf_take_json_and_bare_bytes() {
    tcbpf_testkit::require_root!();
    let m = tcbpf_testkit::hash_map(&tcbpf_testkit::unique("p"), 4, 3, 4);
    let fd = m.as_raw_fd();
    let run = |args: &str| {
        let mut words = vec!["map".to_string()];
        words.extend(
            args.replace("FD", &format!("fd {fd}"))
                .split_whitespace()
                .map(String::from),
        );
        let out = tcbpf(&[fd], &words).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(r#"update FD key json 5 value json ["0x01",2,"ff"]"#).0,
        Some(0)
    );
    let mut v = [0u8; 3];
    tcbpf::sys::map::lookup(&m, &k32(5), &mut v, 0).unwrap();
    assert_eq!(v, [1, 2, 255]);
    assert_eq!(run("update FD key 6 0 0 0 value 1 2 3").0, Some(0));
    // Without BTF a lone '6' is one byte, as before: a size error.
    let (code, err) = run("update FD key 6 value 1 2 3");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("key: expected 4 bytes, given 1"), "{err}");
}

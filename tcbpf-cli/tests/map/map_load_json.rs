//! `tcbpf map load MAP json` (run as root against the typed_maps fixture):
//! `-j dump` → `load json` → `-j dump` round-trips exactly for every kind
//! of typed map (per-CPU included); NDJSON from a file or standard input;
//! a bad entry anywhere writes nothing and names its line and member;
//! `replace` makes the map equal to the input and reports the counts.

use crate::typed_support;

use serde_json::{json, Value};
use tcbpf_testkit::TempDir;
use typed_support::*;

fn sorted(v: Value) -> Vec<Value> {
    let mut a = v.as_array().cloned().unwrap_or_default();
    a.sort_by_key(|e| e["key"].to_string());
    a
}

fn load_stdin(f: &Fixture, args: &str, input: &str) -> (i32, String, String) {
    run_with_stdin(f.cmd(args), input)
}

#[test]
fn dump_json_loads_back_exactly_into_a_map_of_the_same_types() {
    tcbpf_testkit::require_root!();
    let a = Fixture::load();
    let b = Fixture::load();
    let cpus = tcbpf::sys::possible_cpus().unwrap() as u64;
    for k in 0..50u32 {
        a.ok(&format!(
            "map update @counters key {k} value packets {k} bytes {}",
            k * 100
        ));
        a.ok(&format!(
            "map update @nesteds key {k} value id {k} in.port {} in.proto 6 in.delta -{} hist [{k},1,2] u.as_u32 {}",
            k + 1000,
            k % 100,
            k * 7
        ));
        let each: Vec<Value> = (0..cpus)
            .map(|c| json!({"cpu": c, "value": {"packets": c + k as u64, "bytes": c * 2}}))
            .collect();
        a.ok(&format!(
            "map update @pcpu key {k} value json {}",
            serde_json::to_string(&each).unwrap()
        ));
        a.ok(&format!("map update @names key {k} value n{k}"));
        a.ok(&format!("map update @bitfields key {k} value ihl {} version 4 flags 1 offset -{k} tos {k} v V_DROP", k % 16));
    }
    a.ok("map update @verdicts key 2 value V_REDIRECT");
    a.ok("map update @.data key 0 value hits 77 label core");
    let dir = TempDir::new("loadjson");
    for map in [
        "counters",
        "nesteds",
        "pcpu",
        "names",
        "bitfields",
        "verdicts",
        ".data",
    ] {
        let dump = a.ok(&format!("-j map dump @{map}"));
        let file = dir.join(format!("{map}.json"));
        std::fs::write(&file, &dump).unwrap();
        b.ok(&format!("map load @{map} json from {}", file.display()));
        let again = b.json(&format!("-j map dump @{map}"));
        let first: Value = serde_json::from_str(&dump).unwrap();
        assert_eq!(sorted(again), sorted(first), "{map}");
    }
    // Checked through the sys layer too.
    assert_eq!(b.raw("counters", &k32(9)), Some(u64s(&[9, 900])));
    let pc = b.raw("pcpu", &k32(3)).unwrap();
    assert_eq!(&pc[16..32], &u64s(&[4, 2])[..], "cpu 1 of key 3");
}

#[test]
fn ndjson_from_standard_input_and_bad_lines_write_nothing() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let input = "{\"key\":1,\"value\":{\"packets\":1,\"bytes\":10}}\n\n{\"key\":2,\"value\":{\"packets\":2,\"bytes\":20}}\n";
    let (code, _, err) = load_stdin(&f, "map load @counters json", input);
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.raw("counters", &k32(2)), Some(u64s(&[2, 20])));
    let bad = [
        ("{\"key\":3,\"value\":{\"packets\":3,\"bytes\":30}}\n{\"key\":4,\"value\":{\"packets\":-4,\"bytes\":40}}\n",
         "tcbpf: line 2: value.packets: -4 is out of range for u64"),
        ("{\"key\":3,\"value\":{\"packets\":3,\"bytes\":30}}\n{\"key\":4,\"value\":{\"packets\":4}}\n",
         "tcbpf: line 2: value: missing member 'bytes' (give it, or use 'partial' to zero-fill)"),
        ("{\"key\":3,\"value\":{\"packets\":3,\"bytes\":30}}\n{\"key\":4,\n",
         "tcbpf: line 2: bad JSON: EOF while parsing a value at line 1 column 9"),
        ("[{\"key\":3,\"value\":{\"packets\":3,\"bytes\":30}},{\"key\":\"x\",\"value\":{\"packets\":3,\"bytes\":30}}]",
         "tcbpf: entry 2: key: expected an integer for unsigned int, got a string"),
        ("{\"key\":3,\"value\":{\"packets\":3,\"bytes\":30},\"extra\":1}\n",
         "tcbpf: line 1: unknown field 'extra' (expected key and value)"),
    ];
    for (input, want) in bad {
        let (code, _, err) = load_stdin(&f, "map load @counters json", input);
        assert_eq!((code, err.trim_end()), (2, want), "{input}");
        assert_eq!(f.raw("counters", &k32(3)), None, "nothing written: {input}");
    }
    let (code, _, err) = load_stdin(
        &f,
        "map load @counters json partial",
        "{\"key\":5,\"value\":{\"bytes\":50}}\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.raw("counters", &k32(5)), Some(u64s(&[0, 50])));
}

#[test]
fn replace_makes_the_map_equal_to_the_file_and_reports_counts() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    for k in 1..=5u32 {
        f.ok(&format!(
            "map update @counters key {k} value packets {k} bytes 0"
        ));
    }
    // 1, 2 unchanged; 3 changed; 6 added; 4, 5 removed.
    let input = "{\"key\":1,\"value\":{\"packets\":1,\"bytes\":0}}\n{\"key\":2,\"value\":{\"packets\":2,\"bytes\":0}}\n{\"key\":3,\"value\":{\"packets\":30,\"bytes\":0}}\n{\"key\":6,\"value\":{\"packets\":6,\"bytes\":6}}\n";
    let (code, out, err) = load_stdin(&f, "map load @counters json replace", input);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "added 1, changed 1, unchanged 2, removed 2\n");
    let want: Vec<Value> = input
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        sorted(f.dump_typed("@counters")),
        sorted(Value::Array(want))
    );
    assert_eq!(f.raw("counters", &k32(4)), None);
    let (code, out, _) = load_stdin(&f, "-j map load @counters json replace", input);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"added": 0, "changed": 0, "unchanged": 4, "removed": 0})
    );
    let dir = TempDir::new("loadjson");
    let failures = tcbpf_testkit::schema_failures(&dir.join(""), &[("map load", out)]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A bad line: nothing deleted, nothing written.
    let (code, _, _) = load_stdin(
        &f,
        "map load @counters json replace",
        "{\"key\":1,\"value\":{\"packets\":1,\"bytes\":0}}\nnot json\n",
    );
    assert_eq!(code, 2);
    assert_eq!(f.json("-j map dump @counters").as_array().unwrap().len(), 4);
}

#[test]
fn typed_word_load_takes_replace_too() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    for k in 1..=3u32 {
        f.ok(&format!(
            "map update @counters key {k} value packets {k} bytes 0"
        ));
    }
    let (code, out, err) = load_stdin(
        &f,
        "map load @counters key u32 value u64 u64 replace",
        "1 1 0\n2 20 0\n7 7 7\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "added 1, changed 1, unchanged 1, removed 1\n");
    assert_eq!(f.raw("counters", &k32(3)), None);
    assert_eq!(f.raw("counters", &k32(7)), Some(u64s(&[7, 7])));
    assert_eq!(f.json("-j map dump @counters").as_array().unwrap().len(), 3);
}

/// A `-j dump` is one line, and past 1 MiB it used to be refused as a
/// line without a newline ("line 1 is longer than 1048576 bytes"): in a
/// JSON array the bound is per element. Still bounded: one element past
/// 1 MiB, or an array that never closes its first element, is an error.
#[test]
fn a_dump_past_one_mib_loads_back_and_one_huge_element_is_refused() {
    tcbpf_testkit::require_root!();
    let fs = tcbpf_testkit::Bpffs::new();
    let dir = TempDir::new("loadjson-big");
    let run =
        |args: &[&str]| tcbpf_testkit::tcbpf(env!("CARGO_BIN_EXE_tcbpf"), args, Some(&fs.path));
    let (a, b) = (fs.join("a"), fs.join("b"));
    for pin in [&a, &b] {
        tcbpf_testkit::ok(run(&[
            "map",
            "create",
            "type",
            "hash",
            "key",
            "4",
            "value",
            "8",
            "entries",
            "60000",
            "pin",
            tcbpf_testkit::s(pin),
        ]));
    }
    let (a, b) = (tcbpf_testkit::s(&a), tcbpf_testkit::s(&b));
    let lines: String = (0..60_000u32).map(|k| format!("{k} {}\n", k * 3)).collect();
    let load = run(&["map", "load", "pinned", a, "key", "u32", "value", "u64"]);
    let (code, _, err) = run_with_stdin(load, &lines);
    assert_eq!(code, 0, "{err}");
    let dump = tcbpf_testkit::ok(run(&[
        "-j", "map", "dump", "pinned", a, "key", "u32", "value", "u64",
    ]));
    assert!(dump.len() > 1 << 20 && dump.trim_end().lines().count() == 1);
    let file = dir.join("a.json");
    std::fs::write(&file, &dump).unwrap();
    tcbpf_testkit::ok(run(&[
        "map",
        "load",
        "pinned",
        b,
        "json",
        "from",
        tcbpf_testkit::s(&file),
    ]));
    let again = tcbpf_testkit::ok(run(&[
        "-j", "map", "dump", "pinned", b, "key", "u32", "value", "u64",
    ]));
    let parse = |s: &str| sorted(serde_json::from_str(s).unwrap());
    assert!(parse(&again) == parse(&dump), "the maps differ");

    // One element of 2 MiB (a string no parser needs to see whole).
    let huge = format!(
        "[{{\"key\": 1, \"value\": 2}}, {{\"key\": \"{}\"}}]",
        "x".repeat(2 << 20)
    );
    let nested = "[".repeat(2 << 20);
    for (text, want) in [
        (huge, "element 2 of the JSON array"),
        (nested, "element 1 of"),
    ] {
        std::fs::write(&file, text).unwrap();
        let (code, err) = tcbpf_testkit::fails(run(&[
            "map",
            "load",
            "pinned",
            b,
            "json",
            "from",
            tcbpf_testkit::s(&file),
        ]));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(want) && err.contains("longer than 1048576 bytes"),
            "{err}"
        );
    }
}

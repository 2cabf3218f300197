//! `tcbpf map lookup/dump/next` print a map's entries by its own BTF
//! without type words (run as root against real maps of the typed_maps
//! fixture): scalars, structs with nested structs, arrays and unions,
//! enums, char arrays, bitfields, per-CPU values (each CPU or `sum`),
//! global data by variable name; text and `-j` (bpftool's shape: `dump
//! -j` gives the hex bytes and the typed entry as `formatted`).
//! Explicit types and `raw` win; maps without BTF print as before; a map
//! whose BTF the kernel will not give prints untyped with a note (`-v`).

use crate::typed_support;

use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use typed_support::*;

#[test]
fn scalar_keys_and_struct_values_print_by_btf() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    f.put("counters", &k32(17), &u64s(&[5, 6]));
    assert_eq!(
        f.ok("map dump @counters"),
        "key: 17  value: {packets: 5, bytes: 6}\n"
    );
    // -j dump: bpftool's shape, the hex bytes and the typed entry.
    assert_eq!(
        f.json("-j map dump @counters"),
        json!([{"key": ["0x11", "0x00", "0x00", "0x00"],
                "value": ["0x05", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00",
                          "0x06", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00"],
                "formatted": {"key": 17, "value": {"packets": 5, "bytes": 6}}}])
    );
    assert_eq!(
        f.ok("map lookup @counters key 17 0 0 0"),
        "key: 17  value: {packets: 5, bytes: 6}\n"
    );
    assert_eq!(
        f.json("-j map lookup @counters key u32 17"),
        json!({"key": 17, "value": {"packets": 5, "bytes": 6}})
    );
    assert_eq!(f.ok("map next @counters"), "next key: 17\n");
    assert_eq!(f.json("-j map next @counters"), json!({"next_key": 17}));
    // Explicit types win, per side; raw gives bpftool's hex.
    assert_eq!(
        f.ok("map dump @counters value u64 u64"),
        "key: 17  value: 5 6\n"
    );
    assert_eq!(
        f.ok("map dump @counters key be32"),
        "key: 285212672  value: {packets: 5, bytes: 6}\n"
    );
    assert_eq!(
        f.ok("map dump @counters raw"),
        "key: 11 00 00 00  value: 05 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00\n"
    );
    assert_eq!(
        f.json("-j map lookup @counters key 17 0 0 0 raw")["key"],
        json!(["0x11", "0x00", "0x00", "0x00"])
    );
}

#[test]
fn nested_structs_arrays_unions_enums_chars_and_bitfields_print_by_name() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let mut nested = 1u32.to_ne_bytes().to_vec();
    nested.extend_from_slice(&80u16.to_ne_bytes());
    nested.extend_from_slice(&[6, (-3i8) as u8]);
    for h in [1u32, 2, 3] {
        nested.extend_from_slice(&h.to_ne_bytes());
    }
    nested.extend_from_slice(&0x0102_0304u32.to_ne_bytes());
    f.put("nesteds", &k32(1), &nested);
    assert_eq!(
        f.ok("map lookup @nesteds key 1 0 0 0"),
        "key: 1  value: {id: 1, in: {port: 80, proto: 6, delta: -3}, hist: [1, 2, 3], u: {as_u32: 16909060, as_bytes: [4, 3, 2, 1]}}\n"
    );
    assert_eq!(
        f.json("-j map lookup @nesteds key 1 0 0 0")["value"],
        json!({"id": 1, "in": {"port": 80, "proto": 6, "delta": -3}, "hist": [1, 2, 3],
               "u": {"as_u32": 16909060, "as_bytes": [4, 3, 2, 1]}})
    );

    f.put("verdicts", &k32(1), &7u32.to_ne_bytes());
    f.put("verdicts", &k32(2), &9u32.to_ne_bytes());
    assert_eq!(
        f.ok("map dump @verdicts"),
        "key: 0  value: V_PASS\nkey: 1  value: V_REDIRECT\nkey: 2  value: 9\nkey: 3  value: V_PASS\n"
    );
    assert_eq!(
        f.dump_typed("@verdicts"),
        json!([{"key": 0, "value": "V_PASS"}, {"key": 1, "value": "V_REDIRECT"},
               {"key": 2, "value": 9}, {"key": 3, "value": "V_PASS"}])
    );

    f.put("names", &k32(3), b"eth0\0\0\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(f.ok("map dump @names"), "key: 3  value: \"eth0\"\n");
    assert_eq!(f.dump_typed("@names"), json!([{"key": 3, "value": "eth0"}]));

    let offset = (-100i64 as u64) & 0x1fff;
    let bits: u64 = 5 | 4 << 4 | 2 << 8 | offset << 11 | 255 << 24 | 7 << 32;
    f.put("bitfields", &k32(4), &bits.to_ne_bytes());
    assert_eq!(
        f.ok("map dump @bitfields"),
        "key: 4  value: {ihl: 5, version: 4, flags: 2, offset: -100, tos: 255, v: V_REDIRECT}\n"
    );
    assert_eq!(
        f.dump_typed("@bitfields")[0]["value"],
        json!({"ihl": 5, "version": 4, "flags": 2, "offset": -100, "tos": 255, "v": "V_REDIRECT"})
    );

    // A key that is a struct.
    let mut flow = 0x0a00_0001u32.to_ne_bytes().to_vec();
    flow.extend_from_slice(&443u16.to_ne_bytes());
    flow.extend_from_slice(&[6, 0]);
    f.put("flows", &flow, &9u64.to_ne_bytes());
    assert_eq!(
        f.ok("map dump @flows"),
        "key: {saddr: 167772161, sport: 443, proto: 6, pad: 0}  value: 9\n"
    );
}

#[test]
fn per_cpu_values_print_one_per_cpu_or_summed_per_member() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let cpus = tcbpf::sys::possible_cpus().unwrap();
    let mut buf = Vec::new();
    for c in 0..cpus as u64 {
        buf.extend_from_slice(&u64s(&[c + 1, 10 * (c + 1)]));
    }
    f.put("pcpu", &k32(2), &buf);
    let text = f.ok("map lookup @pcpu key 2 0 0 0");
    let mut want = "key: 2".to_string();
    for c in 0..cpus {
        want.push_str(&format!(
            "\nvalue (CPU {c:02}): {{packets: {}, bytes: {}}}",
            c + 1,
            10 * (c + 1)
        ));
    }
    want.push('\n');
    assert_eq!(text, want);
    let j = f.dump_typed("@pcpu");
    let values = j[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), cpus);
    assert_eq!(
        values[cpus - 1],
        json!({"cpu": cpus - 1, "value": {"packets": cpus, "bytes": 10 * cpus}})
    );
    let total = (cpus * (cpus + 1) / 2) as u64;
    assert_eq!(
        f.ok("map dump @pcpu sum"),
        format!(
            "key: 2  value: {{packets: {total}, bytes: {}}}\n",
            total * 10
        )
    );
    assert_eq!(
        f.json("-j map lookup @pcpu key 2 0 0 0 sum"),
        json!({"key": 2, "value": {"packets": total, "bytes": total * 10}})
    );
}

#[test]
fn global_data_prints_its_variables_by_name() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    assert_eq!(
        f.ok("map dump @.data"),
        "key: 0  value: {hits: 5, label: \"edge\"}\n"
    );
    assert_eq!(
        f.json("-j map lookup @.data key 0 0 0 0"),
        json!({"key": 0, "value": {"hits": 5, "label": "edge"}})
    );
    assert_eq!(f.dump_typed("@.bss")[0]["value"], json!({"misses": 0}));
}

#[test]
fn maps_without_btf_or_whose_btf_is_refused_print_untyped() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let plain = tcbpf_testkit::hash_map(&tcbpf_testkit::unique("p"), 4, 8, 4);
    tcbpf::sys::map::update(&plain, &k32(1), &7u64.to_ne_bytes(), 0).unwrap();
    let fd = plain.as_raw_fd();
    let out = tcbpf(
        &[fd],
        &["map".into(), "dump".into(), "fd".into(), fd.to_string()],
    )
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "key: 01 00 00 00  value: 07 00 00 00 00 00 00 00\n"
    );

    // A process without privilege holds the map's fd but may not open its
    // BTF by id: untyped output, and a note under -v only.
    f.put("counters", &k32(17), &u64s(&[5, 6]));
    let fd = f.fd("counters").as_raw_fd();
    for verbose in [false, true] {
        let mut args = vec![
            "map".to_string(),
            "dump".into(),
            "fd".into(),
            fd.to_string(),
        ];
        if verbose {
            args.insert(0, "-v".into());
        }
        let mut cmd = tcbpf(&[fd], &args);
        // SAFETY: setgid/setuid are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "key: 11 00 00 00  value: 05 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00\n"
        );
        assert_eq!(
            stderr.contains("cannot read the map's BTF") && stderr.contains("printing untyped"),
            verbose,
            "{stderr}"
        );
    }
}

#[test]
fn version_and_map_help_say_what_the_typed_helper_takes() {
    let run = |args: &[&str]| tcbpf_testkit::run_bin(env!("CARGO_BIN_EXE_tcbpf"), args);
    let want = format!("tcbpf {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(run(&["--version"]), (0, want.clone(), String::new()));
    assert_eq!(run(&["-V"]), (0, want, String::new()));
    // -v is still -verbose.
    assert_eq!(run(&["-v", "map", "help"]).0, 0);
    let (code, help, _) = run(&["map", "help"]);
    assert_eq!(code, 0);
    for words in [
        "tcbpf map lookup MAP key DATA [value TYPES] [sum] [lock] [raw]",
        "tcbpf map load   MAP json [from FILE|-] [replace] [partial]",
        "tcbpf map batch  [from FILE|-]",
        "| json JSON | VALUE | { MEMBER VALUE }…",
    ] {
        assert!(help.contains(words), "{words}");
    }
    let page = std::fs::read_to_string(tcbpf_testkit::repo().join("docs/map.md")).unwrap();
    for line in help
        .lines()
        .filter(|l| l.trim_start().starts_with("tcbpf map "))
    {
        assert!(
            page.contains(line.trim_start()),
            "docs/map.md lacks: {line}"
        );
    }
}

#[test]
fn a_pointer_in_the_value_type_is_an_error_that_points_at_raw() {
    tcbpf_testkit::require_root!();
    use tcbpf::btf::BtfBuilder;
    use tcbpf::sys::map;
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let u64t = b.int("unsigned long long", 8, false);
    let ptr = b.ptr(u64t);
    let holder = b.structure("holder", 8, &[("p", ptr, 0, 0)]);
    let btf = tcbpf::sys::btf::load(&b.build().to_bytes()).expect("BTF_LOAD");
    let m = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        name: &tcbpf_testkit::unique("ptr"),
        btf: Some((std::os::fd::AsFd::as_fd(&btf), u32t, holder)),
        ..Default::default()
    })
    .expect("a hash map whose value holds a pointer");
    map::update(&m, &k32(1), &0x1234u64.to_ne_bytes(), 0).unwrap();
    let fd = m.as_raw_fd();
    let run = |args: &str| {
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
    };
    let (code, _, err) = run("map dump FD");
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("tcbpf: fd {fd}: value: a pointer ([3] PTR) cannot be printed or parsed; use 'raw' for its bytes\n")
    );
    let (code, out, _) = run("map dump FD raw");
    assert_eq!(code, Some(0));
    assert_eq!(out, "key: 01 00 00 00  value: 34 12 00 00 00 00 00 00\n");
    // The key still prints typed when only the value is given types.
    let (code, out, _) = run("map lookup FD key 1 value u64");
    assert_eq!((code, out.as_str()), (Some(0), "key: 1  value: 4660\n"));
}

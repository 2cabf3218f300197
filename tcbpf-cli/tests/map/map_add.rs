//! `tcbpf map add MAP key DATA [field NAME] value N`: an atomic add done in
//! the kernel, so concurrent shells lose no increment (`lookup` then
//! `update … lock` does: `lock` only makes each copy atomic). Run as root.

use std::process::Command;
use tcbpf::sys::{self, map};
use tcbpf_testkit::{fixture, run_bin, s, unique, Bpffs};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn pinned(fs: &Bpffs, t: tcbpf::abi::MapType, value: u32, entries: u32) -> String {
    let m = map::create(&map::MapCreate {
        map_type: t as u32,
        key_size: 4,
        value_size: value,
        max_entries: entries,
        name: &unique("add"),
        ..Default::default()
    })
    .unwrap();
    let pin = fs.join(unique("m"));
    sys::obj::pin(&m, &pin).unwrap();
    s(&pin).to_string()
}

fn u64_at(pin: &str, key: u32, types: &str) -> serde_json::Value {
    let mut args = vec!["-j", "map", "lookup", "pinned", pin, "key", "u32"];
    let k = key.to_string();
    args.push(&k);
    args.push("value");
    args.extend(types.split_whitespace());
    let (code, out, err) = run_bin(TCBPF, &args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["value"].clone()
}

#[test]
fn eight_concurrent_shells_adding_to_one_counter_lose_nothing() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = pinned(&fs, tcbpf::abi::MapType::Array, 8, 1);
    let per_shell = 200;
    let script = format!(
        "i=0; while [ $i -lt {per_shell} ]; do {TCBPF} map add pinned {pin} key u32 0 value 1 || exit 1; i=$((i+1)); done"
    );
    let shells: Vec<_> = (0..8)
        .map(|_| Command::new("sh").args(["-c", &script]).spawn().unwrap())
        .collect();
    for mut sh in shells {
        assert!(sh.wait().unwrap().success(), "a shell failed");
    }
    assert_eq!(u64_at(&pin, 0, "u64"), 8 * per_shell);
}

#[test]
fn add_takes_negative_values_fields_and_32_bit_counters() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = pinned(&fs, tcbpf::abi::MapType::Array, 16, 2);
    let add = |rest: &str| {
        let mut args = vec!["map", "add", "pinned", pin.as_str(), "key", "u32", "1"];
        args.extend(rest.split_whitespace());
        run_bin(TCBPF, &args)
    };
    assert_eq!(add("at 0 u64 value 10").0, 0);
    assert_eq!(add("at 0 i64 value -3").0, 0);
    // A 4-byte field at offset 8 (u32 counter) without BTF: 'at OFFSET u32'.
    assert_eq!(add("at 8 u32 value 5").0, 0);
    assert_eq!(add("at 8 u32 value 5").0, 0);
    assert_eq!(
        u64_at(&pin, 1, "u64 u32 u32"),
        serde_json::json!([7, 10, 0])
    );
    // -j prints the value before and after.
    let (code, out, err) = run_bin(
        TCBPF,
        &[
            "-j", "map", "add", "pinned", &pin, "key", "u32", "1", "at", "0", "u64", "value", "100",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["old"].clone(), v["new"].clone()), (7.into(), 107.into()));
}

#[test]
fn add_finds_a_btf_field_by_name_next_to_a_spin_lock() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let prog = fs.arg("prog");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "obj",
            "load",
            s(&fixture("spinlock.o")),
            "bpffs",
            fs.as_str(),
            "pin",
            &prog,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let map = fs.arg("tc/globals/locked");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "update", "pinned", &map, "key", "u32", "3", "value", "u32", "0", "u32", "0",
            "u64", "40",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "add", "pinned", &map, "key", "u32", "3", "field", "count", "value", "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        u64_at(&map, 3, "u32 u32 u64"),
        serde_json::json!([0, 0, 42])
    );
}

#[test]
fn add_errors_name_what_is_wrong() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let hash = pinned(&fs, tcbpf::abi::MapType::Hash, 8, 4);
    let array = pinned(&fs, tcbpf::abi::MapType::Array, 6, 1);
    let cases: [(&str, &[&str], i32, &str); 6] = [
        (
            "missing key",
            &["pinned", &hash, "key", "u32", "9", "value", "1"],
            1,
            "not found",
        ),
        (
            "no BTF",
            &[
                "pinned", &hash, "key", "u32", "9", "field", "x", "value", "1",
            ],
            2,
            "BTF",
        ),
        (
            "value size",
            &["pinned", &array, "key", "u32", "0", "value", "1"],
            2,
            "6 bytes",
        ),
        (
            "misaligned",
            &[
                "pinned", &array, "key", "u32", "0", "at", "2", "u32", "value", "1",
            ],
            2,
            "aligned",
        ),
        (
            "bad number",
            &["pinned", &hash, "key", "u32", "0", "value", "x1"],
            2,
            "number",
        ),
        (
            "no value",
            &["pinned", &hash, "key", "u32", "0"],
            2,
            "value",
        ),
    ];
    for (what, args, code, needle) in cases {
        let mut all = vec!["map", "add"];
        all.extend_from_slice(args);
        let (got, _, err) = run_bin(TCBPF, &all);
        assert_eq!(got, code, "{what}: {err}");
        assert!(err.contains(needle), "{what}: {err}");
    }
    // Without the privilege to load the helper program: a clear exit 3.
    let m = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        name: &unique("add"),
        ..Default::default()
    })
    .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&m);
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            TCBPF,
        ])
        .args(["map", "add", "fd", "0", "key", "u32", "0", "value", "1"])
        .stdin(std::process::Stdio::from(
            m.try_clone().unwrap().into_owned(),
        ))
        .output()
        .unwrap();
    let _ = fd;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAP_BPF"), "{err}");
}

/// Runs `tcbpf ARGS…` with `m` as its standard input, named `fd 0`.
fn run_with_fd0(m: &sys::MapFd, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(TCBPF)
        .args(args)
        .stdin(std::process::Stdio::from(
            m.try_clone().unwrap().into_owned(),
        ))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn add_refuses_a_read_only_descriptor_and_a_frozen_map_as_update_does() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = pinned(&fs, tcbpf::abi::MapType::Array, 8, 1);
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "update", "pinned", &pin, "key", "u32", "0", "value", "u64", "42",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // A read-only descriptor (what a keeper's 'ro' grant hands out), used
    // by a process that holds CAP_BPF: update and add both refuse.
    let ro = sys::obj::get_pinned_map(std::path::Path::new(&pin), sys::obj::open::RDONLY).unwrap();
    let add = [
        "map", "add", "fd", "0", "key", "u32", "0", "value", "1000000",
    ];
    let update = [
        "map", "update", "fd", "0", "key", "u32", "0", "value", "u64", "7",
    ];
    let (code, err) = run_with_fd0(&ro, &update);
    assert_eq!(code, Some(3), "update through a read-only fd: {err}");
    let (code, err) = run_with_fd0(&ro, &add);
    assert_eq!(code, Some(3), "add through a read-only fd: {err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(u64_at(&pin, 0, "u64"), 42);
    // A frozen map: no write from user space, by update or by add.
    let rw = sys::obj::get_pinned_map(std::path::Path::new(&pin), sys::obj::open::RDWR).unwrap();
    map::freeze(&rw).unwrap();
    let (code, err) = run_with_fd0(&rw, &update);
    assert_eq!(code, Some(3), "update of a frozen map: {err}");
    let (code, err) = run_with_fd0(&rw, &add);
    assert_eq!(code, Some(3), "add to a frozen map: {err}");
    assert!(err.contains("frozen"), "{err}");
    assert_eq!(u64_at(&pin, 0, "u64"), 42);
}

#[test]
fn add_refuses_union_members_lpm_tries_and_amounts_a_32_bit_field_cannot_hold() {
    tcbpf_testkit::require_root!();
    use tcbpf::btf::BtfBuilder;
    let mut b = BtfBuilder::new();
    let u32t = b.int("unsigned int", 4, false);
    let both = b.union("both", 4, &[("x", u32t, 0, 0), ("y", u32t, 0, 0)]);
    // struct counters { u32 n; union both u; }  and  union both as a value.
    let counters = b.structure("counters", 8, &[("n", u32t, 0, 0), ("u", both, 32, 0)]);
    let btf = tcbpf::sys::btf::load(&b.build().to_bytes()).expect("BTF_LOAD");
    let with_value = |value: u32, size: u32| {
        let m = map::create(&map::MapCreate {
            map_type: tcbpf::abi::MapType::Array as u32,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            name: &unique("add"),
            btf: Some((std::os::fd::AsFd::as_fd(&btf), u32t, value)),
            ..Default::default()
        })
        .expect("an array with BTF");
        map::update(&m, &0u32.to_ne_bytes(), &vec![0u8; size as usize], 0).unwrap();
        m
    };
    let s_map = with_value(counters, 8);
    let u_map = with_value(both, 4);
    let add = |m: &sys::MapFd, rest: &str| {
        let mut args = vec!["map", "add", "fd", "0", "key", "u32", "0"];
        args.extend(rest.split_whitespace());
        run_with_fd0(m, &args)
    };
    // The struct's integer member works; its union member does not.
    assert_eq!(add(&s_map, "field n value 5").0, Some(0));
    let (code, err) = add(&s_map, "field u value 5");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("'u'") && err.contains("integer"), "{err}");
    let (code, err) = add(&u_map, "field x value 5");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("union"), "{err}");
    // A 32-bit field: 4294967296 would add 0; refused, the value unchanged.
    for big in ["4294967296", "0x100000005", "-2147483649"] {
        let (code, err) = add(&s_map, &format!("field n value {big}"));
        assert_eq!(code, Some(2), "{big}: {err}");
        assert!(err.contains("out of range"), "{big}: {err}");
    }
    assert_eq!(add(&s_map, "field n value 4294967295").0, Some(0));
    assert_eq!(add(&s_map, "field n value -2147483648").0, Some(0));
    let mut v = [0u8; 8];
    map::lookup(&s_map, &0u32.to_ne_bytes(), &mut v, 0).unwrap();
    let n = u32::from_ne_bytes(v[..4].try_into().unwrap());
    assert_eq!(n, 5u32.wrapping_add(u32::MAX).wrapping_add(0x8000_0000));
    // An LPM trie: refused up front (exit 2), not after a load the
    // kernel always refuses (exit 4).
    let lpm = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::LpmTrie as u32,
        key_size: 8,
        value_size: 8,
        max_entries: 4,
        map_flags: 1, // BPF_F_NO_PREALLOC, required for LPM tries
        name: &unique("lpm"),
        ..Default::default()
    })
    .expect("an LPM trie");
    let (code, err) = run_with_fd0(
        &lpm,
        &[
            "map", "add", "fd", "0", "key", "u32", "32", "u32", "0", "value", "1",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("lpm_trie"), "{err}");
}

//! `tcbpf exec bpf graft`: swapping the program at a key of a pinned
//! program array changes a loaded classifier's verdict (real kernel, own
//! bpffs per test).

use std::path::Path;
use std::process::Command;
use tcbpf::sys;
use tcbpf_testkit::{fixture, output, s, schema_failures, Bpffs, TempDir};

/// Runs tcbpf with `TC_BPF_MNT` pointing at the test's bpffs.
fn tcbpf(bpffs: &Bpffs, args: &[&str]) -> (i32, String) {
    let cmd = tcbpf_testkit::tcbpf(env!("CARGO_BIN_EXE_tcbpf"), args, Some(&bpffs.path));
    let run = output(cmd);
    (run.code, run.stderr)
}

/// The verdict of the pinned classifier on a minimal Ethernet frame.
fn verdict(prog_pin: &str) -> u32 {
    let prog = sys::obj::get_pinned_prog(Path::new(prog_pin)).unwrap();
    sys::prog::test_run(&prog, &[0u8; 64]).unwrap().retval
}

/// Loads graft.o's classifier (and its tail call 1/0) pinned in `fs`.
fn load_classifier(fs: &Bpffs) -> String {
    let pin = fs.arg("cls");
    let (code, err) = tcbpf(
        fs,
        &[
            "obj",
            "load",
            s(&fixture("graft.o")),
            "bpffs",
            fs.as_str(),
            "pin",
            &pin,
        ],
    );
    assert_eq!(code, 0, "{err}");
    pin
}

#[test]
fn graft_swaps_the_program_a_loaded_classifier_jumps_to() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let cls = load_classifier(&fs);
    let array = fs.arg("tc/globals/jmp_graft");
    assert_eq!(verdict(&cls), 2, "the tail call 1/0 is in place after load");

    let (code, err) = tcbpf(
        &fs,
        &[
            "exec",
            "bpf",
            "graft",
            &array,
            "key",
            "0",
            "obj",
            s(&fixture("graft.o")),
            "sec",
            "alt",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(verdict(&cls), 5, "section alt now runs at key 0");

    // Without `key`, the key comes from the section name 1/0.
    let (code, err) = tcbpf(
        &fs,
        &[
            "exec",
            "bpf",
            "graft",
            &array,
            "obj",
            s(&fixture("graft.o")),
            "sec",
            "1/0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(verdict(&cls), 2);
}

#[test]
fn graft_json_reports_the_program_placed() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let cls = load_classifier(&fs);
    let array = fs.arg("tc/globals/jmp_graft");
    let out = Command::new(env!("CARGO_BIN_EXE_tcbpf"))
        .args([
            "-j",
            "exec",
            "bpf",
            "graft",
            &array,
            "key",
            "3",
            "obj",
            s(&fixture("graft.o")),
            "sec",
            "alt",
        ])
        .env("TC_BPF_MNT", &fs.path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key"], 3);
    assert_eq!(v["prog"]["section"], "alt");
    let map = sys::obj::get_pinned_map(Path::new(&array), sys::obj::open::RDONLY).unwrap();
    let mut id = [0u8; 4];
    sys::map::lookup(&map, &3u32.to_ne_bytes(), &mut id, 0).unwrap();
    assert_eq!(serde_json::json!(u32::from_ne_bytes(id)), v["prog"]["id"]);
    // The pinned form: the classifier itself placed at key 2.
    let pinned = Command::new(env!("CARGO_BIN_EXE_tcbpf"))
        .args([
            "-j", "exec", "bpf", "graft", &array, "key", "2", "pinned", &cls,
        ])
        .env("TC_BPF_MNT", &fs.path)
        .output()
        .unwrap();
    assert!(
        pinned.status.success(),
        "{}",
        String::from_utf8_lossy(&pinned.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&pinned.stdout).unwrap();
    assert_eq!(
        (p["key"].as_u64(), p["prog"]["pinned"].as_str()),
        (Some(2), Some(cls.as_str()))
    );
    let dir = TempDir::new("graftjson");
    let failures = schema_failures(
        &dir.join(""),
        &[
            (
                "exec graft",
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ),
            (
                "exec graft",
                String::from_utf8_lossy(&pinned.stdout).into_owned(),
            ),
        ],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn graft_refuses_bad_targets_with_clear_errors() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    load_classifier(&fs);
    let array = fs.arg("tc/globals/jmp_graft");
    let obj = fixture("graft.o");
    let obj = s(&obj);

    let (code, err) = tcbpf(
        &fs,
        &["exec", "bpf", "graft", &array, "obj", obj, "sec", "alt"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot infer the key from section 'alt'"),
        "{err}"
    );

    let (code, err) = tcbpf(
        &fs,
        &[
            "exec", "bpf", "graft", &array, "key", "9", "obj", obj, "sec", "alt",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("key 9 is out of range"), "{err}");

    let missing = fs.arg("no/such/map");
    let (code, err) = tcbpf(
        &fs,
        &["exec", "bpf", "graft", &missing, "key", "0", "obj", obj],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no/such/map"), "{err}");

    let hash = sys::map::create(&sys::map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 4,
        name: "not_progs",
        ..Default::default()
    })
    .unwrap();
    let hash_pin = fs.arg("hash");
    sys::obj::pin(&hash, Path::new(&hash_pin)).unwrap();
    let (code, err) = tcbpf(
        &fs,
        &[
            "exec", "bpf", "graft", &hash_pin, "key", "0", "obj", obj, "sec", "alt",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a hash map, not a prog_array"), "{err}");
    std::fs::remove_file(&hash_pin).unwrap();
}

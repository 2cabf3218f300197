//! `tcbpf map update|lookup … lock` (BPF_F_LOCK) on a map whose value holds
//! a `bpf_spin_lock`, shared with a classifier that counts under that lock.

use std::path::Path;
use tcbpf::sys;
use tcbpf_testkit::{fixture, run_bin, Bpffs};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// Loads bpf/spinlock.o into `fs`: the pinned program and the `locked` map.
fn load(fs: &Bpffs) -> (String, String) {
    let prog = fs.arg("prog");
    let obj = fixture("spinlock.o");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "obj",
            "load",
            obj.to_str().unwrap(),
            "bpffs",
            fs.as_str(),
            "pin",
            &prog,
        ],
    );
    assert_eq!(code, 0, "{err}");
    (prog, fs.arg("tc/globals/locked"))
}

fn locked_count(map: &str) -> serde_json::Value {
    let (code, out, err) = run_bin(
        TCBPF,
        &[
            "-j", "map", "lookup", "pinned", map, "key", "u32", "0", "value", "u32", "u32", "u64",
            "lock",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["value"][2].clone()
}

#[test]
fn locked_update_and_lookup_share_the_counter_with_the_classifier() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let (prog, map) = load(&fs);
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "update", "pinned", &map, "key", "u32", "0", "value", "u32", "0", "u32", "0",
            "u64", "41", "lock",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(locked_count(&map), 41);

    let prog = sys::obj::get_pinned_prog(Path::new(&prog)).unwrap();
    for _ in 0..3 {
        assert_eq!(sys::prog::test_run(&prog, &[0u8; 64]).unwrap().retval, 0);
    }
    assert_eq!(
        locked_count(&map),
        44,
        "the classifier counted under the same lock"
    );
}

#[test]
fn lock_on_a_map_without_a_spin_lock_is_a_clear_usage_error() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.arg("plain");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "create", "type", "hash", "key", "4", "value", "8", "entries", "4", "name",
            "plain", "pin", &pin,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_bin(
        TCBPF,
        &[
            "map", "update", "pinned", &pin, "key", "u32", "1", "value", "u64", "1", "lock",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'lock' needs a map whose BTF value type holds a bpf_spin_lock"),
        "{err}"
    );
    let (code, _, err) = run_bin(
        TCBPF,
        &["map", "lookup", "pinned", &pin, "key", "u32", "1", "lock"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'lock' needs a map"), "{err}");
}

//! CO-RE through the binary: `obj show` lists the relocations, `obj load
//! … verbose` shows each resolution, `btf FILE` picks the target BTF.

use serde_json::Value;
use std::path::Path;
use tcbpf_testkit::{fixture, run_bin, s, Bpffs};

fn tcbpf(args: &[&str]) -> (i32, String, String) {
    run_bin(env!("CARGO_BIN_EXE_tcbpf"), args)
}

#[test]
fn show_lists_core_relocations_in_text_and_json() {
    let file = fixture("core_classifier.o");
    let file = s(&file);
    let (code, out, err) = tcbpf(&["obj", "show", file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("core relocations:"), "{out}");
    assert!(
        out.contains("classifier insn #130 <byte_off> [41] struct iphdr.protocol (0:7 @ offset 9)"),
        "{out}"
    );
    let (code, out, err) = tcbpf(&["-j", "obj", "show", file]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let relos = v["core_relocations"].as_array().unwrap();
    assert_eq!(relos.len(), 25);
    assert_eq!(relos[0]["kind"], "byte_off");
    assert_eq!(relos[0]["access"], "0:16");
    assert_eq!(relos[0]["insn"], 1);
    let (_, out, _) = tcbpf(&["-j", "obj", "show", s(&fixture("demo.o"))]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["core_relocations"].as_array().unwrap().len(), 0);
}

#[test]
fn verbose_load_shows_each_resolution_and_btf_picks_the_target() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = format!("{}/core_prog", fs.as_str());
    let file = fixture("core_classifier.o");
    let file = s(&file);
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        file,
        "bpffs",
        fs.as_str(),
        "verbose",
        "pin",
        &pin,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("CO-RE: program 'core_classify': insn #130 <byte_off> [41] struct iphdr.protocol (0:7 @ offset 9): 9 -> 9 (vmlinux ["),
        "{err}"
    );
    assert!(
        err.contains("no match in target, instruction poisoned"),
        "{err}"
    );
    assert!(Path::new(&pin).exists());

    let pin2 = format!("{}/core_prog2", fs.as_str());
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        file,
        "bpffs",
        fs.as_str(),
        "btf",
        "/sys/kernel/btf/vmlinux",
        "pin",
        &pin2,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        file,
        "btf",
        "/nonexistent/vmlinux",
        "pin",
        &pin2,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("target BTF /nonexistent/vmlinux"), "{err}");
}

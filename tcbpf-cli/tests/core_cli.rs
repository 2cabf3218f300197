//! CO-RE through the binary: `obj show` lists the relocations, `obj load
//! … verbose` shows each resolution, `btf FILE` picks the target BTF.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use tcbpf::sys;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bpf")
        .join(name)
        .display()
        .to_string()
}

fn tcbpf(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcbpf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A private bpffs in a temporary directory, unmounted and removed on drop.
struct Bpffs(PathBuf);

impl Bpffs {
    fn new() -> Bpffs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tcbpf-corecli-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        sys::fs::mount_bpffs(&dir).unwrap();
        Bpffs(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = sys::fs::unmount(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn show_lists_core_relocations_in_text_and_json() {
    let file = fixture("core_classifier.o");
    let (code, out, err) = tcbpf(&["obj", "show", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("core relocations:"), "{out}");
    assert!(
        out.contains("classifier insn #130 <byte_off> [41] struct iphdr.protocol (0:7 @ offset 9)"),
        "{out}"
    );
    let (code, out, err) = tcbpf(&["-j", "obj", "show", &file]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let relos = v["core_relocations"].as_array().unwrap();
    assert_eq!(relos.len(), 25);
    assert_eq!(relos[0]["kind"], "byte_off");
    assert_eq!(relos[0]["access"], "0:16");
    assert_eq!(relos[0]["insn"], 1);
    let (_, out, _) = tcbpf(&["-j", "obj", "show", &fixture("demo.o")]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["core_relocations"].as_array().unwrap().len(), 0);
}

#[test]
fn verbose_load_shows_each_resolution_and_btf_picks_the_target() {
    let fs = Bpffs::new();
    let pin = format!("{}/core_prog", fs.path());
    let file = fixture("core_classifier.o");
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        &file,
        "bpffs",
        fs.path(),
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

    let pin2 = format!("{}/core_prog2", fs.path());
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        &file,
        "bpffs",
        fs.path(),
        "btf",
        "/sys/kernel/btf/vmlinux",
        "pin",
        &pin2,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        &file,
        "btf",
        "/nonexistent/vmlinux",
        "pin",
        &pin2,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("target BTF /nonexistent/vmlinux"), "{err}");
}

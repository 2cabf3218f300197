//! `tcbpf exporter …` and `tcbpf map watch …` run `tcbpf-exporter` as git
//! runs `git-*`: found beside the `tcbpf` binary first, then on PATH, with
//! the words (and `-j`) passed on and the `-n` namespace kept. A stand-in
//! `tcbpf-exporter` script reports what it was given; the real binary has
//! its own tests in tcbpf-exporter/tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcbpf_testkit::*;

const STAND_IN: &str =
    "#!/bin/sh\necho \"args: $*\"\necho \"netns: $(readlink /proc/self/ns/net)\"\n";

fn copy_tcbpf(dir: &Path) -> PathBuf {
    let to = dir.join("tcbpf");
    tcbpf_testkit::copy_executable(env!("CARGO_BIN_EXE_tcbpf"), &to);
    to
}

fn stand_in(dir: &Path) {
    let p = dir.join("tcbpf-exporter");
    tcbpf_testkit::write_executable(&p, STAND_IN);
}

fn run_with_path(bin: &Path, path: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_exporter_beside_tcbpf_runs_with_the_words_and_json_flag() {
    let dir = TempDir::new("disp");
    let bin = copy_tcbpf(&dir.0);
    stand_in(&dir.0);
    let (code, out, err) = run_with_path(
        &bin,
        "/usr/bin:/bin",
        &["-j", "map", "watch", "id", "3", "count", "1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("args: -j watch id 3 count 1\n"), "{out}");
    let (code, out, _) = run_with_path(
        &bin,
        "/usr/bin:/bin",
        &["exporter", "listen", ":9435", "dev", "v0"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("args: listen :9435 dev v0\n"), "{out}");
}

#[test]
fn the_exporter_on_path_runs_in_the_namespace_given_with_n() {
    tcbpf_testkit::require_root!();
    let alone = TempDir::new("alone");
    let bin = copy_tcbpf(&alone.0);
    let on_path = TempDir::new("onpath");
    stand_in(&on_path.0);
    let ns = Netns::new();
    let path = format!("{}:/usr/bin:/bin", s(&on_path.0));
    let (code, out, err) =
        run_with_path(&bin, &path, &["-n", &ns.name, "exporter", "listen", ":1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("args: listen :1\n"), "{out}");
    let inode = run(
        "stat",
        &["-L", "-c", "%i", &format!("/run/netns/{}", ns.name)],
    );
    assert!(
        out.contains(&format!("netns: net:[{}]", inode.trim())),
        "not in {}: {out}",
        ns.name
    );
}

#[test]
fn a_missing_exporter_is_a_clear_error() {
    let alone = TempDir::new("missing");
    let bin = copy_tcbpf(&alone.0);
    let (code, _, err) = run_with_path(&bin, "/nonexistent", &["exporter", "listen", ":1"]);
    assert_eq!(code, 4);
    assert!(
        err.contains("exporter: tcbpf-exporter is neither beside tcbpf nor on PATH"),
        "{err}"
    );
    // The same exit as a missing tcbpf-sync (sync_dispatch.rs).
    let (code, _, err) = run_with_path(&bin, "/nonexistent", &["sync", "help"]);
    assert_eq!(code, 4, "{err}");
}

/// `tcbpf dump …` runs `tcbpf-dump` the same way: beside tcbpf first, with
/// the words and `-j`; a missing one is the same clear error (exit 4,
/// through `external::run_helper` like the exporter and sync).
#[test]
fn dump_runs_tcbpf_dump_with_the_words_and_json_flag() {
    let dir = TempDir::new("dispdump");
    let bin = copy_tcbpf(&dir.0);
    let p = dir.0.join("tcbpf-dump");
    tcbpf_testkit::write_executable(&p, STAND_IN);
    let (code, out, err) = run_with_path(
        &bin,
        "/usr/bin:/bin",
        &["-j", "dump", "dev", "v0", "filter", "udp port 4242"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("args: -j dev v0 filter udp port 4242\n"),
        "{out}"
    );
    let alone = TempDir::new("dumpmissing");
    let bin = copy_tcbpf(&alone.0);
    let (code, _, err) = run_with_path(&bin, "/nonexistent", &["dump", "dev", "v0"]);
    assert_eq!(code, 4);
    assert!(
        err.contains("dump: tcbpf-dump is neither beside tcbpf nor on PATH"),
        "{err}"
    );
}

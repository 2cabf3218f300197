//! `tcbpf sync …` runs the `tcbpf-sync` helper as git runs `git-*`: found
//! beside `tcbpf` (or on PATH), handed the words and `-j`, in the same
//! process (exec). A copy of `tcbpf` in a temporary directory stands beside
//! a small script in the helper's place, so the test sees exactly what the
//! helper receives; the real helper's behaviour is tested in tcbpf-sync.

use std::process::Command;
use tcbpf_testkit::TempDir;

fn copy_tcbpf(dir: &TempDir) -> std::path::PathBuf {
    let bin = dir.join("tcbpf");
    tcbpf_testkit::copy_executable(env!("CARGO_BIN_EXE_tcbpf"), &bin);
    bin
}

#[test]
fn sync_execs_the_helper_beside_tcbpf_with_words_and_json_flag() {
    let dir = TempDir::new("syncdisp");
    let bin = copy_tcbpf(&dir);
    let helper = dir.join("tcbpf-sync");
    tcbpf_testkit::write_executable(&helper, "#!/bin/sh\necho \"pid=$$ args=$*\"\nexit 3\n");
    let o = Command::new(&bin)
        .args([
            "-j",
            "sync",
            "get",
            "127.0.0.1:2379",
            "prefix",
            "/p",
            "map",
            "m",
            "key",
            "{\"a\": 1}",
        ])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    // The helper's exit status is tcbpf's: the helper replaced it.
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("args=-j get 127.0.0.1:2379 prefix /p map m key {\"a\": 1}"),
        "{out}"
    );
}

#[test]
fn sync_passes_verbose_to_the_helper() {
    let dir = TempDir::new("syncverb");
    let bin = copy_tcbpf(&dir);
    let helper = dir.join("tcbpf-sync");
    tcbpf_testkit::write_executable(&helper, "#!/bin/sh\necho \"args=$*\"\n");
    let o = Command::new(&bin)
        .args(["-v", "sync", "status", "127.0.0.1:2379", "prefix", "/p"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.trim(),
        "args=-v status 127.0.0.1:2379 prefix /p",
        "{out}"
    );
}

#[test]
fn sync_without_the_helper_says_where_it_looked() {
    let dir = TempDir::new("syncnone");
    let bin = copy_tcbpf(&dir);
    let o = Command::new(&bin)
        .args(["sync", "help"])
        .env("PATH", dir.join("empty"))
        .output()
        .unwrap();
    // Exit 4, as a missing tcbpf-exporter: an installation fault, not a
    // key or map that is not there (exit 1).
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tcbpf-sync is neither beside tcbpf nor on PATH"),
        "{err}"
    );
}

//! Test scaffolding of tcbpf-sync: a real etcd (see `etcd`), and runners
//! for the `tcbpf-sync` binary.
#![allow(dead_code)]

pub mod etcd;
pub mod host;

use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tcbpf-sync");

/// Runs `tcbpf-sync ARGS…`.
pub fn sync(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run tcbpf-sync")
}

/// Runs `tcbpf-sync ARGS…` and requires success; returns stdout.
pub fn sync_ok(args: &[&str]) -> String {
    let o = sync(args);
    assert!(
        o.status.success(),
        "tcbpf-sync {args:?} failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `tcbpf-sync ARGS…`, requires exit status `code`; returns stderr.
pub fn sync_fails(code: i32, args: &[&str]) -> String {
    let o = sync(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "tcbpf-sync {args:?}: {err}");
    err
}

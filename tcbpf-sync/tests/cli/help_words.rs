//! `help` at any position of `tcbpf sync …` prints the usage and exits 0;
//! it is never taken as ENDPOINTS, a prefix, a map or a file, and nothing
//! connects anywhere.

use std::process::Command;

#[test]
fn help_after_any_word_is_the_usage_and_connects_nowhere() {
    let bin = env!("CARGO_BIN_EXE_tcbpf-sync");
    let (_, usage) = {
        let o = Command::new(bin).arg("help").output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(usage.starts_with("Usage: tcbpf"), "{usage}");
    for args in [
        &["status", "help"][..],
        &["put", "help"],
        &["status", "127.0.0.1:1", "help"],
        &["get", "127.0.0.1:1", "prefix", "help"],
        &[
            "put",
            "127.0.0.1:1",
            "prefix",
            "/p",
            "map",
            "m",
            "key",
            "{}",
            "value",
            "-h",
        ],
        &["-j", "etcd", "127.0.0.1:1", "prefix", "/p", "--help"],
    ] {
        let o = Command::new(bin).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), usage, "{args:?}");
        assert_eq!(err, "", "{args:?}");
    }
}

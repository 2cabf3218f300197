//! `help` (and `-h`, `--help`) at any position of the grammar prints the
//! usage of that position on standard output and exits 0; it is never
//! taken as a FILE, socket, path or device name. The walk over every
//! `keywords!` position is the unit test
//! `help_at_every_grammar_position_is_the_usage_never_a_value`
//! (`cli/mod.rs`); these run the binary on the cases users met.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::TempDir;

/// Runs tcbpf in `dir`, killed after 5 s: (exit code, stdout, stderr).
fn tcbpf_in(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcbpf"))
        .args(args)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("'tcbpf {}' still runs after 5 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn map_dump_help_prints_the_map_usage_and_exits_0() {
    let dir = TempDir::new("help");
    let (_, map_usage, _) = tcbpf_in(&dir, &["map", "help"]);
    assert!(map_usage.starts_with("Usage: tcbpf map"), "{map_usage}");
    for args in [
        &["map", "dump", "help"][..],
        &[
            "map",
            "lookup",
            "pinned",
            "/nonexistent/x",
            "key",
            "1",
            "help",
        ],
        &["map", "batch", "-h"],
        &["map", "update", "pinned", "help"],
    ] {
        let (code, out, err) = tcbpf_in(&dir, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, map_usage, "{args:?}");
        assert_eq!(err, "", "{args:?}");
    }
}

#[test]
fn exec_bpf_import_help_binds_no_socket_named_help() {
    let dir = TempDir::new("help");
    for args in [
        &["exec", "bpf", "import", "help"][..],
        &["exec", "bpf", "import", "--help"],
        &["exec", "bpf", "import", "sock", "timeout", "help"],
        &["keeper", "help"],
        &["keeper", "sock", "import", "help"],
        &["exec", "bpf", "dbg", "help"],
    ] {
        let (code, out, err) = tcbpf_in(&dir, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.starts_with("Usage: tcbpf "), "{args:?}: {out}");
        let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
    let (code, out, _) = tcbpf_in(&dir, &["exec", "bpf", "graft", "help"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Usage: tcbpf exec bpf graft"), "{out}");
}

#[test]
fn help_as_a_device_or_file_is_the_usage() {
    let dir = TempDir::new("help");
    for (args, usage) in [
        (&["filter", "add", "dev", "help"][..], "filter"),
        (&["qdisc", "add", "dev", "help"], "qdisc"),
        (&["obj", "show", "help"], "obj"),
        (
            &[
                "chain", "apply", "dev", "lo", "tcx", "ingress", "file", "help",
            ],
            "chain",
        ),
        (&["link", "set", "dev", "help"], "link"),
        (&["net", "show", "dev", "help"], "net"),
    ] {
        let (code, out, err) = tcbpf_in(&dir, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.starts_with("Usage: tcbpf "), "{args:?}: {out}");
        assert!(out.contains(&format!(" {usage} ")), "{args:?}: {out}");
    }
}

#[test]
fn help_as_the_namespace_of_n_is_the_usage_not_an_empty_error() {
    let dir = TempDir::new("help");
    for (args, usage) in [
        (&["-n", "help", "map", "show"][..], "Usage: tcbpf [OPTIONS]"),
        (&["map", "-n", "help", "show"], "Usage: tcbpf map"),
        (&["map", "--help"], "Usage: tcbpf map"),
    ] {
        let (code, out, err) = tcbpf_in(&dir, args);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        assert!(out.starts_with(usage), "{args:?}: {out}");
    }
}

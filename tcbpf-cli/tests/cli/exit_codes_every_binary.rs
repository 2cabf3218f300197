//! The README's exit codes (0 ok, 1 not found, 2 usage or bad input, 3
//! permission denied, 4 other) from every binary, one table for all:
//! `tcbpf`, and `tcbpf-exporter`, `tcbpf-sync` and `tcbpf-dump` as users
//! run them, through `tcbpf map watch`, `tcbpf exporter`, `tcbpf sync` and
//! `tcbpf dump` (found beside `tcbpf`: `scripts/test.sh` builds the
//! workspace first). Each binary's documented cases run against the real
//! kernel; the permission cases as uid 65534 with `setpriv`. The same
//! failure exits the same way from each binary that meets it (a keeper
//! socket nobody listens on, a directory named as a map pin: those used
//! to disagree; a `bytecode-file` that is not text exited 4). Run as root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use tcbpf_testkit::{s, Bpffs, Netns, Run, SockPath, TempDir};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// Fails with what to build when a sibling binary is not beside `tcbpf`
/// (`cargo test -p tcbpf-cli` alone does not build them).
fn siblings_built() {
    for name in ["tcbpf-exporter", "tcbpf-sync", "tcbpf-dump"] {
        let p = Path::new(TCBPF).with_file_name(name);
        assert!(
            p.exists(),
            "{} is missing: cargo build -p tcbpf-exporter -p tcbpf-sync -p tcbpf-dump",
            p.display()
        );
    }
}

fn tcbpf(args: &[&str]) -> Run {
    let mut c = Command::new(TCBPF);
    c.args(args).env_remove("TC_BPF_UDS");
    tcbpf_testkit::output(c)
}

fn as_nobody(args: &[&str]) -> Run {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        TCBPF,
    ])
    .args(args);
    tcbpf_testkit::output(c)
}

/// Checks every case, then reports all that exited otherwise at once.
struct Cases(Vec<String>);

impl Cases {
    fn expect(&mut self, r: Run, code: i32, what: &str) {
        if r.code != code {
            self.0.push(format!(
                "{what}: exit {} (want {code}): {}",
                r.code,
                r.stderr.trim()
            ));
        }
    }

    fn done(self) {
        assert!(self.0.is_empty(), "\n{}", self.0.join("\n"));
    }
}

/// What every binary is given: a missing pin, a directory where a map pin
/// should be, a socket path nobody listens on.
struct Inputs {
    fs: Bpffs,
    dir: TempDir,
    nosock: SockPath,
}

impl Inputs {
    fn new() -> Inputs {
        Inputs {
            fs: Bpffs::new(),
            dir: TempDir::new("exit-dir"),
            nosock: SockPath::new("exit-nosock"),
        }
    }

    fn missing_pin(&self) -> String {
        self.fs.arg("missing")
    }

    fn directory(&self) -> &str {
        s(&self.dir.0)
    }

    fn nosock(&self) -> &str {
        s(&self.nosock.0)
    }
}

#[test]
fn tcbpf_exits_with_the_documented_codes() {
    tcbpf_testkit::require_root!();
    let i = Inputs::new();
    let mut c = Cases(Vec::new());
    let missing = i.missing_pin();
    c.expect(
        tcbpf(&["map", "show", "pinned", &missing]),
        1,
        "missing pin",
    );
    c.expect(
        tcbpf(&["map", "show", "keeper", i.nosock(), "x"]),
        1,
        "keeper nobody listens on",
    );
    c.expect(tcbpf(&["map", "bogus"]), 2, "unknown verb");
    c.expect(
        tcbpf(&["map", "show", "pinned", i.directory()]),
        2,
        "a directory as a map pin",
    );
    c.expect(
        tcbpf(&["map", "show", "fd", "987"]),
        2,
        "a descriptor that is not open",
    );
    // Was 4 (the read's io error had no errno to map).
    let ns = Netns::new();
    let garbage = i.dir.join("garbage.bc");
    std::fs::write(&garbage, b"\xff\xfe 6,40 0 0 12").unwrap();
    c.expect(
        tcbpf(&[
            "-n",
            &ns.name,
            "filter",
            "add",
            "dev",
            "lo",
            "ingress",
            "bpf",
            "bytecode-file",
            s(&garbage),
        ]),
        2,
        "a bytecode file that is not text",
    );
    c.expect(
        as_nobody(&["map", "show", "id", "1"]),
        3,
        "map by id without privilege",
    );
    // A full hash map refuses a new key (E2BIG from the kernel): 4.
    let pin = i.fs.arg("full");
    let made = tcbpf(&[
        "map", "create", "type", "hash", "key", "4", "value", "4", "entries", "1", "pin", &pin,
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let update = |k: &str| {
        tcbpf(&[
            "map", "update", "pinned", &pin, "key", k, "0", "0", "0", "value", "1", "0", "0", "0",
        ])
    };
    c.expect(update("1"), 0, "first key");
    c.expect(update("2"), 4, "a key past a full map");
    c.done();
}

#[test]
fn tcbpf_exporter_exits_with_the_documented_codes() {
    tcbpf_testkit::require_root!();
    siblings_built();
    let i = Inputs::new();
    let mut c = Cases(Vec::new());
    let missing = i.missing_pin();
    let watch = |map: &[&str]| {
        let mut args = vec!["map", "watch"];
        args.extend_from_slice(map);
        args.extend_from_slice(&["count", "1"]);
        tcbpf(&args)
    };
    c.expect(watch(&["pinned", &missing]), 1, "missing pin");
    // Was 4 from the exporter, 1 from `tcbpf map`.
    c.expect(
        watch(&["keeper", i.nosock(), "x"]),
        1,
        "keeper nobody listens on",
    );
    c.expect(tcbpf(&["exporter", "bogus"]), 2, "unknown verb");
    // Was 3 from the exporter (the kernel's EACCES), 2 from `tcbpf map`.
    c.expect(
        watch(&["pinned", i.directory()]),
        2,
        "a directory as a map pin",
    );
    c.expect(
        as_nobody(&["map", "watch", "id", "1", "count", "1"]),
        3,
        "map by id without privilege",
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    c.expect(
        tcbpf(&["exporter", "listen", &addr, "dev", "lo"]),
        4,
        "an address in use",
    );
    c.done();
}

#[test]
fn tcbpf_sync_exits_with_the_documented_codes() {
    tcbpf_testkit::require_root!();
    siblings_built();
    let i = Inputs::new();
    let mut c = Cases(Vec::new());
    // The follower opens its maps before it connects: no etcd is needed
    // for these; port 1 has no etcd (connection refused).
    fn follow<'a>(map: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["sync", "etcd", "127.0.0.1:1", "prefix", "/exit-codes"];
        args.extend_from_slice(map);
        args
    }
    let missing = i.missing_pin();
    c.expect(tcbpf(&follow(&["pinned", &missing])), 1, "missing pin");
    c.expect(tcbpf(&["sync", "bogus"]), 2, "unknown verb");
    // Was 3 from sync (the kernel's EACCES), 2 from `tcbpf map`.
    c.expect(
        tcbpf(&follow(&["pinned", i.directory()])),
        2,
        "a directory as a map pin",
    );
    c.expect(
        as_nobody(&follow(&["id", "1"])),
        3,
        "map by id without privilege",
    );
    c.expect(
        tcbpf(&[
            "sync",
            "get",
            "127.0.0.1:1",
            "timeout",
            "1",
            "prefix",
            "/exit-codes",
            "map",
            "x",
            "key",
            "1",
        ]),
        4,
        "no etcd at the endpoint",
    );
    c.done();
}

#[test]
fn tcbpf_dump_exits_with_the_documented_codes() {
    tcbpf_testkit::require_root!();
    siblings_built();
    let mut c = Cases(Vec::new());
    c.expect(
        tcbpf(&["dump", "dev", "tcbpf-no-dev0", "count", "1"]),
        1,
        "missing device",
    );
    c.expect(tcbpf(&["dump", "bogus"]), 2, "unknown word");
    c.expect(
        tcbpf(&["dump", "dev", "lo", "snaplen", "99999"]),
        2,
        "snaplen past 2048",
    );
    c.expect(
        as_nobody(&["dump", "dev", "lo", "count", "1"]),
        3,
        "tracing without privilege",
    );
    // tcbpf-dump has no other failure a test can cause on a sound system;
    // the one its users meet is `tcbpf` not finding it: 4, as for every
    // helper binary.
    let alone = TempDir::new("exit-alone");
    let copy: PathBuf = alone.join("tcbpf");
    tcbpf_testkit::copy_executable(TCBPF, &copy);
    let mut cmd = Command::new(&copy);
    cmd.args(["dump", "dev", "lo"]).env("PATH", s(&alone.0));
    c.expect(tcbpf_testkit::output(cmd), 4, "tcbpf-dump not installed");
    c.done();
}

//! `tcbpf dump`'s grammar, exit codes and refusals against the real
//! kernel: the usage text is docs/dump.md's, bad words exit 2, a missing
//! device or an empty hook exits 1, a program without BTF exits 2 saying
//! why, a process without CAP_BPF/CAP_PERFMON exits 3 naming them, and a
//! refused or failed start leaves nothing attached.

use std::os::fd::AsFd;
use std::process::Command;
use tcbpf::attach::tcx::{self, Direction};
use tcbpf::load::{self, LoadOptions};
use tcbpf::sys::info;
use tcbpf::tc::{device, Socket};
use tcbpf_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_tcbpf-dump");

/// `tcbpf-dump ARGS…` in network namespace `ns` (only the network
/// namespace is switched, by `ip netns exec`; dump needs no pins).
fn dump_in(ns: &Netns, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name, BIN]).args(args);
    c
}

fn btf_prog(name: &str) -> load::LoadedObject {
    load::load_file(
        &fixture("dump_targets.o"),
        &LoadOptions {
            section: Some("tc".into()),
            program: Some(name.into()),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// The ids of the tracing links that exist now.
fn tracing_links() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["link", "show"])
        .output()
        .expect("bpftool");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" tracing "))
        .map(str::to_string)
        .collect()
}

#[test]
fn help_is_the_docs_page_block() {
    let r = output({
        let mut c = Command::new(BIN);
        c.arg("help");
        c
    });
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("Usage: tcbpf dump dev DEV"),
        "{}",
        r.stdout
    );
    let page = std::fs::read_to_string(repo().join("docs/dump.md")).unwrap();
    assert!(
        page.contains(&format!("```\n{}```", r.stdout)),
        "docs/dump.md's 'tcbpf dump' block differs from 'tcbpf dump help'"
    );
}

#[test]
fn bad_words_exit_2_naming_the_word() {
    for (args, says) in [
        (vec![], "expected 'dev DEV'"),
        (vec!["dev", "v0", "snaplen", "99999"], "snaplen 99999"),
        (
            vec!["dev", "v0", "verdict", "maybe"],
            "unknown verdict 'maybe'",
        ),
        (vec!["dev", "v0", "bogus"], "unknown word 'bogus'"),
        (
            vec!["dev", "v0", "filter", "udp prot 1"],
            "filter 'udp prot 1'",
        ),
        (vec!["dev", "v0", "count", "0"], "count must be at least 1"),
    ] {
        let mut c = Command::new(BIN);
        c.args(&args);
        let (code, err) = fails(c);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn missing_device_and_empty_hook_exit_1() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let (code, err) = fails(dump_in(&pair.b, &["dev", "nosuchdev0"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such device 'nosuchdev0'"), "{err}");
    let (code, err) = fails(dump_in(&pair.b, &["dev", "v1", "ingress"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no tc program on v1 ingress"), "{err}");
    let (code, err) = fails(dump_in(&pair.b, &["prog", "4000000000"]));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn program_without_btf_exits_2_saying_why() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let plain = constant_prog(PASS);
    let id = info::prog_info(&plain).unwrap().id;
    let _link = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        tcx::attach(ifindex, Direction::Ingress, plain.as_fd()).unwrap()
    });
    let (code, err) = fails(dump_in(&pair.b, &["dev", "v1", "tcx", "ingress"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("program {id} 'tc_const' has no BTF")),
        "{err}"
    );
    assert!(err.contains("clang -g"), "{err}");
}

#[test]
fn without_cap_bpf_and_cap_perfmon_exit_3_naming_them() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let obj = btf_prog("pass_all");
    let _link = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        tcx::attach(ifindex, Direction::Ingress, obj.main_program().fd.as_fd()).unwrap()
    });
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &pair.b.name])
        .args(["setpriv", "--bounding-set=-bpf,-perfmon", BIN])
        .args(["dev", "v1", "ingress"]);
    let (code, err) = fails(c);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(
            "tracing needs CAP_BPF and CAP_PERFMON; this process lacks CAP_BPF and CAP_PERFMON"
        ),
        "{err}"
    );
}

/// Whatever the kernel says to the tracing programs, a dump that cannot
/// start (here: refused trampolines, or a bad filter after discovery)
/// leaves the traced program attached and no tracing link behind.
#[test]
fn a_dump_that_cannot_start_leaves_nothing_attached() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let obj = btf_prog("pass_all");
    let id = info::prog_info(&obj.main_program().fd).unwrap().id;
    let _link = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        tcx::attach(ifindex, Direction::Ingress, obj.main_program().fd.as_fd()).unwrap()
    });
    let before = tracing_links();
    let r = output(dump_in(
        &pair.b,
        &["dev", "v1", "ingress", "snaplen", "4096"],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = output(dump_in(&pair.b, &["dev", "v1", "ingress", "count", "1"]));
    if r.code == 3 {
        // This kernel refuses BPF trampolines even to root.
        assert!(
            r.stderr.contains("BPF trampolines are not allowed here"),
            "{}",
            r.stderr
        );
    }
    let still: Vec<u32> = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        tcx::list(ifindex, Direction::Ingress)
            .unwrap()
            .iter()
            .map(|p| p.prog_id)
            .collect()
    });
    assert_eq!(still, vec![id]);
    // Other tests may trace at the same time: none of ours may remain, so
    // the count cannot have grown.
    let after = tracing_links();
    assert!(after.len() <= before.len(), "left behind: {after:?}");
}

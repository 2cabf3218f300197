//! `chain apply` against rivals and bad input: two applies on one hook at
//! once take turns (the hook ends as exactly one chain, a chain applied
//! twice runs once), and a chain FILE or `pinned` entry that is not what it
//! should be is bad input (exit 2) named in one line. Real tcx hooks on a
//! veth pair in the test's own namespaces; run as root.

use std::process::{Command, Stdio};
use tcbpf_testkit::*;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tcbpf(line: &str, fs: &Bpffs) -> Command {
    tcbpf_testkit::tcbpf(TCBPF, line.split_whitespace(), Some(&fs.path))
}

fn chain_line(func: &str) -> String {
    format!("obj {} sec tc program {func}", s(&fixture("chain.o")))
}

/// The names of the programs on v1's tcx ingress hook, in run order.
fn hook_names(net: &VethPair, fs: &Bpffs) -> Vec<String> {
    let out = ok(tcbpf(
        &format!("-j -n {} filter show dev v1 tcx ingress", net.b.name),
        fs,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["prog"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Starts `chain apply dev v1 tcx ingress FILE` (not waited for).
fn start_apply(net: &VethPair, fs: &Bpffs, file: &std::path::Path) -> std::process::Child {
    tcbpf(
        &format!(
            "-n {} chain apply dev v1 tcx ingress {}",
            net.b.name,
            s(file)
        ),
        fs,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn concurrent_applies_on_one_hook_end_as_exactly_one_chain() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("chain-race");
    let a = dir.join("a.chain");
    let b = dir.join("b.chain");
    std::fs::write(
        &a,
        format!("{}\n{}\n", chain_line("tc1"), chain_line("tc2")),
    )
    .unwrap();
    std::fs::write(
        &b,
        format!("{}\n{}\n", chain_line("tc3"), chain_line("tc4")),
    )
    .unwrap();
    let chain_a = ["tc1", "tc2"];
    let chain_b = ["tc3", "tc4"];
    // Different chains: whichever runs last wins, whole.
    for round in 0..10 {
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let mut p1 = start_apply(&net, &fs, first);
        let mut p2 = start_apply(&net, &fs, second);
        for p in [&mut p1, &mut p2] {
            let status = p.wait().unwrap();
            let mut err = String::new();
            std::io::Read::read_to_string(p.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "round {round}: {err}");
        }
        let names = hook_names(&net, &fs);
        assert!(
            names == chain_a || names == chain_b,
            "round {round}: the hook runs {names:?}, not one chain"
        );
    }
    // The same chain twice at once: it runs once.
    for round in 0..6 {
        let mut p1 = start_apply(&net, &fs, &a);
        let mut p2 = start_apply(&net, &fs, &a);
        assert!(p1.wait().unwrap().success(), "same-chain round {round}");
        assert!(p2.wait().unwrap().success(), "same-chain round {round}");
        assert_eq!(hook_names(&net, &fs), chain_a, "same-chain round {round}");
    }
}

#[test]
fn chain_files_and_pins_that_are_not_what_they_should_be_exit_2() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("chain-bad");
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, [0xff, 0xfe, 0x00, 0x9c, 0x80, b'\n', 0xc3]).unwrap();
    let nul = dir.join("nul.chain");
    std::fs::write(&nul, format!("{}\0oops\n", chain_line("tc1"))).unwrap();
    let big = dir.join("big.chain");
    std::fs::write(&big, "# padding\n".repeat(200_000)).unwrap();
    let map_pin = fs.join("a_map");
    let m = tcbpf::sys::map::create(&tcbpf::sys::map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: &unique("chain"),
        ..Default::default()
    })
    .unwrap();
    tcbpf::sys::obj::pin(&m, &map_pin).unwrap();
    let pinned = |name: &str, target: &str| {
        let f = dir.join(name);
        std::fs::write(&f, format!("pinned {target}\n")).unwrap();
        f
    };
    let map_entry = pinned("map.chain", s(&map_pin));
    let passwd_entry = pinned("passwd.chain", "/etc/passwd");
    let cases: [(&str, &std::path::Path, &str); 7] = [
        ("garbage bytes", &garbage, "line 1: not UTF-8 text"),
        ("a directory", dir.0.as_path(), "a directory"),
        (
            "/dev/zero",
            std::path::Path::new("/dev/zero"),
            "not a regular file",
        ),
        ("a NUL byte", &nul, "line 1: a NUL byte"),
        ("2 MB", &big, "longer than 1048576 bytes"),
        ("a map pin", &map_entry, "not a bpf program"),
        (
            "pinned /etc/passwd",
            &passwd_entry,
            "not on a bpf filesystem",
        ),
    ];
    for (what, file, needle) in cases {
        let r = output(tcbpf(
            &format!("-n {} chain apply dev lo tcx ingress {}", ns.name, s(file)),
            &fs,
        ));
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{what}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{what}: {}", r.stderr);
    }
}

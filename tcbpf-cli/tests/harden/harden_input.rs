//! Bounded input: object files that are devices, FIFOs or huge, `map load`
//! streams without newlines, and words echoed in errors. Each command runs
//! under a 2 GB address-space limit, so a regression fails fast instead of
//! exhausting the machine's memory. Run as root.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf::sys::map;
use tcbpf_testkit::{unique, Bpffs, Run, TempDir};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// `tcbpf ARGS` under `ulimit -v 2000000` (2 GB of address space), with
/// `stdin` as standard input; at most 60 s.
fn limited(args: &str, stdin: Stdio) -> Run {
    let mut c = Command::new("sh");
    c.args(["-c", &format!("ulimit -v 2000000; exec {TCBPF} {args}")])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = c.spawn().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{args} took too long"
    );
    out.into()
}

#[test]
fn obj_show_and_load_refuse_devices_fifos_and_directories() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("objdev");
    let fifo = dir.join("fifo.o");
    let rc = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(rc.success());
    let fs = Bpffs::new();
    for file in [
        "/dev/zero".to_string(),
        fifo.display().to_string(),
        dir.0.display().to_string(),
    ] {
        for cmd in [
            format!("obj show {file}"),
            format!("obj load {file} bpffs {} pin {}", fs.as_str(), fs.arg("p")),
        ] {
            let r = limited(&cmd, Stdio::null());
            assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
            assert!(
                r.stderr.contains("not a regular file"),
                "{cmd}: {}",
                r.stderr
            );
            assert_eq!(r.stderr.lines().count(), 1, "{cmd}: {}", r.stderr);
        }
    }
}

#[test]
fn chain_apply_refuses_an_object_that_is_a_device() {
    // chain apply read its objects whole with no bound: `obj /dev/zero`
    // grew until memory ran out.
    tcbpf_testkit::require_root!();
    let ns = tcbpf_testkit::Netns::new();
    let dir = TempDir::new("chaindev");
    let list = dir.join("chain");
    std::fs::write(&list, "obj /dev/zero\n").unwrap();
    let cmd = format!(
        "-n {} chain apply dev lo tcx ingress {}",
        ns.name,
        list.display()
    );
    let r = limited(&cmd, Stdio::null());
    assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
    assert!(
        r.stderr.contains("not a regular file"),
        "{cmd}: {}",
        r.stderr
    );
}

fn u32_hash() -> tcbpf::sys::MapFd {
    map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 16,
        name: &unique("hi"),
        ..Default::default()
    })
    .unwrap()
}

fn pinned_u32_hash(fs: &Bpffs) -> String {
    let m = u32_hash();
    let pin = fs.join(unique("m"));
    tcbpf::sys::obj::pin(&m, &pin).unwrap();
    pin.display().to_string()
}

#[test]
fn map_load_from_a_stream_without_newlines_is_an_error_not_an_exhaustion() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = pinned_u32_hash(&fs);
    let r = limited(
        &format!("map load pinned {pin} key u32 value u32 from /dev/zero"),
        Stdio::null(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("longer than"),
        "{}",
        r.stderr
    );
    // The same through standard input.
    let r = limited(
        &format!("map load pinned {pin} key u32 value u32"),
        Stdio::from(std::fs::File::open("/dev/zero").unwrap()),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("longer than"), "{}", r.stderr);
}

#[test]
fn a_huge_word_is_shown_by_its_start_and_length_in_errors() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = pinned_u32_hash(&fs);
    let word = "9".repeat(50_000);
    // In a load line.
    let dir = TempDir::new("bigword");
    let input = dir.join("in");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, "1 2").unwrap();
    writeln!(f, "{word} 3").unwrap();
    drop(f);
    let r = limited(
        &format!(
            "map load pinned {pin} key u32 value u32 from {}",
            input.display()
        ),
        Stdio::null(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert!(r.stderr.contains("(50000 bytes)"), "{}", r.stderr);
    assert!(r.stderr.len() < 400, "error of {} bytes", r.stderr.len());
    // An extra word after the value.
    std::fs::write(&input, format!("1 2 {}\n", "x".repeat(50_000))).unwrap();
    let r = limited(
        &format!(
            "map load pinned {pin} key u32 value u32 from {}",
            input.display()
        ),
        Stdio::null(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("(50000 bytes)") && r.stderr.len() < 400,
        "{}",
        r.stderr
    );
    // On the command line.
    for args in [
        format!("map update pinned {pin} key u32 {word} value u32 1"),
        format!("map update pinned {pin} key {word} value u32 1"),
        format!("map lookup pinned {pin} key u32 1 value {word}"),
    ] {
        let r = limited(&args, Stdio::null());
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("(50000 bytes)"), "{}", r.stderr);
        assert!(r.stderr.len() < 600, "error of {} bytes", r.stderr.len());
    }
}

#[test]
fn lpm_trie_load_keeps_the_last_line_for_keys_that_differ_only_in_host_bits() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let m = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::LpmTrie as u32,
        key_size: 8,
        value_size: 4,
        max_entries: 40_000,
        map_flags: tcbpf::abi::map_flags::NO_PREALLOC,
        name: &unique("lpm"),
        ..Default::default()
    })
    .unwrap();
    let pin = fs.join(unique("lpm"));
    tcbpf::sys::obj::pin(&m, &pin).unwrap();
    // Big enough for the parallel path: pairs of lines whose keys are one
    // kernel entry (same prefix, host bits differ), the later value last.
    let dir = TempDir::new("lpm");
    let input = dir.join("in");
    let mut text = String::new();
    let pairs = 12_000u32;
    for i in 0..pairs {
        let (a, b) = (i / 256, i % 256);
        let len = 24 + (i % 3) * 2; // 24, 26, 28: the host bits still differ
        let (first, last) = if len == 24 { (1, 2 + i % 200) } else { (1, 2) };
        text.push_str(&format!("{len} 10.{a}.{b}.{first} 1\n"));
        text.push_str(&format!("{len} 10.{a}.{b}.{last} 2\n"));
    }
    std::fs::write(&input, &text).unwrap();
    for run in 0..6 {
        // Every run loads the whole file again: the last line must win.
        let r = limited(
            &format!(
                "map load pinned {} key u32 ip4 value u32 from {}",
                pin.display(),
                input.display()
            ),
            Stdio::null(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut key = [0u8; 8];
        let mut value = [0u8; 4];
        let mut wrong = 0;
        for i in 0..pairs {
            let len = 24 + (i % 3) * 2;
            key[..4].copy_from_slice(&len.to_ne_bytes());
            key[4..].copy_from_slice(&[10, (i / 256) as u8, (i % 256) as u8, 0]);
            map::lookup(&m, &key, &mut value, 0).unwrap();
            if u32::from_ne_bytes(value) != 2 {
                wrong += 1;
            }
        }
        assert_eq!(
            wrong, 0,
            "run {run}: {wrong} of {pairs} prefixes kept an earlier line's value"
        );
    }
}

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

fn u32_hash() -> tcbpf::sys::MapFd {
    map::create(&map::MapCreate {
        map_type: map::MapType::Hash as u32,
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

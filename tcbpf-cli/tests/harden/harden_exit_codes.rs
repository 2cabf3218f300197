//! Every exit code the README documents, one case each, and the cases that
//! used to give the wrong one: a verifier rejection with E2BIG, a program
//! or a directory where a map pin should be, a pinned path that is no bpf
//! object. 0 ok, 1 not found, 2 usage or bad input, 3 permission denied,
//! 4 other failure. Run as root.

use std::process::Command;
use tcbpf::sys::map;
use tcbpf_testkit::{constant_prog, fixture, s, unique, Bpffs, Run, TempDir, PASS};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tcbpf(args: &[&str]) -> Run {
    tcbpf_testkit::output(tcbpf_testkit::tcbpf(TCBPF, args, None))
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

fn expect(r: &Run, code: i32, needle: &str, what: &str) {
    assert_eq!(r.code, code, "{what}: {}", r.stderr);
    assert!(r.stderr.contains(needle), "{what}: {}", r.stderr);
}

#[test]
fn a_verifier_rejection_with_e2big_exits_2() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let r = tcbpf(&[
        "obj",
        "load",
        s(&fixture("deep_calls.o")),
        "bpffs",
        fs.as_str(),
        "pin",
        &fs.arg("p"),
    ]);
    expect(&r, 2, "too deep", "call stack too deep");
    assert!(r.stderr.contains("rejected"), "{}", r.stderr);
}

#[test]
fn a_program_or_a_directory_where_a_map_pin_should_be_exits_2_naming_it() {
    tcbpf_testkit::require_root!();
    // verdict_legacy.o pins its 'stats' map at BPFFS/tc/globals/stats.
    for what in ["program", "directory"] {
        let fs = Bpffs::new();
        let pin = fs.join("tc/globals/stats");
        std::fs::create_dir_all(pin.parent().unwrap()).unwrap();
        if what == "program" {
            tcbpf::sys::obj::pin(constant_prog(PASS), &pin).unwrap();
        } else {
            std::fs::create_dir(&pin).unwrap();
        }
        let r = tcbpf(&[
            "obj",
            "load",
            s(&fixture("verdict_legacy.o")),
            "bpffs",
            fs.as_str(),
            "pin",
            &fs.arg("p"),
        ]);
        expect(&r, 2, what, what);
        assert!(r.stderr.contains(s(&pin)), "{what}: {}", r.stderr);
        assert!(!fs.join("p").exists(), "{what}: nothing pinned");
    }
}

#[test]
fn map_pinned_at_something_that_is_not_a_bpf_map_exits_2() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let prog_pin = fs.join("prog");
    tcbpf::sys::obj::pin(constant_prog(PASS), &prog_pin).unwrap();
    let dir = fs.join("dir");
    std::fs::create_dir(&dir).unwrap();
    let plain = TempDir::new("notbpf");
    let file = plain.join("file");
    std::fs::write(&file, b"x").unwrap();
    for path in ["/etc/passwd", s(&file), s(&dir), s(&prog_pin), s(&plain.0)] {
        for verb in ["show", "dump"] {
            let r = tcbpf(&["map", verb, "pinned", path]);
            expect(&r, 2, "not a bpf map", &format!("{verb} {path}"));
        }
    }
}

fn hash(entries: u32) -> tcbpf::sys::MapFd {
    map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        name: &unique("ec"),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn every_documented_map_exit_code() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let m = hash(1);
    let pin = fs.join("m");
    tcbpf::sys::obj::pin(&m, &pin).unwrap();
    let p = s(&pin);
    let id = tcbpf::sys::info::map_info(&m).unwrap().id.to_string();
    expect(
        &tcbpf(&[
            "map", "update", "pinned", p, "key", "u32", "1", "value", "u32", "7",
        ]),
        0,
        "",
        "update",
    );
    expect(
        &tcbpf(&["map", "lookup", "pinned", p, "key", "u32", "2"]),
        1,
        "",
        "missing key",
    );
    expect(
        &tcbpf(&["map", "lookup", "pinned", &fs.arg("none")]),
        1,
        "no such pin",
        "missing pin",
    );
    expect(
        &tcbpf(&["map", "lookup", "env", "NOPE"]),
        1,
        "not set",
        "missing env",
    );
    expect(
        &tcbpf(&["map", "dump", "pinned", p, "key", "u24"]),
        2,
        "unknown type",
        "bad type",
    );
    expect(
        &tcbpf(&["map", "lookup", "pinned", p, "key", "u64", "2"]),
        2,
        "expected 4 bytes",
        "size",
    );
    expect(
        &as_nobody(&["map", "lookup", "id", &id, "key", "u32", "1"]),
        3,
        "",
        "no privilege for id",
    );
    // A full hash map refuses a new key with E2BIG: another failure.
    expect(
        &tcbpf(&[
            "map", "update", "pinned", p, "key", "u32", "2", "value", "u32", "7",
        ]),
        4,
        "",
        "full map",
    );
}

#[test]
fn every_documented_obj_load_exit_code() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("ecobj");
    let pin = fs.arg("p");
    let load = |file: &str| tcbpf(&["obj", "load", file, "bpffs", fs.as_str(), "pin", &pin]);
    expect(&load(s(&fixture("verdict_btf.o"))), 0, "", "loads");
    std::fs::remove_file(fs.join("p")).unwrap();
    expect(&load(s(&dir.join("missing.o"))), 1, "", "missing file");
    let junk = dir.join("junk.o");
    std::fs::write(&junk, b"not an ELF file").unwrap();
    expect(&load(s(&junk)), 2, "", "not ELF");
    expect(&load(s(&fixture("reject.o"))), 2, "rejected", "verifier");
    let r = as_nobody(&[
        "obj",
        "load",
        s(&fixture("verdict_btf.o")),
        "bpffs",
        s(&dir.0),
        "pin",
        s(&dir.join("p")),
    ]);
    expect(&r, 3, "EPERM", "no privilege");
}

#[test]
fn every_documented_import_and_export_exit_code() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("ecimp");
    let sock = dir.join("s.sock");
    let m = hash(4);
    let id = tcbpf::sys::info::map_info(&m).unwrap().id.to_string();
    expect(
        &tcbpf(&["map", "export", s(&sock), "id", &id]),
        1,
        "nobody is listening",
        "no importer",
    );
    expect(
        &tcbpf(&["exec", "bpf", "import", s(&sock), "timeout", "0.05"]),
        4,
        "timed out",
        "timeout",
    );
    std::fs::write(&sock, b"").unwrap();
    expect(
        &tcbpf(&["exec", "bpf", "import", s(&sock), "timeout", "0.05"]),
        2,
        "already exists",
        "exists",
    );
    expect(
        &tcbpf(&["exec", "bpf", "import"]),
        2,
        "socket path",
        "usage",
    );
}

/// Maps tcbpf created and still holds open are freed when it exits: the
/// kernel's count of hash maps named NAME must be back to `before`.
fn maps_named(name: &str) -> usize {
    let mut n = 0;
    let mut id = 0;
    while let Ok(Some(next)) = tcbpf::sys::obj::next_map_id(id) {
        id = next;
        if let Ok(fd) = tcbpf::sys::obj::map_by_id(next, 0) {
            if tcbpf::sys::info::map_info(&fd).is_ok_and(|i| i.name == name) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn map_memory_over_the_limit_is_refused_before_any_map_exists() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.arg("p");
    let obj_path = fixture("verdict_btf.o");
    let obj = s(&obj_path);
    // An explicit limit, as a word and from the environment.
    let r = tcbpf(&[
        "obj",
        "load",
        obj,
        "bpffs",
        fs.as_str(),
        "max-memory",
        "1000",
        "pin",
        &pin,
    ]);
    expect(&r, 2, "more than the limit", "word");
    assert!(
        r.stderr.contains("map '") && r.stderr.contains("bytes"),
        "{}",
        r.stderr
    );
    let mut c = Command::new(TCBPF);
    c.args(["obj", "load", obj, "bpffs", fs.as_str(), "pin", &pin])
        .env("TCBPF_MAX_MAP_MEMORY", "1000");
    expect(&tcbpf_testkit::output(c), 2, "TCBPF_MAX_MAP_MEMORY", "env");
    assert!(
        !fs.join("p").exists() && !fs.join("tc").exists(),
        "nothing pinned"
    );
    // A generous one loads.
    let r = tcbpf(&[
        "obj",
        "load",
        obj,
        "bpffs",
        fs.as_str(),
        "max-memory",
        "1000000000",
        "pin",
        &pin,
    ]);
    expect(&r, 0, "", "generous limit");

    // The default limit (half the RAM) stops a 550 GB map at once, naming it.
    let before = maps_named("small");
    let start = std::time::Instant::now();
    let r = tcbpf(&[
        "obj",
        "load",
        s(&fixture("huge_map.o")),
        "bpffs",
        fs.as_str(),
        "pin",
        &fs.arg("h"),
    ]);
    expect(&r, 2, "map 'huge'", "huge map");
    assert!(r.stderr.contains("134217728 entries"), "{}", r.stderr);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "refused quickly"
    );
    assert_eq!(maps_named("small"), before, "no map was created");
}

#[test]
fn map_update_past_the_end_of_an_array_exits_2_naming_its_size() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.arg("arr");
    let r = tcbpf(&[
        "map", "create", "type", "array", "key", "4", "value", "8", "entries", "4", "pin", &pin,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = tcbpf(&[
        "map", "update", "pinned", &pin, "key", "u32", "4", "value", "u64", "1",
    ]);
    expect(
        &r,
        2,
        "key 4 is out of range: the array has 4 entries (0 to 3)",
        "index 4",
    );
    // The last index still works.
    let r = tcbpf(&[
        "map", "update", "pinned", &pin, "key", "u32", "3", "value", "u64", "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn each_error_line_is_one_write_so_a_shared_stderr_never_garbles_it() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("stderr-writes");
    let trace = dir.join("trace");
    // A failing command under strace: its error is one write(2) to fd 2.
    let out = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "4096",
            "-e",
            "trace=write",
            "-o",
            s(&trace),
            TCBPF,
        ])
        .args(["map", "lookup", "id", "4000000000", "key", "0"])
        .output()
        .expect("strace is installed (scripts/test.sh installs it)");
    assert_eq!(out.status.code(), Some(1));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<&str> = trace.lines().filter(|l| l.contains("write(2,")).collect();
    assert_eq!(writes.len(), 1, "{trace}");
    assert!(
        writes[0].contains(r#""tcbpf: id 4000000000: "#) && writes[0].contains(r#"\n""#),
        "{trace}"
    );
    // And so 40 failing processes on one pipe give 40 whole lines.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "i=0; while [ $i -lt 40 ]; do {TCBPF} map lookup id 4000000000 key 0 & i=$((i+1)); done; wait"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40, "{text}");
    let whole = String::from_utf8_lossy(
        &Command::new(TCBPF)
            .args(["map", "lookup", "id", "4000000000", "key", "0"])
            .output()
            .unwrap()
            .stderr,
    )
    .into_owned();
    for l in lines {
        assert_eq!(format!("{l}\n"), whole);
    }
}

//! `tcbpf map …` end to end (run as root): the CLI binary against real
//! kernel maps, each result checked independently through the sys layer.
//! Maps reach the child by descriptor (FD_CLOEXEC cleared in the child
//! only), by id, by pin in a private bpffs, by name and by environment.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use tcbpf::sys::{self, map, MapFd};
use tcbpf_testkit::{unique, Bpffs, Run, TempDir};

fn create(map_type: tcbpf::abi::MapType, key: u32, value: u32, entries: u32) -> MapFd {
    map::create(&map::MapCreate {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: entries,
        map_flags: if map_type == tcbpf::abi::MapType::LpmTrie {
            tcbpf::abi::map_flags::NO_PREALLOC
        } else {
            0
        },
        name: &unique("t"),
        ..Default::default()
    })
    .expect("create map")
}

/// A `tcbpf` command that inherits `fds` (their FD_CLOEXEC cleared in the child).
fn tcbpf(fds: &[RawFd], args: &[&str]) -> Command {
    let mut cmd = tcbpf_testkit::tcbpf(env!("CARGO_BIN_EXE_tcbpf"), args, None);
    tcbpf_testkit::inherit_fds(&mut cmd, fds);
    cmd
}

/// Runs `tcbpf ARGS` where the word `FD` stands for `fd N` of `m`.
fn run(m: &MapFd, args: &str) -> Run {
    let fd = m.as_raw_fd().to_string();
    let words: Vec<&str> = args
        .split_whitespace()
        .map(|w| if w == "FD" { fd.as_str() } else { w })
        .collect();
    tcbpf(&[m.as_raw_fd()], &words).output().unwrap().into()
}

fn run_ok(m: &MapFd, args: &str) -> String {
    let r = run(m, args);
    assert_eq!(r.code, 0, "tcbpf {args}: {}", r.stderr);
    r.stdout
}

fn lookup_u64(m: &MapFd, key: &[u8]) -> Option<u64> {
    let mut v = [0u8; 8];
    match map::lookup(m, key, &mut v, 0) {
        Ok(()) => Some(u64::from_ne_bytes(v)),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{e}"),
    }
}

fn count_keys(m: &MapFd, key_size: usize) -> usize {
    let mut prev: Option<Vec<u8>> = None;
    let mut next = vec![0u8; key_size];
    let mut n = 0;
    while map::next_key(m, prev.as_deref(), &mut next).unwrap() {
        n += 1;
        prev = Some(next.clone());
    }
    n
}

#[test]
fn hash_update_lookup_delete_round_trip_typed_and_json() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 16);
    run_ok(&m, "map update fd FD key u32 7 value u64 99");
    assert_eq!(lookup_u64(&m, &7u32.to_ne_bytes()), Some(99));
    assert_eq!(
        run_ok(&m, "map lookup fd FD key u32 7 value u64"),
        "key: 7  value: 99\n"
    );
    assert_eq!(
        run_ok(&m, "map lookup fd FD key u32 7"),
        "key: 7  value: 63 00 00 00 00 00 00 00\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&m, "-j map lookup fd FD key u32 7 value u64")).unwrap();
    assert_eq!(json, serde_json::json!({"key": 7, "value": 99}));
    run_ok(
        &m,
        "map update fd FD key hex 08 00 00 00 value 1 0 0 0 0 0 0 0",
    );
    assert_eq!(lookup_u64(&m, &8u32.to_ne_bytes()), Some(1));
    run_ok(&m, "map delete fd FD key 7 0 0 0");
    assert_eq!(lookup_u64(&m, &7u32.to_ne_bytes()), None);
    let r = run(&m, "map lookup fd FD key u32 7");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("key 7 not found"), "{}", r.stderr);
    assert_eq!(run(&m, "map delete fd FD key u32 7").code, 1);
}

#[test]
fn update_flags_exist_and_noexist_are_honoured() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 16);
    let r = run(&m, "map update fd FD key u32 1 value u64 5 exist");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(lookup_u64(&m, &1u32.to_ne_bytes()), None);
    run_ok(&m, "map update fd FD key u32 1 value u64 5 noexist");
    let r = run(&m, "map update fd FD key u32 1 value u64 6 noexist");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("exists already"), "{}", r.stderr);
    run_ok(&m, "map update fd FD key u32 1 value u64 6 exist");
    assert_eq!(lookup_u64(&m, &1u32.to_ne_bytes()), Some(6));
}

#[test]
fn array_dump_lists_every_slot_as_bpftool_hex_and_typed_json() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Array, 4, 4, 3);
    run_ok(&m, "map update fd FD key u32 2 value be32 258");
    assert_eq!(
        run_ok(&m, "map dump fd FD"),
        "key: 00 00 00 00  value: 00 00 00 00\nkey: 01 00 00 00  value: 00 00 00 00\nkey: 02 00 00 00  value: 00 00 01 02\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&m, "-j map dump fd FD key u32 value be32")).unwrap();
    assert_eq!(json[2], serde_json::json!({"key": 2, "value": 258}));
    assert_eq!(json.as_array().unwrap().len(), 3);
    let pretty = run_ok(&m, "-p map dump fd FD key u32 value be32");
    assert!(pretty.lines().count() > 3, "{pretty}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
        json
    );
    let r = run(&m, "map update fd FD key u32 3 value u32 1");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("out of range"), "{}", r.stderr);
}

#[test]
fn percpu_hash_takes_one_value_for_all_cpus_or_one_per_cpu() {
    tcbpf_testkit::require_root!();
    let cpus = sys::possible_cpus().unwrap();
    let m = create(tcbpf::abi::MapType::PercpuHash, 4, 8, 8);
    run_ok(&m, "map update fd FD key u32 1 value u64 5");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let mut v = vec![0u8; sizes.value()];
    map::lookup(&m, &1u32.to_ne_bytes(), &mut v, 0).unwrap();
    for cpu in 0..cpus {
        assert_eq!(
            u64::from_ne_bytes(v[cpu * 8..cpu * 8 + 8].try_into().unwrap()),
            5
        );
    }
    let per_cpu: Vec<String> = (0..cpus).map(|c| format!("u64 {}", c + 1)).collect();
    run_ok(
        &m,
        &format!("map update fd FD key u32 2 value {}", per_cpu.join(" ")),
    );
    map::lookup(&m, &2u32.to_ne_bytes(), &mut v, 0).unwrap();
    for cpu in 0..cpus {
        assert_eq!(
            u64::from_ne_bytes(v[cpu * 8..cpu * 8 + 8].try_into().unwrap()),
            cpu as u64 + 1
        );
    }
    let total = (cpus * (cpus + 1) / 2).to_string();
    assert_eq!(
        run_ok(&m, "map lookup fd FD key u32 2 value u64 sum"),
        format!("key: 2  value: {total}\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&m, "-j map lookup fd FD key u32 2 value u64")).unwrap();
    let values = json["values"].as_array().unwrap();
    assert_eq!(values.len(), cpus);
    assert_eq!(
        values[cpus - 1],
        serde_json::json!({"cpu": cpus - 1, "value": cpus})
    );
    // A wrong number of values changes nothing.
    let r = run(
        &m,
        "map update fd FD key u32 2 value u64 9 u64 9 u64 9 u64 9 u64 9 u64 9 u64 9 u64 9 u64 9",
    );
    if cpus != 9 {
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("expected 8 bytes"), "{}", r.stderr);
    }
    map::lookup(&m, &2u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v[..8].try_into().unwrap()), 1);
}

#[test]
fn percpu_array_dump_sums_integer_values() {
    tcbpf_testkit::require_root!();
    let cpus = sys::possible_cpus().unwrap() as u64;
    let m = create(tcbpf::abi::MapType::PercpuArray, 4, 4, 2);
    run_ok(&m, "map update fd FD key u32 1 value u32 3");
    let out = run_ok(&m, "map dump fd FD key u32 value u32 sum");
    assert_eq!(
        out,
        format!("key: 0  value: 0\nkey: 1  value: {}\n", 3 * cpus)
    );
    let r = run(&m, "map dump fd FD key u32 value ip4 sum");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("integer"), "{}", r.stderr);
}

#[test]
fn lru_hash_round_trips_and_evicts_beyond_its_size() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::LruHash, 4, 8, 64);
    run_ok(&m, "map update fd FD key u32 1 value u64 11");
    assert_eq!(lookup_u64(&m, &1u32.to_ne_bytes()), Some(11));
    let lines: String = (0..1000).map(|k| format!("{k} {}\n", k * 2)).collect();
    let fd = m.as_raw_fd().to_string();
    let mut child = tcbpf(
        &[m.as_raw_fd()],
        &["map", "load", "fd", &fd, "key", "u32", "value", "u64"],
    )
    .stdin(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = count_keys(&m, 4);
    assert!(
        n > 0 && n <= 64 + 2 * sys::possible_cpus().unwrap(),
        "{n} entries"
    );
    assert_eq!(lookup_u64(&m, &999u32.to_ne_bytes()), Some(1998));
}

#[test]
fn queue_and_stack_push_pop_peek_in_order_and_report_empty() {
    tcbpf_testkit::require_root!();
    for (kind, order) in [
        (tcbpf::abi::MapType::Queue, [1, 2, 3]),
        (tcbpf::abi::MapType::Stack, [3, 2, 1]),
    ] {
        let m = create(kind, 0, 4, 8);
        for v in 1..=3 {
            run_ok(&m, &format!("map push fd FD value u32 {v}"));
        }
        assert_eq!(
            run_ok(&m, "map peek fd FD value u32"),
            format!("value: {}\n", order[0])
        );
        for want in order {
            assert_eq!(
                run_ok(&m, "map pop fd FD value u32"),
                format!("value: {want}\n")
            );
        }
        let r = run(&m, "map pop fd FD");
        assert_eq!(r.code, 1, "{kind:?}");
        assert!(r.stderr.contains("is empty"), "{}", r.stderr);
        let mut v = [0u8; 4];
        assert!(map::peek(&m, &mut v).unwrap_err().is_not_found());
        map::push(&m, &42u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(
            run_ok(&m, "-j map peek fd FD value u32"),
            "{\"value\":42}\n"
        );
        assert_eq!(run(&m, "map dump fd FD").code, 2);
    }
}

#[test]
fn lpm_trie_created_by_cli_matches_longest_prefix() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.join("lpm");
    let pin_s = pin.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcbpf"))
        .args([
            "-j", "map", "create", "type", "lpm_trie", "key", "8", "value", "8", "entries", "16",
            "name", "lpm_cli", "pin", pin_s,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["type"], "lpm_trie");
    assert_eq!(shown["flags"], 1);
    let m = sys::obj::get_pinned_map(&pin, 0).unwrap();
    run_ok(&m, "map update fd FD key u32 24 ip4 10.1.2.0 value u64 5");
    run_ok(&m, "map update fd FD key u32 16 ip4 10.1.0.0 value u64 6");
    let mut key = 32u32.to_ne_bytes().to_vec();
    key.extend_from_slice(&[10, 1, 2, 77]);
    assert_eq!(lookup_u64(&m, &key), Some(5));
    assert_eq!(
        run_ok(&m, "map lookup fd FD key u32 32 ip4 10.1.9.9 value u64"),
        "key: 32 10.1.9.9  value: 6\n"
    );
    let dump = run_ok(&m, "map dump fd FD key u32 ip4 value u64");
    let mut lines: Vec<&str> = dump.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["key: 16 10.1.0.0  value: 6", "key: 24 10.1.2.0  value: 5"]
    );
}

#[test]
fn bulk_load_and_dump_of_100000_entries_agree_with_the_kernel() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 100_000);
    let dir = TempDir::new("bulk");
    let file = dir.join("entries.txt");
    let text: String = (0..100_000u64)
        .map(|k| format!("{k} {}\n", k * 3 + 1))
        .collect();
    std::fs::write(&file, text).unwrap();
    let loaded = run(
        &m,
        &format!("map load fd FD key u32 value u64 from {}", file.display()),
    );
    drop(dir);
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert_eq!(count_keys(&m, 4), 100_000);
    for k in [0u32, 1, 4242, 99_999] {
        assert_eq!(lookup_u64(&m, &k.to_ne_bytes()), Some(k as u64 * 3 + 1));
    }
    let dump = run_ok(&m, "map dump fd FD key u32 value u64");
    let mut seen = vec![false; 100_000];
    for line in dump.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((w[0], w[2]), ("key:", "value:"), "{line}");
        let (k, v): (usize, u64) = (w[1].parse().unwrap(), w[3].parse().unwrap());
        assert_eq!(v, k as u64 * 3 + 1);
        assert!(!std::mem::replace(&mut seen[k], true), "key {k} twice");
    }
    assert!(seen.iter().all(|s| *s));
    // The typed dump loads back unchanged into a fresh map.
    let copy = create(tcbpf::abi::MapType::Hash, 4, 8, 100_000);
    let fd = copy.as_raw_fd().to_string();
    let mut child = tcbpf(
        &[copy.as_raw_fd()],
        &[
            "map", "load", "fd", &fd, "key", "u32", "value", "u64", "from", "-",
        ],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dump.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(count_keys(&copy, 4), 100_000);
    assert_eq!(lookup_u64(&copy, &77u32.to_ne_bytes()), Some(232));
}

#[test]
fn load_with_a_bad_line_writes_nothing_and_names_the_line() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 16);
    let dir = TempDir::new("badload");
    let file = dir.join("entries.txt");
    std::fs::write(&file, "1 10\n# comment\n\n2 20\n3 x\n").unwrap();
    let r = run(
        &m,
        &format!("map load fd FD key u32 value u64 from {}", file.display()),
    );
    drop(dir);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("line 5") && r.stderr.contains("'x'"),
        "{}",
        r.stderr
    );
    assert_eq!(count_keys(&m, 4), 0);
}

#[test]
fn large_load_with_a_bad_line_names_its_number_and_writes_nothing() {
    tcbpf_testkit::require_root!();
    // Large enough to be parsed by several threads: the line number must
    // count the lines of the stretches before the bad one.
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 100_000);
    let mut text: String = (0..60_000).map(|k| format!("{k} {k}\n")).collect();
    text.push_str("# a comment\n\n60000 1 2\n60001 1\n");
    let dir = TempDir::new("badbig");
    let file = dir.join("entries.txt");
    std::fs::write(&file, text).unwrap();
    let r = run(
        &m,
        &format!("map load fd FD key u32 value u64 from {}", file.display()),
    );
    drop(dir);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("line 60003: unexpected word '2'"),
        "{}",
        r.stderr
    );
    assert_eq!(count_keys(&m, 4), 0);
}

/// A child that gives up root (setgroups, setgid, setuid to 65534) and
/// inherits `fds`.
fn unprivileged(fds: &[RawFd], args: &[&str]) -> Run {
    let mut cmd = tcbpf(fds, args);
    // SAFETY: only async-signal-safe calls in the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap().into()
}

#[test]
fn unprivileged_child_uses_inherited_fd_and_is_refused_writes_on_read_only_one() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 16);
    let fd = m.as_raw_fd().to_string();
    let r = unprivileged(
        &[m.as_raw_fd()],
        &[
            "map", "update", "fd", &fd, "key", "u32", "3", "value", "u64", "33",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lookup_u64(&m, &3u32.to_ne_bytes()), Some(33));
    let r = unprivileged(
        &[m.as_raw_fd()],
        &[
            "map", "lookup", "fd", &fd, "key", "u32", "3", "value", "u64",
        ],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "key: 3  value: 33\n"),
        "{}",
        r.stderr
    );
    let r = unprivileged(
        &[m.as_raw_fd()],
        &["map", "dump", "fd", &fd, "key", "u32", "value", "u64"],
    );
    assert_eq!(r.stdout, "key: 3  value: 33\n", "{}", r.stderr);

    let id = sys::info::map_info(&m).unwrap().id;
    let ro = sys::obj::map_by_id(id, sys::obj::open::RDONLY).unwrap();
    let rofd = ro.as_raw_fd().to_string();
    let r = unprivileged(
        &[ro.as_raw_fd()],
        &[
            "map", "update", "fd", &rofd, "key", "u32", "3", "value", "u64", "44",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("EPERM"), "{}", r.stderr);
    assert_eq!(lookup_u64(&m, &3u32.to_ne_bytes()), Some(33));
    let r = unprivileged(
        &[ro.as_raw_fd()],
        &[
            "map", "lookup", "fd", &rofd, "key", "u32", "3", "value", "u64",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Without the descriptor, the same user cannot reach the map by id.
    let r = unprivileged(
        &[],
        &["map", "lookup", "id", &id.to_string(), "key", "u32", "3"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn env_id_and_env_name_read_the_exec_proxy_variables() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 4);
    map::update(&m, &1u32.to_ne_bytes(), &10u64.to_ne_bytes(), 0).unwrap();
    let fd = m.as_raw_fd().to_string();
    let out = tcbpf(
        &[m.as_raw_fd()],
        &[
            "map", "lookup", "env", "7", "key", "u32", "1", "value", "u64",
        ],
    )
    .env("BPF_MAP7", &fd)
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key: 1  value: 10\n");
    let out = tcbpf(
        &[m.as_raw_fd()],
        &[
            "map",
            "lookup",
            "env",
            "my-counters",
            "key",
            "u32",
            "1",
            "value",
            "u64",
        ],
    )
    .env("BPF_MAP_MY_COUNTERS", &fd)
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key: 1  value: 10\n");
    let r: Run = tcbpf(&[], &["map", "lookup", "env", "nosuch", "key", "u32", "1"])
        .env_remove("BPF_MAP_NOSUCH")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("BPF_MAP_NOSUCH is not set"),
        "{}",
        r.stderr
    );
}

#[test]
fn id_pinned_and_name_reach_the_same_map_and_ambiguous_names_are_refused() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let name = unique("nm");
    let m = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Hash as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 4,
        name: &name,
        ..Default::default()
    })
    .unwrap();
    map::update(&m, &1u32.to_ne_bytes(), &10u64.to_ne_bytes(), 0).unwrap();
    let id = sys::info::map_info(&m).unwrap().id.to_string();
    run_ok(&m, &format!("map pin id {id} {}", fs.join("p").display()));
    for how in [
        format!("id {id}"),
        format!("pinned {}", fs.join("p").display()),
        format!("name {name}"),
    ] {
        assert_eq!(
            run_ok(&m, &format!("map lookup {how} key u32 1 value u64")),
            "key: 1  value: 10\n",
            "{how}"
        );
    }
    let shown: serde_json::Value =
        serde_json::from_str(&run_ok(&m, &format!("-j map show name {name}"))).unwrap();
    assert_eq!(shown["id"].to_string(), id);
    assert_eq!(
        (shown["bytes_key"].as_u64(), shown["bytes_value"].as_u64()),
        (Some(4), Some(8))
    );
    let _twin = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: &name,
        ..Default::default()
    })
    .unwrap();
    let r = run(&m, &format!("map lookup name {name} key u32 1"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("ambiguous"), "{}", r.stderr);
    assert_eq!(
        run(&m, "map lookup name tcbpf_no_such_map key u32 1").code,
        1
    );
}

#[test]
fn freeze_shows_frozen_and_refuses_updates() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Array, 4, 8, 2);
    run_ok(&m, "map update fd FD key u32 0 value u64 1");
    run_ok(&m, "map freeze fd FD");
    assert!(sys::info::map_fdinfo(&m).unwrap().frozen);
    let shown: serde_json::Value = serde_json::from_str(&run_ok(&m, "-j map show fd FD")).unwrap();
    assert_eq!(shown["frozen"], 1);
    assert!(run_ok(&m, "map show fd FD").contains("frozen"));
    let r = run(&m, "map update fd FD key u32 0 value u64 2");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(lookup_u64(&m, &0u32.to_ne_bytes()), Some(1));
}

#[test]
fn next_walks_keys_and_says_when_done() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 4);
    map::update(&m, &5u32.to_ne_bytes(), &1u64.to_ne_bytes(), 0).unwrap();
    assert_eq!(run_ok(&m, "map next fd FD"), "next key: 05 00 00 00\n");
    let r = run(&m, "map next fd FD key u32 5");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no key after 5"), "{}", r.stderr);
}

#[test]
fn bad_input_gives_one_line_errors_and_documented_exit_codes() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 4);
    let cases: &[(&str, i32, &str)] = &[
        (
            "map update fd FD key u64 1 value u64 1",
            2,
            "key: expected 4 bytes, given 8",
        ),
        (
            "map update fd FD key u32 1 value u32 1",
            2,
            "value: expected 8 bytes, given 4",
        ),
        ("map lookup fd FD key u24 1", 2, "not a byte"),
        ("map dump fd FD key u24", 2, "unknown type 'u24'"),
        (
            "map update fd FD key u32 4294967296 value u64 1",
            2,
            "out of range for u32",
        ),
        (
            "map update fd FD key u32 -1 value u64 1",
            2,
            "not a valid u32",
        ),
        (
            "map update fd FD key ip4 10.0.0.300 value u64 1",
            2,
            "not a valid ip4",
        ),
        (
            "map update fd FD key u32 1 value mac 02:00:00:00:00 u16 0",
            2,
            "not a valid mac",
        ),
        (
            "map update fd FD key 1 2 3 999 value u64 1",
            2,
            "'999' is not a byte",
        ),
        (
            "map lookup fd 987 key u32 1",
            2,
            "fd 987: descriptor is not open",
        ),
        ("map lookup fd 0 key u32 1", 2, "not a bpf map"),
        (
            "map lookup pinned /sys/fs/bpf/tcbpf-surely-missing key u32 1",
            1,
            "no such pin",
        ),
        ("map frobnicate fd FD", 2, "unknown map command"),
        ("map update fd FD key u32 1", 2, "expected 'value DATA'"),
        ("map pop fd FD", 2, "needs a queue or stack"),
    ];
    for (args, code, message) in cases {
        let r = run(&m, args);
        assert_eq!(r.code, *code, "tcbpf {args}: {}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "tcbpf {args}: {:?} lacks {message:?}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "tcbpf {args}: {}", r.stderr);
        assert!(r.stderr.starts_with("tcbpf: "), "{}", r.stderr);
    }
    assert_eq!(count_keys(&m, 4), 0);
}

#[test]
fn pin_of_a_program_is_not_a_map() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let insns = [
        tcbpf::abi::Insn {
            code: 0xb7,
            ..Default::default()
        }, // r0 = 0
        tcbpf::abi::Insn {
            code: 0x95,
            ..Default::default()
        }, // exit
    ];
    let prog = sys::prog::load(&sys::prog::ProgLoad {
        prog_type: 3,
        insns: &insns,
        license: "GPL",
        name: "notamap",
        ..Default::default()
    })
    .map_err(|e| e.error)
    .unwrap();
    let path = fs.join("prog");
    sys::obj::pin(&prog.fd, &path).unwrap();
    let r: Run = tcbpf(&[], &["map", "show", "pinned", path.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a bpf map"), "{}", r.stderr);
    let _ = Path::new(&path);
}

#[test]
fn devmap_without_batch_support_falls_back_to_per_element_dump_and_load() {
    tcbpf_testkit::require_root!();
    // The kernel has no batch commands for devmaps (ENOTSUPP); values are
    // ifindexes, and lo is 1 in every network namespace.
    let m = create(tcbpf::abi::MapType::Devmap, 4, 4, 4);
    let sizes = map::ElemSizes::of(&m).unwrap();
    let mut cursor = map::BatchCursor::new(&sizes);
    let err = map::lookup_batch(&m, &sizes, &mut cursor, &mut [0; 64], &mut [0; 64]).unwrap_err();
    assert!(map::is_unsupported(&err), "{err}");
    run_ok(&m, "map update fd FD key u32 0 value u32 1");
    let r = tcbpf(
        &[m.as_raw_fd()],
        &[
            "map",
            "load",
            "fd",
            &m.as_raw_fd().to_string(),
            "key",
            "u32",
            "value",
            "u32",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .and_then(|mut c| {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(b"2 1\n3 1\n")?;
        c.wait_with_output()
    })
    .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut v = [0u8; 4];
    map::lookup(&m, &3u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(v), 1);
    assert_eq!(
        run_ok(&m, "map dump fd FD key u32 value u32"),
        "key: 0  value: 1\nkey: 2  value: 1\nkey: 3  value: 1\n"
    );
}

#[test]
fn large_percpu_hash_loads_and_dumps_each_entry_once_with_sums() {
    tcbpf_testkit::require_root!();
    let cpus = sys::possible_cpus().unwrap() as u64;
    let n = 70_000u64;
    let m = create(tcbpf::abi::MapType::PercpuHash, 4, 8, n as u32);
    let dir = TempDir::new("pcpu");
    let file = dir.join("entries.txt");
    std::fs::write(
        &file,
        (0..n)
            .map(|k| format!("{k} {}\n", k + 5))
            .collect::<String>(),
    )
    .unwrap();
    let loaded = run(
        &m,
        &format!("map load fd FD key u32 value u64 from {}", file.display()),
    );
    drop(dir);
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert_eq!(count_keys(&m, 4), n as usize);
    let dump = run_ok(&m, "-j map dump fd FD key u32 value u64 sum");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&dump).unwrap();
    assert_eq!(entries.len(), n as usize);
    let mut seen = vec![false; n as usize];
    for e in &entries {
        let k = e["key"].as_u64().unwrap();
        assert_eq!(e["value"].as_u64(), Some((k + 5) * cpus), "{e}");
        assert!(
            !std::mem::replace(&mut seen[k as usize], true),
            "key {k} twice"
        );
    }
}

#[test]
fn large_array_dumps_every_slot_in_order_through_the_walker_thread() {
    tcbpf_testkit::require_root!();
    // 20,000 slots: large enough for the walker thread, not a hash map.
    let m = create(tcbpf::abi::MapType::Array, 4, 8, 20_000);
    let sizes = map::ElemSizes::of(&m).unwrap();
    let keys: Vec<u8> = (0..20_000u32).flat_map(|k| k.to_ne_bytes()).collect();
    let values: Vec<u8> = (0..20_000u64)
        .flat_map(|k| (k * 11).to_ne_bytes())
        .collect();
    map::update_batch(&m, &sizes, &keys, &values, 0).unwrap();
    let dump = run_ok(&m, "map dump fd FD key u32 value u64");
    let want: String = (0..20_000u64)
        .map(|k| format!("key: {k}  value: {}\n", k * 11))
        .collect();
    assert!(dump == want, "dump differs from the array's slots");
}

#[test]
fn read_verbs_open_pins_read_only_so_a_read_only_pin_serves_unprivileged_readers() {
    tcbpf_testkit::require_root!();
    use std::os::unix::fs::PermissionsExt;
    let fs = Bpffs::new();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 4);
    map::update(&m, &1u32.to_ne_bytes(), &10u64.to_ne_bytes(), 0).unwrap();
    let pin = fs.join("ro");
    sys::obj::pin(&m, &pin).unwrap();
    std::fs::set_permissions(&fs.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o444)).unwrap();
    let p = pin.to_str().unwrap();
    let r = unprivileged(
        &[],
        &[
            "map", "lookup", "pinned", p, "key", "u32", "1", "value", "u64",
        ],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "key: 1  value: 10\n"),
        "{}",
        r.stderr
    );
    let r = unprivileged(
        &[],
        &["map", "dump", "pinned", p, "key", "u32", "value", "u64"],
    );
    assert_eq!(r.stdout, "key: 1  value: 10\n", "{}", r.stderr);
    let r = unprivileged(
        &[],
        &[
            "map", "update", "pinned", p, "key", "u32", "1", "value", "u64", "5",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(lookup_u64(&m, &1u32.to_ne_bytes()), Some(10));
}

#[test]
fn a_keeper_nobody_listens_on_is_not_found_for_every_verb_as_in_map_watch() {
    let dir = TempDir::new("mapk");
    // A socket file nobody listens on any more (a keeper that died).
    let stale = dir.0.join("keeper.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let stale = stale.to_str().unwrap();
    for verb in [
        vec!["map", "lookup", "keeper", stale, "set/ctr", "key", "0"],
        vec!["map", "dump", "keeper", stale, "set/ctr"],
        vec!["map", "show", "keeper", stale, "ctr"],
    ] {
        let r: Run = tcbpf(&[], &verb).output().unwrap().into();
        assert_eq!(r.code, 1, "{verb:?}: {}", r.stderr);
        assert!(r.stderr.contains("no keeper is listening"), "{}", r.stderr);
    }
}

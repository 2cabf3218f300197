//! Every generation of the hand-off's `struct bpf_elf_map` (20, 24, 28 and
//! 36 bytes per entry, all under `uds_ver` 1), both ways, as separate
//! processes over real sockets and real maps:
//!
//! - a Python exporter that packs entries as older tc releases did
//!   (`tests/generations/old_tc_sender.py`, SCM_RIGHTS from `socket.sendmsg`)
//!   into `tcbpf exec bpf import`;
//! - a C importer built here with gcc from its own source
//!   (`tests/generations/receiver28.c`, the 2016–2017 layout) receiving from
//!   `tcbpf map export … entry-size 28`;
//! - what each importer does with more than 64 maps (tcbpf, the 28-byte C
//!   importer, the real `tc exec bpf import`).
//!
//! Run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcbpf::sys::{info::map_info, map, MapFd};
use tcbpf_testkit::{env_vars, next_id, output, s, Importer, Run, SockPath, TempDir};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn generations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generations")
}

fn import_cmd(path: &Path, json: bool, run: &[&str]) -> Command {
    let mut c = Command::new(TCBPF);
    if json {
        c.arg("-j");
    }
    c.args(["exec", "bpf", "import", s(path), "timeout", "20"]);
    if !run.is_empty() {
        c.arg("run").args(run);
    }
    c
}

fn kernel_id(m: &MapFd) -> u32 {
    map_info(m).unwrap().id
}

/// The words of one entry of `size` bytes, packed by hand in the order that
/// generation of iproute2's `struct bpf_elf_map` had them (not by tcbpf's
/// encoder, which is what is under test).
fn entry_words(size: usize, m: &MapFd, id: u32, flags: u32, pinning: u32) -> Vec<u32> {
    let info = map_info(m).unwrap();
    let (t, k, v, max) = (
        info.map_type,
        info.key_size,
        info.value_size,
        info.max_entries,
    );
    match size {
        20 => vec![t, k, v, max, id],
        24 => vec![t, k, v, max, id, pinning],
        28 => vec![t, k, v, max, flags, id, pinning],
        36 => vec![t, k, v, max, flags, id, pinning, 0, 0],
        _ => unreachable!("no such generation"),
    }
}

/// Runs the Python exporter: `maps` are (entry size, map, entry words),
/// `chunk` maps per datagram.
fn python_send(path: &Path, chunk: usize, maps: &[(usize, &MapFd, Vec<u32>)]) {
    let mut cmd = Command::new("python3");
    cmd.arg(generations_dir().join("old_tc_sender.py"))
        .arg(path)
        .arg("old_tc.o")
        .arg(chunk.to_string());
    for (size, m, words) in maps {
        let words: Vec<String> = words.iter().map(u32::to_string).collect();
        cmd.arg(format!("{size}:{}:{}", kernel_id(m), words.join(",")));
    }
    let r = output(cmd);
    assert_eq!(r.code, 0, "python sender: {}{}", r.stdout, r.stderr);
}

fn hash_map(name: &str, max_entries: u32) -> MapFd {
    tcbpf_testkit::hash_map(name, 4, 8, max_entries)
}

fn value_at_1(m: &MapFd) -> Option<u64> {
    let mut v = [0u8; 8];
    map::lookup(m, &1u32.to_ne_bytes(), &mut v, 0).ok()?;
    Some(u64::from_ne_bytes(v))
}

#[test]
fn python_sender_of_every_entry_size_gives_the_same_environment_and_usable_maps() {
    tcbpf_testkit::require_root!();
    for size in [20usize, 24, 28, 36] {
        let tag = next_id();
        let a = hash_map(&format!("gen{tag}a"), 16);
        let b = hash_map(&format!("gen{tag}b"), 32);
        let maps = [
            (size, &a, entry_words(size, &a, 7, 1, 2)),
            (size, &b, entry_words(size, &b, 9, 0, 0)),
        ];

        // What arrived, as JSON: the generation is told from the datagram.
        let path = SockPath::new("gen-json");
        let mut imp = Importer::start(import_cmd(&path.0, true, &[]), &path.0);
        python_send(&path.0, 64, &maps);
        let out = imp.finish();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{size}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(got["entry_size"], size, "{stdout}");
        assert_eq!(got["num_maps"], 2);
        assert_eq!(got["object"]["name"], "old_tc.o");
        let first = &got["maps"][0];
        assert_eq!(first["id"], 7);
        assert_eq!(first["name"], format!("gen{tag}a"));
        assert_eq!(first["max_entries"], 16);
        // flags came in at 28 bytes, pinning at 24.
        assert_eq!(first["flags"], if size >= 28 { 1 } else { 0 }, "{size}");
        assert_eq!(first["pinning"], if size >= 24 { 2 } else { 0 }, "{size}");
        assert_eq!(got["maps"][1]["id"], 9);
        assert_eq!(got["maps"][1]["max_entries"], 32);

        // The command sees the same environment whatever the generation,
        // and the maps work through it.
        let path = SockPath::new("gen-env");
        let script = format!(
            "env; {TCBPF} map update env 7 key u32 1 value u64 {size} && \
             {TCBPF} map update env GEN{tag}B key u32 1 value u64 {}",
            size * 10
        );
        let mut imp = Importer::start(import_cmd(&path.0, false, &["sh", "-c", &script]), &path.0);
        python_send(&path.0, 64, &maps);
        let out = imp.finish();
        assert!(
            out.status.success(),
            "{size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = env_vars(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(env.get("BPF_NUM_MAPS").map(String::as_str), Some("2"));
        assert_eq!(env.len(), 5, "{size}: {env:?}");
        assert_eq!(env["BPF_MAP7"], env[&format!("BPF_MAP_GEN{tag}A")]);
        assert_eq!(env["BPF_MAP9"], env[&format!("BPF_MAP_GEN{tag}B")]);
        assert_eq!(value_at_1(&a), Some(size as u64), "map id 7 is map a");
        assert_eq!(value_at_1(&b), Some(size as u64 * 10), "map id 9 is map b");
        assert!(!path.0.exists());
    }
}

#[test]
fn sixty_five_maps_in_28_byte_entries_arrive_in_two_datagrams() {
    tcbpf_testkit::require_root!();
    let tag = next_id();
    let maps: Vec<MapFd> = (0..65)
        .map(|i| hash_map(&format!("g{tag}_{i}"), 4))
        .collect();
    let entries: Vec<(usize, &MapFd, Vec<u32>)> = maps
        .iter()
        .enumerate()
        .map(|(i, m)| (28, m, entry_words(28, m, 100 + i as u32, 0, 0)))
        .collect();
    let path = SockPath::new("gen-65");
    let mut imp = Importer::start(import_cmd(&path.0, true, &[]), &path.0);
    python_send(&path.0, 64, &entries);
    let out = imp.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(got["num_maps"], 65);
    assert_eq!(got["entry_size"], 28);
    for i in 0..65 {
        assert_eq!(got["maps"][i]["id"], 100 + i as u64);
        assert_eq!(got["maps"][i]["name"], format!("g{tag}_{i}"));
    }
}

#[test]
fn a_transfer_that_changes_entry_size_between_datagrams_is_refused() {
    tcbpf_testkit::require_root!();
    let tag = next_id();
    let maps: Vec<MapFd> = (0..65)
        .map(|i| hash_map(&format!("c{tag}_{i}"), 4))
        .collect();
    let entries: Vec<(usize, &MapFd, Vec<u32>)> = maps
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let size = if i < 64 { 28 } else { 36 };
            (size, m, entry_words(size, m, i as u32, 0, 0))
        })
        .collect();
    let path = SockPath::new("gen-mix");
    let mut imp = Importer::start(import_cmd(&path.0, false, &["true"]), &path.0);
    python_send(&path.0, 64, &entries);
    let out = imp.finish();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("map entries changed from 28 to 36 bytes"),
        "{stderr}"
    );
    assert!(!path.0.exists(), "socket unlinked after the error");
}

/// Builds the 28-byte C importer into `dir`.
fn build_receiver28(dir: &TempDir) -> PathBuf {
    let bin = dir.join("receiver28");
    let r = output({
        let mut c = Command::new("gcc");
        c.args(["-Wall", "-Werror", "-O2", "-o"])
            .arg(&bin)
            .arg(generations_dir().join("receiver28.c"));
        c
    });
    assert_eq!(r.code, 0, "gcc: {}", r.stderr);
    bin
}

/// One `map I id ID type T …` line of the C importer, as name → number.
fn receiver_line(out: &str, index: usize) -> std::collections::HashMap<String, String> {
    let prefix = format!("map {index} ");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for map {index} in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[2..]
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect()
}

fn export(path: &Path, maps: &[(&MapFd, u32)], extra: &[&str]) -> Run {
    let mut c = Command::new(TCBPF);
    c.args(["map", "export", s(path)]);
    for (m, id) in maps {
        c.args(["id", &kernel_id(m).to_string(), "id", &id.to_string()]);
    }
    c.args(["obj", "gen28.o"]).args(extra);
    output(c)
}

#[test]
fn c_importer_of_28_byte_entries_reads_map_export_entry_size_28() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("gen-c");
    let receiver = build_receiver28(&dir);
    let tag = next_id();
    let a = hash_map(&format!("r{tag}a"), 16);
    let b = hash_map(&format!("r{tag}b"), 48);
    map::update(&a, &1u32.to_ne_bytes(), &111u64.to_ne_bytes(), 0).unwrap();
    map::update(&b, &1u32.to_ne_bytes(), &222u64.to_ne_bytes(), 0).unwrap();

    let path = SockPath::new("gen-c28");
    let mut cmd = Command::new(&receiver);
    cmd.arg(&path.0);
    let mut imp = Importer::start(cmd, &path.0);
    let r = export(&path.0, &[(&a, 3), (&b, 4)], &["entry-size", "28"]);
    assert_eq!(r.code, 0, "export: {}", r.stderr);
    let out = imp.finish();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("obj gen28.o num_ent 2 received 2\n"),
        "{stdout}"
    );
    let (m0, m1) = (receiver_line(&stdout, 0), receiver_line(&stdout, 1));
    let want = |m: &std::collections::HashMap<String, String>, k: &str, v: u64| {
        assert_eq!(m[k], v.to_string(), "{k} in {m:?}")
    };
    want(&m0, "id", 3);
    want(&m0, "type", 1);
    want(&m0, "key", 4);
    want(&m0, "value", 8);
    want(&m0, "max", 16);
    want(&m0, "value1", 111);
    want(&m1, "id", 4);
    want(&m1, "max", 48);
    want(&m1, "flags", map_info(&b).unwrap().map_flags as u64);
    want(&m1, "value1", 222);

    // The default (36 bytes, tc today) is what this importer cannot read:
    // its second entry starts 8 bytes early, which is why entry-size exists.
    let path = SockPath::new("gen-c36");
    let mut cmd = Command::new(&receiver);
    cmd.arg(&path.0);
    let mut imp = Importer::start(cmd, &path.0);
    let r = export(&path.0, &[(&a, 3), (&b, 4)], &[]);
    assert_eq!(r.code, 0, "export: {}", r.stderr);
    let stdout = String::from_utf8_lossy(&imp.finish().stdout).into_owned();
    let m1 = receiver_line(&stdout, 1);
    want(&m1, "type", 0);
    want(&m1, "id", 48); // the second map's max_entries, read as its id
}

#[test]
fn more_than_64_maps_each_importer_as_documented() {
    tcbpf_testkit::require_root!();
    let tag = next_id();
    let maps: Vec<MapFd> = (0..65)
        .map(|i| hash_map(&format!("x{tag}_{i}"), 4))
        .collect();
    for (i, m) in maps.iter().enumerate() {
        map::update(m, &1u32.to_ne_bytes(), &(i as u64).to_ne_bytes(), 0).unwrap();
    }
    let pairs: Vec<(&MapFd, u32)> = maps.iter().zip(0u32..).collect();
    // An exporter facing an importer that takes one datagram either finds
    // the rest queued (and lost with the importer's socket) or the socket
    // closed: success, or the error that says where it stopped.
    let exporter_outcome_is_known = |r: &Run| {
        r.code == 0
            || (r.code == 1
                && r.stderr
                    .contains("the importer stopped after 64 of 65 maps"))
    };

    // tcbpf: every map, 28-byte entries or 36.
    for size in ["28", "36"] {
        let path = SockPath::new("gen-x-tcbpf");
        let mut imp = Importer::start(import_cmd(&path.0, true, &[]), &path.0);
        let r = export(&path.0, &pairs, &["entry-size", size]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let got: serde_json::Value = serde_json::from_slice(&imp.finish().stdout).unwrap();
        assert_eq!(got["num_maps"], 65, "{size}");
        assert_eq!(got["entry_size"].to_string(), size);
    }

    // The 28-byte C importer (bpf_agent's loop): the first 64, num_ent 65.
    let dir = TempDir::new("gen-x");
    let receiver = build_receiver28(&dir);
    let path = SockPath::new("gen-x-c");
    let mut cmd = Command::new(&receiver);
    cmd.arg(&path.0);
    let mut imp = Importer::start(cmd, &path.0);
    let r = export(&path.0, &pairs, &["entry-size", "28"]);
    assert!(exporter_outcome_is_known(&r), "{r:?}");
    let stdout = String::from_utf8_lossy(&imp.finish().stdout).into_owned();
    assert!(
        stdout.starts_with("obj gen28.o num_ent 65 received 64\n"),
        "{stdout}"
    );
    assert_eq!(receiver_line(&stdout, 63)["value1"], "63");
    assert!(!stdout.contains("map 64 "), "{stdout}");

    // The real tc (iproute2 6.1): the first 64 as BPF_MAP0..63, while
    // BPF_NUM_MAPS says 65.
    let path = SockPath::new("gen-x-tc");
    let script = format!("env; {TCBPF} -j map lookup env 63 key u32 1 value u64");
    let mut cmd = Command::new("tc");
    cmd.args([
        "exec",
        "bpf",
        "import",
        s(&path.0),
        "run",
        "sh",
        "-c",
        &script,
    ]);
    let mut imp = Importer::start(cmd, &path.0);
    let r = export(&path.0, &pairs, &[]);
    assert!(exporter_outcome_is_known(&r), "{r:?}");
    let out = imp.finish();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "tc: {stdout}");
    let env = env_vars(&stdout);
    assert_eq!(env["BPF_NUM_MAPS"], "65");
    for i in 0..64 {
        assert!(env.contains_key(&format!("BPF_MAP{i}")), "BPF_MAP{i}");
    }
    assert!(stdout.contains("\"value\":63"), "{stdout}");
}

#[test]
fn filter_add_export_entry_size_28_reaches_the_c_importer_with_the_object_ids() {
    tcbpf_testkit::require_root!();
    let net = tcbpf_testkit::VethPair::new();
    let fs = tcbpf_testkit::Bpffs::new();
    let dir = TempDir::new("gen-filter");
    let receiver = build_receiver28(&dir);
    let uds = dir.join("maps.sock");
    let mut cmd = Command::new(&receiver);
    cmd.arg(&uds);
    let mut imp = Importer::start(cmd, &uds);
    let obj = tcbpf_testkit::fixture("verdict_legacy.o");
    let mut add = Command::new(TCBPF);
    add.args([
        "-n",
        &net.b.name,
        "filter",
        "add",
        "dev",
        "v1",
        "ingress",
        "bpf",
        "da",
        "obj",
        s(&obj),
        "sec",
        "classifier",
        "export",
        s(&uds),
        "entry-size",
        "28",
    ])
    .env_remove("TC_BPF_UDS")
    .env("TC_BPF_MNT", &fs.path);
    let r = output(add);
    assert_eq!(r.code, 0, "filter add: {}", r.stderr);
    let stdout = String::from_utf8_lossy(&imp.finish().stdout).into_owned();
    assert!(
        stdout.starts_with("obj ") && stdout.contains(" num_ent 2 received 2\n"),
        "{stdout}"
    );
    // verdict_legacy.o: blocked_ports id 7 hash key 2 value 4 max 64,
    // stats id 3 array key 4 value 8 max 2 pinned global (2).
    let maps: Vec<_> = (0..2).map(|i| receiver_line(&stdout, i)).collect();
    let by_id = |id: &str| maps.iter().find(|m| m["id"] == id).expect(id);
    let blocked = by_id("7");
    assert_eq!(
        (
            &*blocked["type"],
            &*blocked["key"],
            &*blocked["value"],
            &*blocked["max"]
        ),
        ("1", "2", "4", "64")
    );
    let stats = by_id("3");
    assert_eq!(
        (&*stats["type"], &*stats["max"], &*stats["pinning"]),
        ("2", "2", "2")
    );
    // The C importer looked up key 1 through the received descriptor.
    assert_eq!(stats["value1"], "0");
}

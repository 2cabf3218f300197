//! Shared pieces of the end-to-end tests (`e2e_*.rs`): the tcbpf binary and
//! the real tc run against namespaces, veth pairs and bpffs mounts from
//! `tc_support`, a private directory for sockets and marker files, and an
//! importer process (`tcbpf exec bpf import` or `tc exec bpf import`) that
//! is killed if the test fails before it ends.
#![allow(dead_code)]

#[path = "../../../tcbpf/tests/tc_support/mod.rs"]
pub mod tc_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
pub use tc_support::*;

/// The tcbpf binary under test.
pub const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// The repository root (where `bpf/` lives).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A committed eBPF object of `bpf/`, by absolute path.
pub fn object(name: &str) -> String {
    repo().join("bpf").join(name).to_str().unwrap().to_string()
}

/// `tcbpf` with the words of `line` (no spaces inside words), no export
/// socket from the environment, and `TC_BPF_MNT` at `mnt`.
pub fn tcbpf(line: &str, mnt: &Path) -> Command {
    let mut cmd = Command::new(TCBPF);
    cmd.args(line.split_whitespace())
        .env_remove("TC_BPF_UDS")
        .env("TC_BPF_MNT", mnt)
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, panicking with its stderr when it fails; returns stdout.
pub fn ok(mut cmd: Command) -> String {
    let out = cmd.output().expect("run tcbpf");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, expecting it to fail: its exit code and stderr.
pub fn fails(mut cmd: Command) -> (i32, String) {
    let out: Output = cmd.output().expect("run tcbpf");
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real `tc -n NS` with the words of `line`.
pub fn tc(ns: &Netns, line: &str) -> String {
    let mut all = vec!["-n", ns.name.as_str()];
    all.extend(line.split_whitespace());
    run("tc", &all)
}

/// A private directory under /tmp, removed with its contents on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("tcbpf-e2e-"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits up to `limit` for `path` to exist.
pub fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// An importer process listening on a socket; killed on drop.
pub struct Importer(Option<Child>);

impl Importer {
    /// Starts `cmd` (stdout and stderr captured) and waits until it has bound
    /// `uds`.
    pub fn start(mut cmd: Command, uds: &Path) -> Importer {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start importer");
        let importer = Importer(Some(child));
        assert!(
            wait_for(uds, Duration::from_secs(10)),
            "the importer did not bind {}",
            uds.display()
        );
        importer
    }

    /// Waits for the importer's command to end: its output.
    pub fn finish(&mut self) -> Output {
        self.0
            .take()
            .unwrap()
            .wait_with_output()
            .expect("wait importer")
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The shell lines that make the importer's command hold its maps until the
/// test creates `done` in `dir` (10 s at most), after saying `ready`.
pub fn hold_until_done(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "touch {d}/ready; i=0; while [ ! -e {d}/done ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"
    )
}

/// `KEY=VALUE` lines (the `BPF_*` part of an `env` listing) as a map.
pub fn env_vars(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("BPF_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The u64 at `index` of the array map pinned at `pin`.
pub fn pinned_u64(pin: &Path, index: u32) -> u64 {
    let m = tcbpf::sys::obj::get_pinned_map(pin, 0)
        .unwrap_or_else(|e| panic!("open pinned map {}: {e}", pin.display()));
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(&m, &index.to_ne_bytes(), &mut v, 0).expect("lookup");
    u64::from_ne_bytes(v)
}

/// Every file and directory under `dir` (relative paths, sorted).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The pins (every non-directory) under the bpffs `dir`, relative and
/// sorted, without the kernel's own `maps.debug` and `progs.debug`.
pub fn pins(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|p| !dir.join(p).is_dir() && p != "maps.debug" && p != "progs.debug")
        .collect()
}

/// The program id in a `tc filter show` line (`… id N name …`).
pub fn prog_id_in(shown: &str) -> u32 {
    let words: Vec<&str> = shown.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "id")
        .unwrap_or_else(|| panic!("no program id in: {shown}"));
    words[at + 1].parse().unwrap()
}

/// The map called `name` that program `prog_id` uses.
pub fn map_of_prog(prog_id: u32, name: &str) -> tcbpf::sys::MapFd {
    use tcbpf::sys::{info, obj};
    let prog = obj::prog_by_id(prog_id).expect("open program by id");
    for id in info::prog_info(&prog).expect("prog info").map_ids {
        let m = obj::map_by_id(id, 0).expect("open map by id");
        if info::map_info(&m).expect("map info").name == name {
            return m;
        }
    }
    panic!("program {prog_id} uses no map '{name}'")
}

/// Blocks UDP destination `port` in the `blocked_ports` map of `prog_id`.
pub fn block_port(prog_id: u32, port: u16) {
    let m = map_of_prog(prog_id, "blocked_ports");
    tcbpf::sys::map::update(&m, &port.to_be_bytes(), &1u32.to_ne_bytes(), 0).expect("block port");
}

//! Shared pieces of the end-to-end tests (`e2e_*.rs`): the tcbpf binary
//! run with a bpffs of the test, the importer's holding script, and reads of
//! pins and of the maps a loaded program uses. Namespaces, veth pairs,
//! bpffs mounts, temporary directories, the real tc and the importer guard
//! come from `tcbpf_testkit` (re-exported here).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
pub use tcbpf_testkit::*;

/// The tcbpf binary under test.
pub const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// A committed eBPF object of `bpf/`, by absolute path.
pub fn object(name: &str) -> String {
    s(&fixture(name)).to_string()
}

/// `tcbpf` with the words of `line` (no spaces inside words), no export
/// socket from the environment, and `TC_BPF_MNT` at `mnt`.
pub fn tcbpf(line: &str, mnt: &Path) -> Command {
    tcbpf_testkit::tcbpf(TCBPF, line.split_whitespace(), Some(mnt))
}

/// The shell lines that make the importer's command hold its maps until the
/// test creates `done` in `dir` (10 s at most), after saying `ready`.
pub fn hold_until_done(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "touch {d}/ready; i=0; while [ ! -e {d}/done ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"
    )
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

//! The README's five-minute tour, run as written: its shell blocks, in
//! order, in one bash, and every output line it shows (`# …` after a
//! command) printed. Only what would collide with other runs is
//! renamed: the namespaces get unique names, pins go to a private bpffs
//! (`TC_BPF_MNT`), `/run/tcbpf` is a temporary directory, and the
//! importer's shell lives 3 s instead of 20 (the test waits for it).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::{repo, unique, Bpffs, TempDir};

/// The tour's shell blocks, joined.
fn tour(readme: &str) -> String {
    let start = readme
        .find("## A five-minute tour")
        .expect("the README has a tour");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut script = String::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        rest = &rest[open + 6..];
        let close = rest.find("```").expect("a closed block");
        script.push_str(&rest[..close]);
        rest = &rest[close + 3..];
    }
    assert!(script.contains("filter upgrade") && script.contains("map commit"));
    script
}

/// The output lines the tour shows: comment lines that follow a command,
/// without the ones standing for a value that varies (`…`).
fn shown(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.contains('…'))
        .map(masked)
        .collect()
}

/// A line with the kernel's ids (after `program ` and `map id `) and the
/// number of entries a plan copies (the counters hold ARP or not, as the
/// neighbour caches of the namespaces go) as `N`.
fn masked(line: &str) -> String {
    let mut out = line.trim().to_string();
    if let Some(end) = out.find(" entries") {
        let start = out[..end]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |s| s + 1);
        if start < end {
            out.replace_range(start..end, "N");
        }
    }
    for word in ["program ", "map id "] {
        let mut at = 0;
        while let Some(found) = out[at..].find(word) {
            let digits = at + found + word.len();
            let end = out[digits..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(out.len(), |e| digits + e);
            if end > digits {
                out.replace_range(digits..end, "N");
            }
            at = digits;
        }
    }
    out
}

/// Namespaces the tour creates, deleted on drop.
struct NetnsNames(Vec<String>);

impl Drop for NetnsNames {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// The tour's bash and everything it started (one process group), killed
/// on drop.
struct Group(Child);

impl Group {
    /// Kills what is left of the group: after a failed step, the importer
    /// still waits for its export, holding the output pipes open.
    fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .output();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_tour_runs_as_written_and_prints_what_it_shows() {
    tcbpf_testkit::require_root!();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let script = tour(&readme);
    let expected = shown(&script);
    assert!(expected.len() >= 6, "{expected:?}");

    let names = NetnsNames(vec![unique("tt"), unique("tt")]);
    let bpffs = Bpffs::new();
    let dir = TempDir::new("tour");
    std::os::unix::fs::symlink(repo().join("bpf"), dir.join("bpf")).unwrap();
    let script = script
        .replace("tour0", &names.0[0])
        .replace("tour1", &names.0[1])
        .replace("/sys/fs/bpf", bpffs.as_str())
        .replace("/run/tcbpf", &format!("{}/run", dir.0.display()))
        .replace("sleep 20'", "sleep 3'")
        + "wait\n";
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_tcbpf"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut group = Group(
        Command::new("bash")
            .args(["-euc", &script])
            .current_dir(&dir.0)
            .env("PATH", path)
            .env("TC_BPF_MNT", bpffs.as_str())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the tour ran over 90 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    group.kill();
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    group
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    group
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "the tour failed: {status}\n{out}\n{err}");
    let printed: Vec<String> = out.lines().map(masked).collect();
    for line in &expected {
        assert!(
            printed.contains(line),
            "the tour shows '{line}' but printed:\n{out}\n{err}"
        );
    }
}

#[test]
fn ids_are_masked_and_varying_lines_are_not_shown() {
    assert_eq!(
        masked("  generation 1 (2 entries, map id 52517); program 31171 (upg_cls) -> x"),
        "generation 1 (N entries, map id N); program N (upg_cls) -> x"
    );
    assert_eq!(
        shown("tcbpf x\n# key: 0  value: 1\n# BPF_MAP3=…\nsleep 1 # not shown\n"),
        ["key: 0  value: 1"]
    );
}

//! A keeper under a hostile local user (issue 19): every supplementary
//! group of a client counts; a user with no policy line cannot lock root
//! out by holding connections, by pushing the keeper to its open-files
//! limit, or by never reading its replies; refusals are logged at a
//! limited rate and the client prints the keeper's "busy".

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::time::{Duration, Instant};
use tcbpf::keeper::{Access, Client};

const NOBODY: u32 = 65534;

/// `setpriv` as uid/gid 65534 with exactly `groups`, running `tcbpf WORDS`.
fn as_nobody_in(groups: &[u32], words: &[&str]) -> std::process::Command {
    let list: Vec<String> = groups.iter().map(u32::to_string).collect();
    let groups = if list.is_empty() {
        "--clear-groups".to_string()
    } else {
        format!("--groups={}", list.join(","))
    };
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        &groups,
        TCBPF,
    ])
    .args(words)
    .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn a_client_in_300_supplementary_groups_is_allowed_by_its_last_group() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kgrp");
    let policy = dir.join("policy");
    // Groups 47001..=47300: the policy names the last one, which a buffer
    // of 256 groups never sees.
    let groups: Vec<u32> = (47001..=47300).collect();
    std::fs::write(&policy, "allow gid 47300 set grp.o\n").unwrap();
    let k = KeeperProc::start(
        &dir.join("k"),
        &["policy", policy.to_str().unwrap(), "mode", "0666"],
        &fs.path,
    );
    let (m, id) = counter_hash(&format!("kg{}", next_id()), 1, 9);
    k.export_map(id, "grp.o");
    drop(m);
    let sock = k.sock.to_str().unwrap();
    let listed = ok(as_nobody_in(&groups, &["keeper", "list", sock]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("set grp.o") && l.contains("ro")),
        "the 300th group allows set grp.o read-only:\n{listed}"
    );
    // Without that group: nothing.
    let listed = ok(as_nobody_in(&groups[..299], &["keeper", "list", sock]));
    assert!(!listed.contains("grp.o"), "{listed}");
}

/// The example `keeper_load` (built by `cargo build -p tcbpf-cli
/// --example keeper_load`, as `cargo test` does).
fn keeper_load() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/keeper_load");
    assert!(
        bin.exists(),
        "example keeper_load not built at {}",
        bin.display()
    );
    bin
}

/// An attacking process, killed on drop (a failed test leaves none).
struct Attack(Option<std::process::Child>);

impl Attack {
    /// Waits for it to end by itself: its output.
    fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `keeper_load WORDS` as uid 65534, with room for 4096 descriptors of
/// its own; started, not waited for (it ends by itself).
fn attack_as_nobody(words: &[&str]) -> Attack {
    let mut cmd = std::process::Command::new("prlimit");
    cmd.args([
        "--nofile=4096:4096",
        "setpriv",
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ])
    .arg(keeper_load())
    .args(words)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    Attack(Some(cmd.spawn().expect("start keeper_load")))
}

/// Lowers the soft open-files limit of the running process `pid` (the
/// hard one stays: raising it back would need CAP_SYS_RESOURCE).
fn set_nofile(pid: i32, n: usize) {
    ok({
        let mut c = std::process::Command::new("prlimit");
        c.args([format!("--pid={pid}"), format!("--nofile={n}:")]);
        c
    });
}

/// The CPU time process `pid` used so far.
fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 here),
    // in clock ticks (100 per second on Linux).
    Duration::from_millis((f[11] + f[12]) * 10)
}

/// Root's `list` on `sock`, `n` times: the slowest, and how many failed.
fn root_lists(sock: &std::path::Path, n: usize) -> (Duration, Vec<String>) {
    let mut slowest = Duration::ZERO;
    let mut errors = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = Client::connect(sock).and_then(|c| c.list());
        slowest = slowest.max(t.elapsed());
        if let Err(e) = r {
            errors.push(e.to_string());
            break; // one failure says it: no need to wait for more
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (slowest, errors)
}

/// Waits (5 s at most) until the keeper at `sock` has `n` connections
/// open besides the one asking.
fn wait_open(sock: &std::path::Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = Client::connect(sock).unwrap().status().unwrap();
        let open = st
            .counters
            .iter()
            .find(|(k, _)| k == "connections_open")
            .map_or(0, |(_, v)| *v);
        if open == n + 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections open, not {n} + 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_thousand_connections_at_the_open_files_limit_neither_spin_nor_lock_root_out() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kfd");
    let mut k = KeeperProc::start(&dir.join("k"), &["mode", "0666"], &fs.path);
    let (m, id) = counter_hash(&format!("kf{}", next_id()), 1, 5);
    k.export_map(id, "f.o");
    drop(m);
    std::thread::sleep(Duration::from_millis(100));
    let base = k.fd_count();
    // Room for 6 connections: the limit is hit long before uid 65534's
    // own share (16) is.
    set_nofile(k.pid(), base + 6);
    let sock = k.sock.to_str().unwrap().to_string();
    let attack = attack_as_nobody(&["hold", &sock, "2000", "4"]);
    std::thread::sleep(Duration::from_millis(800));

    let cpu0 = cpu_time(k.pid());
    let t0 = Instant::now();
    let (slowest, errors) = root_lists(&k.sock, 20);
    let cpu = cpu_time(k.pid()) - cpu0;
    let wall = t0.elapsed();
    assert!(
        errors.is_empty(),
        "root refused during the attack: {errors:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "root's list took {slowest:?}"
    );
    assert!(
        cpu < wall / 2,
        "the keeper used {cpu:?} of CPU in {wall:?} (spinning on accept)"
    );

    let out = attack.wait_with_output();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("hold connected"), "{said}");
    std::thread::sleep(Duration::from_millis(300));
    let (slowest, errors) = root_lists(&k.sock, 5);
    assert!(
        errors.is_empty() && slowest < Duration::from_secs(1),
        "{errors:?} {slowest:?}"
    );
    assert_eq!(k.fd_count(), base, "every connection of the attack closed");
    let st = Client::connect(&k.sock).unwrap().status().unwrap();
    let counter = |name: &str| st.counters.iter().find(|(k, _)| k == name).unwrap().1;
    assert!(counter("fd_limit") > 0, "{:?}", st.counters);
    // Root got in at the limit by taking the place of uid 65534's oldest.
    assert!(counter("evicted") > 0, "{:?}", st.counters);
    assert!(counter("refused_connections") > 0, "{:?}", st.counters);

    let out = k.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    let lines = log.lines().count();
    assert!(lines < 100, "{lines} log lines:\n{log}");
    assert!(log.contains("open-files limit"), "{log}");
    assert!(log.contains("refused connection of pid"), "{log}");
}

#[test]
fn clients_that_never_read_their_gets_cost_only_themselves() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kslow");
    let policy = dir.join("policy");
    std::fs::write(&policy, format!("allow uid {NOBODY} set s.o ro\n")).unwrap();
    let mut k = KeeperProc::start(
        &dir.join("k"),
        &["policy", policy.to_str().unwrap(), "mode", "0666"],
        &fs.path,
    );
    let (m, id) = counter_hash(&format!("kn{}", next_id()), 1, 5);
    k.export_map(id, "s.o");
    drop(m);
    std::thread::sleep(Duration::from_millis(100));
    let base = k.fd_count();
    let sock = k.sock.to_str().unwrap().to_string();
    // 40 connections sending gets they never read (16 get in: the most
    // one user without 'rw' may hold).
    let attack = attack_as_nobody(&["unread", &sock, "s.o", "40", "4"]);
    std::thread::sleep(Duration::from_millis(800));
    let (slowest, errors) = root_lists(&k.sock, 20);
    assert!(
        errors.is_empty(),
        "root refused during the attack: {errors:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "root's list took {slowest:?}"
    );
    let got = Client::connect(&k.sock)
        .unwrap()
        .get("s.o", &[], Access::Best, false)
        .unwrap();
    assert_eq!(got.received.maps[0].info.id, id);
    drop(got);

    let out = attack.wait_with_output();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("unread sent"), "{said}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(k.fd_count(), base, "nothing of the attack stays open");
    let out = k.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.lines().count() < 100, "{log}");
    assert!(
        log.contains("busy: uid 65534 has 16 connections open"),
        "{log}"
    );
}

#[test]
fn a_user_over_its_connection_limit_is_told_busy_by_every_client_verb() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kbusy");
    let policy = dir.join("policy");
    std::fs::write(&policy, format!("allow uid {NOBODY} set b.o ro\n")).unwrap();
    let k = KeeperProc::start(
        &dir.join("k"),
        &["policy", policy.to_str().unwrap(), "mode", "0666"],
        &fs.path,
    );
    let name = format!("kb{}", next_id());
    let (m, id) = counter_hash(&name, 1, 5);
    k.export_map(id, "b.o");
    drop(m);
    let sock = k.sock.to_str().unwrap().to_string();
    let attack = attack_as_nobody(&["hold", &sock, "16", "20"]);
    wait_open(&k.sock, 16);
    let map = format!("b.o/{name}");
    for words in [
        vec!["keeper", "list", &sock],
        vec!["map", "lookup", "keeper", &sock, &map, "key", "u32", "1"],
        vec![
            "exec", "bpf", "import", "keeper", &sock, "set", "b.o", "run", "true",
        ],
    ] {
        let (code, err) = fails(as_nobody_in(&[], &words));
        assert_eq!(code, 4, "{words:?}: {err}");
        assert!(
            err.contains("keeper: busy: uid 65534 has 16 connections open"),
            "{words:?}: {err}"
        );
    }
    // Root is not limited per user.
    let (slowest, errors) = root_lists(&k.sock, 3);
    assert!(
        errors.is_empty() && slowest < Duration::from_secs(1),
        "{errors:?}"
    );
    drop(attack);
    wait_open(&k.sock, 0);
    let got = ok(as_nobody_in(&[], &["keeper", "list", &sock]));
    assert!(got.contains("set b.o"), "{got}");
}

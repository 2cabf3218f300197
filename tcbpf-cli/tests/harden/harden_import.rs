//! The importer under pressure: a flood of refused datagrams while nobody
//! reads its stderr, signals in every state, closed standard descriptors,
//! and the end of a `timeout`. Run as root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::{hash_map, unique, wait_for, SockPath};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");
const NOBODY: u32 = 65534;

/// Forks a process running as `nobody` that sends up to `count` empty
/// datagrams to `path` (never blocking; a full queue is skipped) for at most
/// `secs` seconds. Raw system calls only in the child (the parent has
/// threads).
fn flood_as_nobody(path: &Path, count: u32, secs: i64) -> libc::pid_t {
    let path_c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: the child only makes async-signal-safe system calls on data
    // prepared before the fork, then _exits.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(path_c.as_bytes()) {
            *d = *s as libc::c_char;
        }
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid > 0 {
            return pid;
        }
        if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
            libc::_exit(3);
        }
        let sock = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0);
        let mut start: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut start);
        let mut sent = 0;
        let byte = [0u8; 8];
        while sent < count {
            let mut now: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            if now.tv_sec - start.tv_sec >= secs {
                break;
            }
            let n = libc::sendto(
                sock,
                byte.as_ptr() as *const libc::c_void,
                byte.len(),
                libc::MSG_DONTWAIT,
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            );
            if n > 0 {
                sent += 1;
            }
        }
        libc::_exit(0);
    }
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for a child this test forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Waits for `child` at most `limit`: Some(exit code) or None (still running).
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An importer (`-j`, so it prints and exits) whose stderr is a pipe this
/// test never reads.
fn importer_with_unread_stderr(path: &Path, extra: &[&str]) -> Child {
    let child = Command::new(TCBPF)
        .args(["-j", "exec", "bpf", "import"])
        .arg(path)
        .args(["mode", "0666"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(path, Duration::from_secs(10)), "importer bound");
    child
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn flood_of_refused_datagrams_with_unread_stderr_does_not_stall_a_legit_export() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("flood");
    let mut imp = Killed(importer_with_unread_stderr(&path.0, &["timeout", "60"]));
    let flood = flood_as_nobody(&path.0, 5000, 8);
    reap(flood);
    let m = hash_map(&unique("fl"), 4, 8, 4);
    let id = tcbpf::sys::info::map_info(&m).unwrap().id.to_string();
    let mut export = Killed(
        Command::new(TCBPF)
            .args(["map", "export"])
            .arg(&path.0)
            .args(["id", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_eq!(
        wait_at_most(&mut export.0, Duration::from_secs(10)),
        Some(0),
        "the legitimate export went through"
    );
    assert_eq!(
        wait_at_most(&mut imp.0, Duration::from_secs(10)),
        Some(0),
        "the importer took the maps and ended"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(imp.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(imp.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["num_maps"], 1);
    let full = err.matches("dropped a datagram from uid 65534").count();
    assert!((1..=5).contains(&full), "first warnings in full: {err}");
    assert!(err.lines().count() < 20, "warnings rate-limited: {err}");
}

#[test]
fn sigterm_ends_an_importer_flooded_while_its_stderr_is_unread() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("floodterm");
    let mut imp = Killed(importer_with_unread_stderr(&path.0, &["timeout", "60"]));
    let flood = flood_as_nobody(&path.0, 5000, 8);
    reap(flood);
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(imp.0.id() as i32, libc::SIGTERM) };
    assert_eq!(
        wait_at_most(&mut imp.0, Duration::from_secs(10)),
        Some(4),
        "SIGTERM ended the importer"
    );
    assert!(!path.0.exists(), "socket removed");
}

/// `tcbpf exec bpf import PATH ARGS…` through `sh -c PREFIX exec …`.
fn import_via_shell(path: &Path, prefix: &str, args: &str) -> tcbpf_testkit::Importer {
    let script = format!(
        "{prefix} exec {TCBPF} exec bpf import {} {args}",
        path.display()
    );
    let mut c = Command::new("sh");
    c.args(["-c", &script]);
    tcbpf_testkit::Importer::start(c, path)
}

fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn terminating_signals_end_the_wait_like_sigterm_and_remove_the_socket() {
    for (sig, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
    ] {
        let path = SockPath::new("sig");
        let mut imp = import_via_shell(&path.0, "", "timeout 30");
        send_signal(imp.pid(), sig);
        let out = imp.finish();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{name}: {err}");
        assert!(
            err.contains(&format!("interrupted by {name}")),
            "{name}: {err}"
        );
        assert!(!path.0.exists(), "{name}: socket removed");
    }
}

#[test]
fn an_inherited_ignored_sigint_stays_ignored_while_waiting() {
    let path = SockPath::new("sigign");
    let mut imp = import_via_shell(&path.0, "trap '' INT HUP;", "timeout 30");
    send_signal(imp.pid(), libc::SIGINT);
    send_signal(imp.pid(), libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        path.0.exists(),
        "still waiting after the ignored SIGINT and SIGHUP"
    );
    send_signal(imp.pid(), libc::SIGTERM);
    let out = imp.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
}

#[test]
fn maps_never_land_on_descriptors_0_to_2_when_the_importer_starts_with_them_closed() {
    tcbpf_testkit::require_root!();
    let dir = tcbpf_testkit::TempDir::new("lowfd");
    let path = dir.join("bpf.sock");
    let env_file = dir.join("env");
    let m = hash_map(&unique("lf"), 4, 8, 4);
    let id = tcbpf::sys::info::map_info(&m).unwrap().id.to_string();
    let script = format!(
        "exec {TCBPF} exec bpf import {} timeout 30 run sh -c 'env > {}' <&- >&- 2>&-",
        path.display(),
        env_file.display()
    );
    let mut c = Command::new("sh");
    c.args(["-c", &script]);
    let mut imp = tcbpf_testkit::Importer::start(c, &path);
    let out = Command::new(TCBPF)
        .args(["map", "export"])
        .arg(&path)
        .args(["id", &id, "id", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    imp.finish();
    let env = std::fs::read_to_string(&env_file).unwrap();
    let vars = tcbpf_testkit::env_vars(&env);
    let fd: i32 = vars["BPF_MAP0"].parse().unwrap();
    assert!(fd >= 3, "map on fd {fd}: {vars:?}");
}

#[test]
fn timeout_ends_without_busy_polling() {
    // The last millisecond of a wait used to be polled with timeout 0 over
    // and over; each of these runs must wait in a few polls.
    for timeout in ["0.3", "0.2005", "0.1", "0.05", "0.0305"] {
        let path = SockPath::new("tmo");
        let out = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=poll,ppoll", "-o", "/dev/stderr"])
            .arg(TCBPF)
            .args(["exec", "bpf", "import"])
            .arg(&path.0)
            .args(["timeout", timeout])
            .output()
            .expect("strace is installed (scripts/test.sh installs it)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("timed out"), "{err}");
        let polls = err.lines().filter(|l| l.contains("poll(")).count();
        assert!(
            (1..=3).contains(&polls),
            "{polls} polls for one {timeout} s wait:\n{err}"
        );
    }
}

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

//! The importer's bind never resolves the socket path after binding: a user
//! who can write the socket's directory and swaps the fresh socket for a
//! symlink cannot make root chmod the symlink's target. Run as root.
//!
//! Own test binary: it sets the process umask and forks an attacker.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use tcbpf::scm::Receiver;
use tcbpf_testkit::TempDir;

const NOBODY: u32 = 65534;

fn cstr(p: &std::path::Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Forks a process running as `nobody` that, for `secs` seconds, replaces
/// every socket it sees at `path` by a symlink to `target`. Only raw system
/// calls in the child (the parent has threads).
fn spawn_swapper(path: &std::path::Path, target: &std::path::Path, secs: u64) -> libc::pid_t {
    let path_c = cstr(path);
    let link_c = cstr(&path.with_extension("lnk"));
    let target_c = cstr(target);
    // SAFETY: the child only makes async-signal-safe system calls on
    // buffers allocated before the fork, then _exits.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid > 0 {
            return pid;
        }
        if libc::setgid(NOBODY) != 0 || libc::setuid(NOBODY) != 0 {
            libc::_exit(3);
        }
        let mut start: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut start);
        let mut st: libc::stat = std::mem::zeroed();
        loop {
            let mut now: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            if now.tv_sec - start.tv_sec >= secs as i64 {
                libc::_exit(0);
            }
            if libc::lstat(path_c.as_ptr(), &mut st) == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
            {
                libc::symlink(target_c.as_ptr(), link_c.as_ptr());
                libc::rename(link_c.as_ptr(), path_c.as_ptr());
            }
        }
    }
}

#[test]
fn socket_swapped_for_a_symlink_after_bind_never_gets_its_target_chmodded() {
    // A directory the attacker (nobody) may write, without the sticky bit.
    let base = TempDir::new("bindrace");
    std::fs::set_permissions(&base.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = base.join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Root's secret, 0600, outside the shared directory.
    let secret = base.join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sock = dir.join("bpf.sock");

    // SAFETY: umask only sets the process mask; this binary has one test.
    unsafe { libc::umask(0o022) };
    let secs = 4;
    let attacker = spawn_swapper(&sock, &secret, secs);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut binds = 0;
    let mut modes = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        // The attacker may leave its symlink there: the next bind refuses
        // an existing path, so clear it as the operator would.
        let _ = std::fs::remove_file(&sock);
        if let Ok(r) = Receiver::bind(&sock, 0o666) {
            binds += 1;
            if let Ok(m) = std::fs::symlink_metadata(&sock) {
                if m.file_type().is_socket_like() {
                    modes.insert(m.permissions().mode() & 0o777);
                }
            }
            drop(r);
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(attacker, &mut status, 0) };
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(sock.with_extension("lnk"));
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert!(binds > 100, "only {binds} binds");
    assert_eq!(
        mode, 0o600,
        "root's 0600 file became {mode:o} after {binds} binds with mode 0666"
    );
    assert!(
        modes.iter().all(|m| *m == 0o666),
        "sockets seen with modes {modes:?}"
    );
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_socket()
    }
}

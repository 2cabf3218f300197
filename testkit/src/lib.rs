//! Scaffolding shared by the integration tests of `tcbpf` and `tcbpf-cli`,
//! and nothing else: a dev-dependency only, never published, never used by
//! the library or the binary.
//!
//! It gives each test the things it must own and clean up even when it
//! fails (Drop guards): unique names, temporary directories and socket
//! paths, a private bpffs mount, network namespaces and veth pairs; plus
//! the committed fixtures of `bpf/`, a runner for the `tcbpf` binary (whose
//! path the caller passes: `env!("CARGO_BIN_EXE_tcbpf")` exists only in
//! tcbpf-cli's tests), an importer-process guard, and a few hand-assembled
//! classifiers, and `bpf/dump.o` attached to tracepoints. It must not mock the kernel or `tc`, and must not touch
//! anything a test did not create (no host interfaces, no host bpffs).

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bpffs;
#[allow(unsafe_code)] // `inherit_fds`: a pre_exec hook
mod cli;
mod jsonschema;
mod net;
mod progs;
pub mod tracepoints;

pub use bpffs::Bpffs;
pub use cli::{env_vars, fails, inherit_fds, ok, output, run_bin, tcbpf, wait_for, Importer, Run};
pub use jsonschema::{json_schemas, schema_failures};
pub use net::{run, tc, Netns, VethPair, ADDR_A, ADDR_B};
pub use progs::{constant_prog, counter_map, hash_map, read_counter, udp_counter_prog, PASS, SHOT};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository root (where `bpf/` lives).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the repository")
        .to_path_buf()
}

/// The committed file `bpf/NAME` (an object: `fixture("legacy.o")`).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("bpf").join(name)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `PREFIXPID_N`. With a prefix of
/// four characters or less from `[A-Za-z0-9_.]` it is also a valid kernel
/// object name (map, program: 15 characters at most).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}_{}", std::process::id(), next_id())
}

/// A number unique to this process and call (the counter behind
/// [`unique`]), for names that must stay short.
pub fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A path as a `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A directory under the temporary directory, unique to this process and
/// call, removed with its contents on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `$TMPDIR/tcbpf-TAG-PID-N`, created.
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(&format!("tcbpf-{tag}-")));
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        TempDir(dir)
    }

    /// The path of `name` inside this directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the executable `from` to `to`, mode 0755, in a child process.
///
/// A test that writes a file and then executes it must not hold the write
/// descriptor itself: a child another test thread forks in that moment
/// keeps a copy until its own exec, and exec of the file then fails with
/// ETXTBSY. Written by `install` in a process of its own, the descriptor never
/// exists in the test process. Serializing the tests of one module does
/// not help, since every test of the binary forks.
pub fn copy_executable(from: impl AsRef<Path>, to: impl AsRef<Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let st = std::process::Command::new("install")
        .args(["-m", "755"])
        .arg(from)
        .arg(to)
        .status()
        .expect("run install");
    assert!(
        st.success(),
        "install {} {}: {st}",
        from.display(),
        to.display()
    );
}

/// Writes `text` to `to` as an executable (mode 0755) in a child process;
/// see [`copy_executable`] for why not in this one.
pub fn write_executable(to: &Path, text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
        .arg(to)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run sh");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(text.as_bytes())
        .expect("write the executable's text");
    drop(stdin);
    let st = child.wait().expect("wait for sh");
    assert!(st.success(), "write {}: {st}", to.display());
}

/// A socket path of a test (`$TMPDIR/tcbpf-TAG-PID-N`, not created),
/// removed on drop if anything is left there.
pub struct SockPath(pub PathBuf);

impl SockPath {
    pub fn new(tag: &str) -> SockPath {
        SockPath(std::env::temp_dir().join(unique(&format!("tcbpf-{tag}-"))))
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Why this process may not run the privileged tests, or `None` when it
/// may: they need CAP_SYS_ADMIN (mounts, namespaces), CAP_NET_ADMIN (tc,
/// links) and CAP_BPF, which root has. Read from `/proc/self/status`, so
/// no system call of the test's own is needed to ask.
pub fn missing_privilege() -> Option<String> {
    const NEEDED: [(u32, &str); 3] = [
        (21, "CAP_SYS_ADMIN"),
        (12, "CAP_NET_ADMIN"),
        (39, "CAP_BPF"),
    ];
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let caps = u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(0);
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(bit, _)| caps & (1u64 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let uid = field("Uid:");
    let euid = uid.split_whitespace().nth(1).unwrap_or("?");
    Some(format!(
        "without {}; effective uid {euid}",
        missing.join(", ")
    ))
}

/// The name of the running test (libtest names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string()
}

/// At the top of a test that needs the kernel as root (bpf(2), mounts,
/// namespaces, tc): when the process lacks the privileges, prints
/// `SKIP <test>: needs root (<why>)` to stderr and returns (`()`, or the
/// value given: `require_root!(Ok(()))` in a function returning a
/// `Result`), instead of failing in a `mount` or `setns` far from the
/// cause. As root it does nothing.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require_root!(())
    };
    ($skipped:expr) => {
        if let Some(why) = $crate::missing_privilege() {
            eprintln!("SKIP {}: needs root ({why})", $crate::test_name());
            return $skipped;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Copies written by `copy_executable` run although another thread
    /// forks all the while; written in this process (`std::fs::copy`) a
    /// few of 200 copies fail with ETXTBSY on this machine.
    #[test]
    fn a_copied_executable_runs_while_another_thread_forks() {
        let dir = TempDir::new("exe-copy");
        let stop = Arc::new(AtomicBool::new(false));
        let forker = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::process::Command::new("/bin/true").status();
                }
            })
        };
        let mut busy = 0;
        for i in 0..200 {
            let to = dir.join(format!("true{i}"));
            copy_executable("/bin/true", &to);
            match std::process::Command::new(&to).status() {
                Ok(st) => assert!(st.success(), "{}: {st}", to.display()),
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => busy += 1,
                Err(e) => panic!("{}: {e}", to.display()),
            }
        }
        stop.store(true, Ordering::Relaxed);
        forker.join().unwrap();
        assert_eq!(busy, 0, "{busy} of 200 copies were busy when run");
    }
}

//! Running commands under test: the `tcbpf` binary (by the path the test
//! passes in), with its exit code and output, and an importer process that
//! is killed if the test ends before it does.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `tcbpf` command of a test: the binary `bin` (the test's
/// `env!("CARGO_BIN_EXE_tcbpf")`) with `args` (a slice, or
/// `line.split_whitespace()`), its standard input empty, no `TC_BPF_UDS`
/// from the test's environment, and `TC_BPF_MNT` set to `mnt` (the test's
/// private bpffs) or unset.
pub fn tcbpf<I, S>(bin: &str, args: I, mnt: Option<&Path>) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("TC_BPF_UDS").stdin(Stdio::null());
    match mnt {
        Some(m) => cmd.env("TC_BPF_MNT", m),
        None => cmd.env_remove("TC_BPF_MNT"),
    };
    cmd
}

/// Makes the child of `cmd` inherit the descriptors `fds` (the test's
/// maps, by number): `FD_CLOEXEC` is cleared in the child only, between
/// fork and exec, so no other test's child inherits them.
pub fn inherit_fds<'a>(cmd: &'a mut Command, fds: &[RawFd]) -> &'a mut Command {
    let fds = fds.to_vec();
    // SAFETY: the closure runs in the forked child before exec and calls
    // only fcntl, which is async-signal-safe; it allocates nothing (the
    // vector was made before the fork) and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

/// What a run gave: the exit code (-1 when a signal ended it) and output.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to its end.
pub fn output(mut cmd: Command) -> Run {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
        .into()
}

/// Runs the binary `bin` with `args`: (exit code, stdout, stderr).
pub fn run_bin(bin: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let r = output(cmd);
    (r.code, r.stdout, r.stderr)
}

/// Runs `cmd`, panicking with its stderr when it fails; returns stdout.
pub fn ok(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let r = output(cmd);
    assert!(r.code == 0, "{shown} failed ({}): {}", r.code, r.stderr);
    r.stdout
}

/// Runs `cmd`, expecting it to fail: its exit code and stderr.
pub fn fails(cmd: Command) -> (i32, String) {
    let shown = format!("{cmd:?}");
    let r = output(cmd);
    assert!(
        r.code != 0,
        "{shown} should have failed; stdout: {}",
        r.stdout
    );
    (r.code, r.stderr)
}

/// The `BPF_*` lines of an `env` listing (`KEY=VALUE`) as a map.
pub fn env_vars(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("BPF_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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

/// An importer process listening on a socket; killed on drop if it still
/// runs.
pub struct Importer(Option<Child>);

impl Importer {
    /// Starts `cmd` (stdout and stderr captured) and waits, 10 s at most,
    /// until it has bound `uds`; panics if it exits first.
    pub fn start(mut cmd: Command, uds: &Path) -> Importer {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start importer");
        let mut importer = Importer(Some(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::symlink_metadata(uds).is_err() {
            let child = importer.0.as_mut().expect("importer running");
            if let Some(status) = child.try_wait().expect("poll importer") {
                let out = importer.finish();
                panic!(
                    "importer exited early ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the importer did not bind {}",
                uds.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        importer
    }

    /// The importer's process id, while it runs.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("importer running").id()
    }

    /// Waits for the importer's command to end: its output.
    pub fn finish(&mut self) -> Output {
        self.0
            .take()
            .expect("importer already finished")
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

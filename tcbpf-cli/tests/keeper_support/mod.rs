//! Shared pieces of the keeper tests: a keeper process that is stopped
//! (SIGTERM) or killed when the test ends, and waits on what it holds.
#![allow(dead_code)]

use crate::e2e_support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tcbpf::keeper::Client;

/// A `tcbpf keeper` process; killed on drop if still running.
pub struct KeeperProc {
    child: Option<Child>,
    pub sock: PathBuf,
    pub import: PathBuf,
}

impl KeeperProc {
    /// Starts `tcbpf keeper SOCK EXTRA…` (stderr captured) and waits until
    /// both sockets are bound.
    pub fn start(sock: &Path, extra: &[&str], mnt: &Path) -> KeeperProc {
        let mut cmd = Command::new(TCBPF);
        cmd.arg("keeper")
            .arg(sock)
            .args(extra)
            .env("TC_BPF_MNT", mnt)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut import = sock.as_os_str().to_owned();
        import.push(".import");
        let import = match extra.iter().position(|w| *w == "import") {
            Some(i) => PathBuf::from(extra[i + 1]),
            None => PathBuf::from(import),
        };
        let child = cmd.spawn().expect("start keeper");
        let mut k = KeeperProc {
            child: Some(child),
            sock: sock.to_path_buf(),
            import,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(k.sock.exists() && k.import.exists()) {
            if let Some(status) = k.child.as_mut().unwrap().try_wait().unwrap() {
                let out = k.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "keeper exited early ({status}): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(Instant::now() < deadline, "keeper did not bind its sockets");
            std::thread::sleep(Duration::from_millis(5));
        }
        k
    }

    /// The keeper's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("keeper running").id() as i32
    }

    /// Sends SIGTERM and waits for the keeper to exit: its output.
    pub fn stop(&mut self) -> Output {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.child
            .take()
            .unwrap()
            .wait_with_output()
            .expect("wait keeper")
    }

    /// The keeper's sockets, for the helpers that only talk to it.
    pub fn handle(&self) -> KeeperHandle {
        KeeperHandle {
            sock: self.sock.clone(),
            import: self.import.clone(),
        }
    }

    /// See [`KeeperHandle::wait_for_set`].
    pub fn wait_for_set(&self, name: &str) {
        self.handle().wait_for_set(name)
    }

    /// See [`KeeperHandle::export_map`].
    pub fn export_map(&self, map_id: u32, obj: &str) {
        self.handle().export_map(map_id, obj)
    }

    /// How many descriptors the keeper process has open.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

/// A keeper's sockets (running however it was started).
pub struct KeeperHandle {
    pub sock: PathBuf,
    pub import: PathBuf,
}

impl KeeperHandle {
    /// Waits (5 s at most) until the keeper holds a set called `name`.
    pub fn wait_for_set(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let sets = Client::connect(&self.sock).unwrap().list().unwrap().sets;
            if sets.iter().any(|s| s.name == name) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "keeper never got set '{name}' (has {:?})",
                sets.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `tcbpf map export IMPORT id MAP_ID obj OBJ`: hands the map to the
    /// keeper as set OBJ.
    pub fn export_map(&self, map_id: u32, obj: &str) {
        let mut cmd = Command::new(TCBPF);
        cmd.args(["map", "export"])
            .arg(&self.import)
            .args(["id", &map_id.to_string(), "obj", obj]);
        ok(cmd);
        self.wait_for_set(obj);
    }
}

impl Drop for KeeperProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tcbpf WORDS…` with `TCBPF` in its environment (for scripts).
pub fn tcbpf_cmd(words: &[&str]) -> Command {
    let mut cmd = Command::new(TCBPF);
    cmd.args(words).env("TCBPF", TCBPF).stdin(Stdio::null());
    cmd
}

/// A hash map (u32 → u64) named `name`, with `key` set to `value`; its id.
pub fn counter_hash(name: &str, key: u32, value: u64) -> (tcbpf::sys::MapFd, u32) {
    let m = hash_map(name, 4, 8, 16);
    tcbpf::sys::map::update(&m, &key.to_ne_bytes(), &value.to_ne_bytes(), 0).unwrap();
    let id = tcbpf::sys::info::map_info(&m).unwrap().id;
    (m, id)
}

//! A "host" for the sync tests: a veth pair between two namespaces with
//! the sync_block classifier (bpf/sync_block.c) loaded by the tcbpf
//! library into a private bpffs and attached by the real `tc` to the
//! ingress of `v1`; and a `tcbpf-sync etcd` process following a prefix
//! into its `sync_blocked` map. Everything goes on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf::load::{load_file, LoadOptions, LoadedObject};
use tcbpf::sys;
use tcbpf_testkit::{fixture, run, Bpffs, VethPair};

pub struct Host {
    pub pair: VethPair,
    pub obj: LoadedObject,
    pub fs: Bpffs,
}

impl Host {
    pub fn new() -> Host {
        let fs = Bpffs::new();
        let pin = fs.join("prog");
        let opts = LoadOptions {
            pin_program: Some(pin.clone()),
            ..fs.options()
        };
        let obj = load_file(&fixture("sync_block.o"), &opts).expect("load sync_block.o");
        let pair = VethPair::new();
        run(
            "tc",
            &["-n", &pair.b.name, "qdisc", "add", "dev", "v1", "clsact"],
        );
        run(
            "tc",
            &[
                "-n",
                &pair.b.name,
                "filter",
                "add",
                "dev",
                "v1",
                "ingress",
                "bpf",
                "da",
                "object-pinned",
                pin.to_str().unwrap(),
            ],
        );
        Host { pair, obj, fs }
    }

    /// The pin of the blocked-ports map.
    pub fn map_pin(&self) -> PathBuf {
        self.fs.join("tc/globals/sync_blocked")
    }

    /// True when the map holds `port`.
    pub fn blocks(&self, port: u16) -> bool {
        let fd = &self.obj.map("sync_blocked").unwrap().fd;
        let mut v = [0u8; 1];
        sys::map::lookup(fd, &port.to_ne_bytes(), &mut v, 0).is_ok()
    }

    /// Ports in the map.
    pub fn ports(&self) -> Vec<u16> {
        let fd = &self.obj.map("sync_blocked").unwrap().fd;
        let mut out: Vec<u16> = tcbpf::maps::read_all(fd)
            .unwrap()
            .into_iter()
            .map(|(k, _)| u16::from_ne_bytes([k[0], k[1]]))
            .collect();
        out.sort();
        out
    }

    /// Writes `port` into the map by hand (drift behind sync's back).
    pub fn block_by_hand(&self, port: u16) {
        let fd = &self.obj.map("sync_blocked").unwrap().fd;
        sys::map::update(fd, &port.to_ne_bytes(), &[1], 0).unwrap();
    }

    /// UDP packets the classifier dropped so far.
    pub fn dropped(&self) -> u64 {
        let fd = &self.obj.map("sync_udp_stats").unwrap().fd;
        let mut v = [0u8; 8];
        sys::map::lookup(fd, &1u32.to_ne_bytes(), &mut v, 0).unwrap();
        u64::from_ne_bytes(v)
    }

    /// Waits (at most `limit`) until `cond` holds; the time it took.
    pub fn wait(
        &self,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&Host) -> bool,
    ) -> Duration {
        let t0 = Instant::now();
        while !cond(self) {
            assert!(
                t0.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; map holds {:?}",
                self.ports()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    }
}

/// A running `tcbpf-sync etcd` process, killed on drop.
pub struct SyncProc {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl SyncProc {
    pub fn start(args: &[&str], log: PathBuf) -> SyncProc {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(super::BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("start tcbpf-sync etcd");
        SyncProc {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // Only the process this guard started.
        unsafe_free_kill(self.pid(), sig);
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let mut c = self.child.take()?;
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st.code();
            }
            if t0.elapsed() > limit {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SyncProc {
    fn drop(&mut self) {
        // Resume a stopped process so the kill is delivered and reaped.
        if self.child.is_some() {
            unsafe_free_kill(self.pid(), libc::SIGCONT);
        }
        self.kill();
    }
}

/// kill(2) through the `kill` command (tests keep no unsafe code).
fn unsafe_free_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

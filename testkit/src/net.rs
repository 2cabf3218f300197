//! Network namespaces and veth pairs that a test creates and deletes
//! (Drop guards), the commands that run inside them (`ip`, the real `tc`),
//! and UDP traffic between them. Never touches the host's interfaces.

use crate::unique;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("tcbpf-t");
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// Runs `f` on a thread that entered this namespace (only the network
    /// namespace: pins stay visible).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                tcbpf::tc::netns::enter(&self.name).expect("enter netns");
                f()
            })
            .join()
            .expect("thread in netns panicked")
        })
    }

    /// `ip -n NS ARGS…`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Default for Netns {
    fn default() -> Netns {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces joined by a veth pair: `v0` (10.77.0.1) in `a`, `v1`
/// (10.77.0.2) in `b`.
pub struct VethPair {
    pub a: Netns,
    pub b: Netns,
}

pub const ADDR_A: &str = "10.77.0.1";
pub const ADDR_B: &str = "10.77.0.2";

impl Default for VethPair {
    fn default() -> VethPair {
        VethPair::new()
    }
}

impl VethPair {
    pub fn new() -> VethPair {
        let a = Netns::new();
        let b = Netns::new();
        a.ip(&[
            "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", &b.name,
        ]);
        a.ip(&["addr", "add", &format!("{ADDR_A}/24"), "dev", "v0"]);
        b.ip(&["addr", "add", &format!("{ADDR_B}/24"), "dev", "v1"]);
        a.ip(&["link", "set", "v0", "up"]);
        b.ip(&["link", "set", "v1", "up"]);
        VethPair { a, b }
    }

    /// Sends `count` UDP datagrams from `a` to `b`'s `port` and returns how
    /// many the receiver in `b` got (it waits up to a second for stragglers).
    pub fn send_udp(&self, port: u16, count: usize) -> usize {
        let receiver = self.b.run(|| {
            let s = UdpSocket::bind((ADDR_B, port)).expect("bind receiver");
            s.set_read_timeout(Some(Duration::from_millis(1000)))
                .unwrap();
            s
        });
        self.a.run(|| {
            let s = UdpSocket::bind((ADDR_A, 0)).expect("bind sender");
            let to: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
            for i in 0..count {
                s.send_to(format!("packet {i}").as_bytes(), to)
                    .expect("send");
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let mut got = 0;
        let mut buf = [0u8; 64];
        while receiver.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    }
}

/// The real `tc -n NS` with the words of `line`; its stdout.
pub fn tc(ns: &Netns, line: &str) -> String {
    let mut all = vec!["-n", ns.name.as_str()];
    all.extend(line.split_whitespace());
    run("tc", &all)
}

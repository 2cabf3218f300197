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
            let s = bind_again(format!("{ADDR_B}:{port}").parse().unwrap());
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

/// Binds a UDP socket to `addr`, waiting (5 s at most) while the port is
/// in use: a receiver this process closed a moment ago may still be held
/// by a child another test's thread is starting (between fork and exec it
/// holds a copy of every descriptor), which ends at that child's exec.
fn bind_again(addr: SocketAddr) -> UdpSocket {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match UdpSocket::bind(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            r => return r.unwrap_or_else(|e| panic!("bind receiver {addr}: {e}")),
        }
    }
}

/// The real `tc -n NS` with the words of `line`; its stdout.
pub fn tc(ns: &Netns, line: &str) -> String {
    let mut all = vec!["-n", ns.name.as_str()];
    all.extend(line.split_whitespace());
    run("tc", &all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// A receiver socket a test has closed can live on for a moment in a
    /// child another thread of the process is starting (between fork and
    /// exec it holds a copy of every descriptor). Here a child holds the
    /// copy for 300 ms: `send_udp` on the same port waits for it instead
    /// of failing with EADDRINUSE.
    #[test]
    fn send_udp_waits_for_a_copy_of_the_last_receiver_held_by_a_child() {
        crate::require_root!();
        const PORT: u16 = 7209;
        let pair = VethPair::new();
        let (child, held) = pair.b.run(|| {
            let s = UdpSocket::bind((ADDR_B, PORT)).unwrap();
            let mut cmd = Command::new("sleep");
            cmd.arg("0.3");
            crate::inherit_fds(&mut cmd, &[s.as_raw_fd()]);
            (cmd.spawn().unwrap(), Instant::now())
        });
        let mut child = Guard(child);
        assert_eq!(pair.send_udp(PORT, 5), 5);
        assert!(held.elapsed() >= Duration::from_millis(300));
        child.0.wait().unwrap();
    }

    /// Kills the child if the test fails before it ends.
    struct Guard(std::process::Child);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

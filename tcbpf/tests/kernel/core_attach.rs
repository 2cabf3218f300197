//! The CO-RE classifier attached for real: loaded and relocated by tcbpf,
//! pinned in a private bpffs, attached with the system's `tc … bpf da
//! object-pinned` to the ingress of a veth in its own namespace, and fed
//! real UDP datagrams from a peer namespace. Its counters (read through the
//! descriptors tcbpf holds) show the traffic and the drop.

use crate::load_common;

use load_common::*;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tcbpf::load::{load_file, LoadOptions};
use tcbpf::sys;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn run_cmd(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair, deleted on drop.
struct Pair {
    a: String,
    b: String,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn pair() -> (Pair, String) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tag = format!("{}-{n}", std::process::id());
    let p = Pair {
        a: format!("tcbpf-core-a-{tag}"),
        b: format!("tcbpf-core-b-{tag}"),
    };
    run_cmd(&["ip", "netns", "add", &p.a]);
    run_cmd(&["ip", "netns", "add", &p.b]);
    run_cmd(&[
        "ip", "-n", &p.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &p.b,
    ]);
    let net = 100 + (std::process::id() % 100) as u8;
    let (addr_a, addr_b) = (format!("10.{net}.{n}.1"), format!("10.{net}.{n}.2"));
    run_cmd(&[
        "ip",
        "-n",
        &p.a,
        "addr",
        "add",
        &format!("{addr_a}/24"),
        "dev",
        "va",
    ]);
    run_cmd(&[
        "ip",
        "-n",
        &p.b,
        "addr",
        "add",
        &format!("{addr_b}/24"),
        "dev",
        "vb",
    ]);
    run_cmd(&["ip", "-n", &p.a, "link", "set", "va", "up"]);
    run_cmd(&["ip", "-n", &p.b, "link", "set", "vb", "up"]);
    (p, addr_b)
}

/// Sends one UDP datagram from namespace `ns` to `addr:port`.
fn send_udp(ns: &str, addr: &str, port: u16) {
    run_cmd(&[
        "ip",
        "netns",
        "exec",
        ns,
        "bash",
        "-c",
        &format!("echo core > /dev/udp/{addr}/{port}"),
    ]);
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn attached_core_classifier_counts_real_udp_and_drops_the_blocked_port() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.path.join("core_prog");
    let opts = LoadOptions {
        pin_program: Some(pin.clone()),
        ..fs.options()
    };
    let obj = load_file(&fixture("core_classifier"), &opts).unwrap();
    let (p, addr_b) = pair();
    run_cmd(&["tc", "-n", &p.b, "qdisc", "add", "dev", "vb", "clsact"]);
    run_cmd(&[
        "tc",
        "-n",
        &p.b,
        "filter",
        "add",
        "dev",
        "vb",
        "ingress",
        "bpf",
        "da",
        "object-pinned",
        pin.to_str().unwrap(),
    ]);
    let counters = &obj.map("counters").unwrap().fd;
    let blocked = &obj.map("blocked_ports").unwrap().fd;
    sys::map::update(blocked, &5353u16.to_ne_bytes(), &[1], 0).unwrap();
    let count = |i| lookup_u64(counters, i).unwrap();

    send_udp(&p.a, &addr_b, 53);
    wait_for("the first datagram", || count(2) >= 1);
    assert_eq!(count(3), 0, "port 53 passes");
    send_udp(&p.a, &addr_b, 5353);
    wait_for("the blocked datagram", || count(3) >= 1);
    assert_eq!(count(3), 1);
    assert!(
        count(2) >= 2 && count(1) >= 2,
        "udp {} ipv4 {}",
        count(2),
        count(1)
    );
    assert!(
        count(0) > count(1),
        "ARP frames are counted as packets, not IPv4"
    );
}

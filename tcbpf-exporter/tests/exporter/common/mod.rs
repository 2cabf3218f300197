//! What the exporter and watch tests share: the binary inside a namespace
//! (killed on drop), a tiny HTTP GET for the test side, ICMP echoes, and
//! attaching a committed classifier with the real `tc`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_tcbpf-exporter");

/// A process started by a test, killed and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// `ip netns exec NS PROGRAM ARGS…` with stdout and stderr captured.
    pub fn in_ns(ns: &Netns, program: &str, args: &[&str]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Proc(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends SIGTERM and waits up to `limit`: the exit code and stderr.
    pub fn terminate(self, limit: Duration) -> (Option<i32>, String) {
        run("kill", &["-TERM", &self.pid().to_string()]);
        self.wait(limit)
    }

    /// Waits up to `limit` for the exit: the exit code and stderr.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (None, String::new())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.0 GET from inside `ns` (the test's own client): status and body.
pub fn get(ns: &Netns, port: u16, path: &str, accept: Option<&str>) -> Option<(u16, String)> {
    ns.run(|| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{accept}\r\n").ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    })
}

/// Waits until something answers HTTP on `port` in `ns`.
pub fn wait_http(ns: &Netns, port: u16, path: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if get(ns, port, path, None).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing answered on port {port} in {}", ns.name);
}

/// The exporter listening on 127.0.0.1:`port` inside `ns`, answering.
pub fn exporter(ns: &Netns, port: u16, args: &[&str]) -> Proc {
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec!["listen", addr.as_str()];
    all.extend_from_slice(args);
    let p = Proc::in_ns(ns, BIN, &all);
    wait_http(ns, port, "/");
    p
}

/// Attaches `bpf/OBJECT` at `dev`'s ingress in `ns` with the real tc.
pub fn attach(ns: &Netns, dev: &str, object: &str) {
    tc(ns, &format!("qdisc add dev {dev} clsact"));
    tc(
        ns,
        &format!(
            "filter add dev {dev} ingress bpf da obj {} sec classifier",
            s(&fixture(object))
        ),
    );
}

/// Attaches `xdp_btf.o`'s XDP program to `dev` in generic mode, as `ip`
/// does.
pub fn attach_xdp(ns: &Netns, dev: &str) {
    run(
        "ip",
        &[
            "-n",
            &ns.name,
            "link",
            "set",
            "dev",
            dev,
            "xdpgeneric",
            "obj",
            s(&fixture("xdp_btf.o")),
            "sec",
            "xdp",
        ],
    );
}

/// Sends `count` ICMP echo requests from `pair.a` to `pair.b` (raw socket).
pub fn send_icmp(pair: &VethPair, count: u16) {
    pair.a.run(|| {
        let fd = tcbpf::sys::frontend::icmp_raw_socket().expect("raw ICMP socket");
        let to: Ipv4Addr = ADDR_B.parse().unwrap();
        for seq in 0..count {
            let mut pkt = [0u8; 16];
            pkt[0] = 8;
            pkt[6..8].copy_from_slice(&seq.to_be_bytes());
            pkt[8..].copy_from_slice(b"exporter");
            let sum = checksum(&pkt);
            pkt[2..4].copy_from_slice(&sum.to_be_bytes());
            use std::os::fd::AsFd;
            tcbpf::sys::frontend::send_to_v4(fd.as_fd(), &pkt, to).expect("send echo");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The sample lines of `family` (text format) whose labels hold every `want`.
pub fn samples<'a>(body: &'a str, family: &str, want: &[&str]) -> Vec<&'a str> {
    body.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| want.iter().all(|w| l.contains(w)))
        .collect()
}

/// The value of the one sample of `family` with labels `want`.
pub fn value(body: &str, family: &str, want: &[&str]) -> Option<f64> {
    let found = samples(body, family, want);
    assert!(
        found.len() <= 1,
        "several samples match {want:?}: {found:?}"
    );
    found.first()?.rsplit(' ').next()?.parse().ok()
}

/// `q` percent-encoded for a URL query.
pub fn percent(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus's answer to an instant query: the first result's value.
pub fn prom_query(ns: &Netns, port: u16, q: &str) -> Option<String> {
    let (status, body) = get(
        ns,
        port,
        &format!("/api/v1/query?query={}", percent(q)),
        None,
    )?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let r = v["data"]["result"].as_array()?;
    if r.len() != 1 {
        return None;
    }
    r[0]["value"][1].as_str().map(str::to_string)
}

/// A real Prometheus in `ns` scraping 127.0.0.1:`target` every second,
/// its API on 127.0.0.1:`port`, its data in `dir`; ready when returned.
pub fn prometheus(ns: &Netns, dir: &TempDir, target: u16, port: u16) -> Proc {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tcbpf\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let p = Proc::in_ns(
        ns,
        "prometheus",
        &[
            &format!("--config.file={}", s(&config)),
            &format!("--storage.tsdb.path={}", s(&dir.join("data"))),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );
    wait_http(ns, port, "/-/ready");
    p
}

/// `promtool check metrics` on `body`: its exit code and what it said.
pub fn promtool_check(body: &str) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

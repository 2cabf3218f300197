//! A real etcd server (Debian's etcd-server, /usr/bin/etcd) for one test:
//! data in a temporary directory, client and peer ports chosen free on
//! loopback, killed and removed on drop, also when the test fails. Clusters
//! of several members for the fleet cases.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::TempDir;

/// A free loopback TCP port (bound then released), never one handed out
/// before in this process: the tests of a group binary start their etcd
/// members side by side, and a port released by one must not reach two.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
    panic!("no loopback port that this process has not handed out already");
}

/// TLS files for a member: its certificate and key, and the CA that
/// clients must trust; `client_auth` makes the server require client
/// certificates signed by the same CA.
#[derive(Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth: bool,
}

/// One etcd member process.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    tls: Option<ServerTls>,
    /// More flags for `/usr/bin/etcd`.
    extra: Vec<String>,
    cluster: String,
    token: String,
    state: &'static str,
    child: Option<Child>,
}

impl Member {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.client_port)
    }

    /// Starts (or restarts) the member's process.
    pub fn start(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut cmd = Command::new("/usr/bin/etcd");
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen-client-urls")
            .arg(self.client_url())
            .arg("--advertise-client-urls")
            .arg(self.client_url())
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{}", self.peer_port))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{}", self.peer_port))
            .arg("--initial-cluster")
            .arg(&self.cluster)
            .arg("--initial-cluster-state")
            .arg(self.state)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--heartbeat-interval")
            .arg("50")
            .arg("--election-timeout")
            .arg("500")
            .arg("--logger")
            .arg("zap")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.cert)
                .arg("--key-file")
                .arg(&t.key);
            if t.client_auth {
                cmd.arg("--client-cert-auth")
                    .arg("--trusted-ca-file")
                    .arg(&t.ca);
            }
        }
        self.child = Some(
            cmd.spawn()
                .expect("start /usr/bin/etcd (apt-get install etcd-server)"),
        );
    }

    /// Kills the member's process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An etcd cluster of one or more members on loopback.
pub struct Etcd {
    pub members: Vec<Member>,
    pub dir: TempDir,
}

impl Etcd {
    /// One member, plain HTTP.
    pub fn start() -> Etcd {
        Etcd::cluster(1, None)
    }

    /// One member, plain HTTP, with more etcd flags.
    pub fn start_with(extra: &[&str]) -> Etcd {
        Etcd::cluster_with(1, None, extra)
    }

    /// `n` members; with `tls`, clients speak HTTPS (peers stay HTTP on
    /// loopback).
    pub fn cluster(n: usize, tls: Option<ServerTls>) -> Etcd {
        Etcd::cluster_with(n, tls, &[])
    }

    fn cluster_with(n: usize, tls: Option<ServerTls>, extra: &[&str]) -> Etcd {
        let dir = TempDir::new("etcd");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let tag = tcbpf_testkit::unique("e");
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("{tag}m{i}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| Member {
                name: format!("{tag}m{i}"),
                client_port: *c,
                peer_port: *p,
                data: dir.join(format!("m{i}")),
                log: dir.join(format!("m{i}.log")),
                tls: tls.clone(),
                extra: extra.iter().map(|a| a.to_string()).collect(),
                cluster: cluster.clone(),
                token: tag.clone(),
                state: "new",
                child: None,
            })
            .collect();
        for m in &mut members {
            m.start();
        }
        let e = Etcd { members, dir };
        e.wait_ready();
        e
    }

    /// Waits until every running member accepts TCP and the cluster has
    /// a leader (bounded: 30 s).
    pub fn wait_ready(&self) {
        let t0 = Instant::now();
        for m in self.members.iter().filter(|m| m.is_running()) {
            while TcpStream::connect(("127.0.0.1", m.client_port)).is_err() {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "etcd {} did not start: {}",
                    m.name,
                    self.log_tail(m)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if self.members[0].tls.is_some() {
            return;
        }
        loop {
            let ok = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args([
                    "--endpoints",
                    &self.endpoints(),
                    "--command-timeout=2s",
                    "put",
                    "/ready",
                    "1",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "etcd cluster has no leader: {}",
                self.log_tail(&self.members[0])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `host:port,…` of the running members, for `tcbpf sync`.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn log_tail(&self, m: &Member) -> String {
        let text = std::fs::read_to_string(&m.log).unwrap_or_default();
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    }

    /// Runs etcdctl against the cluster; returns stdout (panics on failure).
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints(), "--command-timeout=5s"])
            .args(args)
            .output()
            .expect("run etcdctl (apt-get install etcd-client)");
        assert!(
            o.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The current revision of the store.
    pub fn revision(&self) -> i64 {
        let out = self.ctl(&[
            "get",
            "/",
            "--prefix",
            "--keys-only",
            "--limit=1",
            "-w",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["header"]["revision"].as_i64().unwrap()
    }

    /// Compacts the history up to the current revision.
    pub fn compact_now(&self) -> i64 {
        let rev = self.revision();
        self.ctl(&["compaction", "--physical", &rev.to_string()]);
        rev
    }

    pub fn dir(&self) -> &Path {
        &self.dir.0
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

impl Etcd {
    /// The index of the member that leads now (asked of each running
    /// member; bounded: 10 s).
    pub fn leader(&self) -> usize {
        let t0 = Instant::now();
        loop {
            for (i, m) in self.members.iter().enumerate() {
                if !m.is_running() {
                    continue;
                }
                let o = Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .args([
                        "--endpoints",
                        &format!("127.0.0.1:{}", m.client_port),
                        "--command-timeout=2s",
                        "endpoint",
                        "status",
                        "-w",
                        "json",
                    ])
                    .output()
                    .expect("run etcdctl");
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
                    continue;
                };
                let st = &v[0]["Status"];
                if st["leader"].as_u64().is_some() && st["leader"] == st["header"]["member_id"] {
                    return i;
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no etcd leader");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

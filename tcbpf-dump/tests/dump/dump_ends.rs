//! Every way a dump ends — `count N`, SIGINT, SIGTERM, a closed output
//! pipe — ends it cleanly (exit 0, the report on stderr) with its tracing
//! links gone, on real packets. The real `tcbpf-dump` needs trampolines;
//! this runs the same read loop in the example `tracepoint_dump`, whose
//! programs sit on tracepoints (see its doc), as `keeper_soak` runs its
//! example: `cargo build --workspace --all-targets` (scripts/test.sh)
//! builds it.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

fn helper() -> std::path::PathBuf {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("tracepoint_dump");
    assert!(
        bin.exists(),
        "example tracepoint_dump not built at {} (cargo build -p tcbpf-dump --examples)",
        bin.display()
    );
    bin
}

struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
    links: Vec<u32>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(pair: &VethPair, port: u16, words: &[&str]) -> Running {
    let mut child = Command::new("env")
        // A test run started as a background job has SIGINT ignored, and a
        // dump keeps an inherited ignored SIGINT ignored (as nohup asks):
        // the dump under test starts with the default, as from a terminal.
        .args([
            "--default-signal=INT,TERM",
            "ip",
            "netns",
            "exec",
            &pair.a.name,
        ])
        .arg(helper())
        .args(["v0", &port.to_string()])
        .args(words)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut links = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while links.is_empty() {
        assert!(Instant::now() < deadline, "the dump did not start");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(ids) = l.strip_prefix("links: ") {
                links = ids.split(' ').map(|i| i.parse().unwrap()).collect();
            }
        }
    }
    Running {
        child,
        stderr: rx,
        links,
    }
}

fn send(pair: &VethPair, port: u16, n: usize) {
    pair.a.run(|| {
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        let to: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
        for i in 0..n {
            s.send_to(format!("dump test {i:02}").as_bytes(), to)
                .unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Waits for the end: the exit code, the rest of stderr; then checks the
/// links are gone.
fn finish(mut r: Running) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the dump did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    while let Ok(l) = r.stderr.recv_timeout(Duration::from_millis(300)) {
        err.push_str(&l);
        err.push('\n');
    }
    for id in &r.links {
        assert!(
            tcbpf::sys::obj::link_by_id(*id).is_err(),
            "tracing link {id} left after the dump ended"
        );
    }
    (status.code().unwrap_or(-1), err)
}

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn port(n: u16) -> u16 {
    20000 + (std::process::id() % 20000) as u16 + 10 + n
}

#[test]
fn count_ends_the_dump_after_n_records() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let mut r = start(&pair, port(0), &["count", "5"]);
    send(&pair, port(0), 12);
    let mut out = String::new();
    r.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let (code, err) = finish(r);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(
        out.lines().all(|l| l.contains(" v0 egress prog ")
            && l.contains(&format!(".{}: UDP, length 12 -> TC_ACT_OK", port(0)))),
        "{out}"
    );
}

#[test]
fn sigint_and_sigterm_end_the_dump_with_its_report() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    for (i, sig) in ["-INT", "-TERM"].iter().enumerate() {
        let p = port(1 + i as u16);
        let mut r = start(&pair, p, &["-j"]);
        let mut stdout = r.child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            stdout.read_to_string(&mut s).unwrap();
            s
        });
        send(&pair, p, 7);
        std::thread::sleep(Duration::from_millis(300));
        run("kill", &[sig, &r.child.id().to_string()]);
        let (code, err) = finish(r);
        let out = reader.join().unwrap();
        assert_eq!(code, 0, "{sig}: {err}");
        assert_eq!(out.lines().count(), 7, "{sig}: {out}");
        for l in out.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["direction"], "egress");
            assert_eq!(v["verdict_name"], "TC_ACT_OK");
        }
        assert!(
            err.contains("tcbpf dump: 7 records written, 0 lost (ring buffer full)"),
            "{sig}: {err}"
        );
    }
}

#[test]
fn an_idle_dump_sleeps() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let r = start(&pair, port(4), &[]);
    let pid = r.child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // A busy loop would take about 200 ticks in 2 s.
    assert!(used <= 5, "an idle dump used {used} ticks in 2 s");
    run("kill", &["-INT", &pid.to_string()]);
    let (code, err) = finish(r);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_closed_output_pipe_ends_the_dump() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let mut r = start(&pair, port(3), &[]);
    // The reader goes away before anything is written.
    drop(r.child.stdout.take());
    send(&pair, port(3), 3);
    let (code, err) = finish(r);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("records written"), "{err}");
}

/// Under a flood faster than its reader, the records never run out: a
/// dump must still see SIGINT between batches and end within seconds,
/// not when the flood stops.
#[test]
fn sigint_ends_a_dump_that_never_catches_up() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let p = port(5);
    let mut r = start(&pair, p, &[]);
    let mut stdout = r.child.stdout.take().unwrap();
    // A slow reader: 1 KiB every 20 ms.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let ns = pair.a.name.clone();
        std::thread::spawn(move || {
            tcbpf::tc::netns::enter(&ns).unwrap();
            let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
            let to: SocketAddr = format!("{ADDR_B}:{p}").parse().unwrap();
            let until = Instant::now() + Duration::from_secs(10);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                let _ = s.send_to(b"dump test 00", to);
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let pid = r.child.id();
    run("kill", &["-INT", &pid.to_string()]);
    let sent = Instant::now();
    let deadline = sent + Duration::from_secs(4);
    let ended = loop {
        if r.child.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(ended, "SIGINT did not end a busy dump within 4 s");
    let (code, err) = finish(r);
    reader.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("records written"), "{err}");
}

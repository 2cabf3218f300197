//! `tcbpf demo` end to end: the counters it prints match what it says it
//! sent, and it removes its namespaces and temporary directory when it ends
//! and when it is interrupted.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The demo's names hold only its pid, so the two tests here look for
/// leftovers of their own child; they still run one at a time so that one
/// test's live demo is not the other's "leftover".
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn demo(seconds: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcbpf"));
    cmd.args(["demo", "seconds", seconds])
        .env_remove("TC_BPF_UDS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What the demo of process `pid` may leave: its namespaces and its
/// temporary directory.
fn leftovers(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let netns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for line in netns.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with("tcbpf-demo-") && name.ends_with(&format!("-{pid}")) {
            left.push(name.to_string());
        }
    }
    let dir = std::env::temp_dir().join(format!("tcbpf-demo-{pid}"));
    if dir.exists() {
        left.push(dir.display().to_string());
    }
    left
}

/// The counters of the last `--- after Ns` block: (protocol, packets).
fn last_counters(out: &str) -> Vec<(u32, u64)> {
    let block = out.rsplit("--- after").next().unwrap_or("");
    block
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("key: ")?;
            let mut words = rest.split_whitespace();
            let proto = words.next()?.parse().ok()?;
            let _value = words.find(|w| *w == "value:")?;
            let packets = words.next()?.parse().ok()?;
            Some((proto, packets))
        })
        .collect()
}

/// "sent N UDP datagrams and M ICMP echo requests" → (N, M).
fn sent(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("demo: sent "))
        .unwrap_or_else(|| panic!("no 'sent' line in: {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[2].parse().unwrap(), words[6].parse().unwrap())
}

#[test]
fn demo_counts_exactly_what_it_sent_and_removes_everything() {
    tcbpf_testkit::require_root!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = demo("2").spawn().expect("start demo");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (udp, icmp) = sent(&stdout);
    assert!(udp > 0 && icmp > 0, "{stdout}");
    let counters = last_counters(&stdout);
    let of = |proto: u32| counters.iter().find(|c| c.0 == proto).map(|c| c.1);
    assert_eq!(of(17), Some(udp), "UDP packets counted: {stdout}");
    assert_eq!(of(1), Some(icmp), "ICMP packets counted: {stdout}");
    assert!(stdout.contains("shell holds BPF_NUM_MAPS=1"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn interrupted_demo_removes_everything_and_fails() {
    tcbpf_testkit::require_root!();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let child = demo("30").spawn().expect("start demo");
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    // Our own child, not reaped yet: the pid is still its.
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the demo took {:?} to stop",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "interrupted demo exited 0");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

//! `tcbpf demo watch`: it finds tcbpf-exporter (the live view) before it
//! sets anything up, and fails cleanly saying how to get it; and in a real
//! terminal (tmux) 'q' or Ctrl-C in the view ends the whole demo at once,
//! which then prints the final counters on the normal screen and removes
//! what it made.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

/// The demo's namespaces and temporary directory for process `pid`.
fn leftovers(pid: u32) -> Vec<String> {
    let mut left = Vec::new();
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for line in String::from_utf8_lossy(&netns.stdout).lines() {
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

#[test]
fn demo_watch_without_the_exporter_fails_before_setting_anything_up() {
    let dir = TempDir::new("demo-noexp");
    let bin = dir.0.join("tcbpf");
    tcbpf_testkit::copy_executable(env!("CARGO_BIN_EXE_tcbpf"), &bin);
    // A PATH without tcbpf-exporter (an empty directory: the check comes
    // before the demo runs anything), and none beside this copy of tcbpf.
    let empty = TempDir::new("demo-path");
    let path = empty.0.display().to_string();
    let child = Command::new(&bin)
        .args(["demo", "watch", "seconds", "2"])
        .env("PATH", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("demo watch needs tcbpf-exporter")
            && stderr.contains("cargo build --release -p tcbpf-exporter")
            && stderr.contains("scripts/install.sh"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("namespaces"),
        "the demo set up before failing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(cmd: &str) -> Tmux {
        let t = Tmux {
            socket: unique("tcbpf-demo-watch"),
        };
        t.run(&["new-session", "-d", "-s", "w", "-x", "110", "-y", "40", cmd]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        let out = Command::new("tmux").args(&all).output().unwrap();
        assert!(out.status.success(), "tmux {all:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures until `pred` holds (up to `limit`); the last screen.
    fn until(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.run(&["capture-pane", "-p", "-t", "w"]);
            if pred(&s) || start.elapsed() > limit {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGINT to a demo still running (it then removes what it made), and a
/// wait for its namespaces to go.
struct Interrupt(Option<u32>);

impl Drop for Interrupt {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) on the demo this test started, not yet ended.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !leftovers(pid).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Builds tcbpf-exporter beside the tcbpf under test (the view is its),
/// unless the workspace build has made it.
fn build_exporter() {
    let beside = Path::new(env!("CARGO_BIN_EXE_tcbpf"))
        .parent()
        .unwrap()
        .join("tcbpf-exporter");
    if beside.is_file() {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "tcbpf-exporter"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(
        status.success() && beside.is_file(),
        "building tcbpf-exporter"
    );
}

/// The packets of protocol `proto` in the dump after "--- final counters".
fn final_packets(screen: &str, proto: u32) -> Option<u64> {
    let block = screen.split("--- final counters").nth(1)?;
    block.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("key: ")?;
        let mut words = rest.split_whitespace();
        if words.next()?.parse::<u32>().ok()? != proto {
            return None;
        }
        words.find(|w| *w == "value:")?;
        words.next()?.parse().ok()
    })
}

#[test]
fn q_or_ctrl_c_in_the_view_ends_the_demo_and_prints_the_final_counters() {
    tcbpf_testkit::require_root!();
    build_exporter();
    let dir = TempDir::new("demo-watch");
    for key in ["q", "C-c"] {
        let pid_file = dir.join(format!("pid-{key}"));
        let cmd = format!(
            "sh -c 'echo $$ > {}; exec {} demo watch seconds 60'; echo DEMO-EXIT=$?; sleep 60",
            pid_file.display(),
            env!("CARGO_BIN_EXE_tcbpf")
        );
        let tmux = Tmux::new(&cmd);
        // Dropped before the tmux server: a demo still running when the
        // test fails is interrupted, so it removes what it made.
        let mut demo = Interrupt(None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while demo.0.is_none() && Instant::now() < deadline {
            demo.0 = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok());
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = demo.0.expect("the demo's pid");
        let view = tmux.until(Duration::from_secs(20), |s| {
            s.contains("map proto_stats") && s.contains("PACKETS")
        });
        assert!(view.contains("map proto_stats"), "no live view:\n{view}");
        // Let some traffic be counted, then quit the view.
        std::thread::sleep(Duration::from_secs(2));
        tmux.run(&["send-keys", "-t", "w", key]);
        let asked = Instant::now();
        let after = tmux.until(Duration::from_secs(15), |s| s.contains("DEMO-EXIT="));
        let took = asked.elapsed();
        if after.contains("DEMO-EXIT=") {
            demo.0 = None; // ended: its pid is no longer its
        }
        assert!(
            after.contains("DEMO-EXIT=0"),
            "{key}: the demo did not end cleanly:\n{after}"
        );
        assert!(
            took < Duration::from_secs(10),
            "{key}: the demo took {took:?} to end"
        );
        assert!(
            !after.contains("PACKETS/s"),
            "{key}: the view stayed on the normal screen:\n{after}"
        );
        // The final counters are shown after the screen closed, and count
        // exactly what the demo says it sent.
        let sent_line = after
            .lines()
            .find(|l| l.starts_with("demo: sent "))
            .unwrap_or_else(|| panic!("{key}: no 'sent' line:\n{after}"));
        let words: Vec<&str> = sent_line.split_whitespace().collect();
        let (udp, icmp): (u64, u64) = (words[2].parse().unwrap(), words[6].parse().unwrap());
        assert!(udp > 0 && icmp > 0, "{after}");
        assert_eq!(final_packets(&after, 17), Some(udp), "{key} UDP:\n{after}");
        assert_eq!(final_packets(&after, 1), Some(icmp), "{key} ICMP:\n{after}");
        assert_eq!(leftovers(pid), Vec::<String>::new());
    }
}

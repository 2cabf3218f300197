//! `tcbpf exec bpf debug` streams the kernel trace pipe, mounting tracefs
//! when it is absent: a marker written to `trace_marker` comes out on its
//! standard output. A tracefs the command mounted is unmounted afterwards,
//! so the machine is left as the test found it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tracing_dir() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "tracefs").then(|| f[1].to_string())
    })
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Unmounts, on drop, the tracefs that the test caused to be mounted (none
/// when one was mounted before the test).
struct UnmountIfNew {
    was_mounted: bool,
}

impl Drop for UnmountIfNew {
    fn drop(&mut self) {
        if !self.was_mounted {
            if let Some(dir) = tracing_dir() {
                let _ = Command::new("umount").args(["-l", &dir]).status();
            }
        }
    }
}

#[test]
fn debug_streams_the_trace_pipe() {
    tcbpf_testkit::require_root!();
    // Declared first, so it runs after the child is killed.
    let _restore = UnmountIfNew {
        was_mounted: tracing_dir().is_some(),
    };
    let mut child = KillOnDrop(
        Command::new(TCBPF)
            .args(["exec", "bpf", "debug"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let dir = loop {
        if let Some(d) = tracing_dir() {
            break d;
        }
        assert!(Instant::now() < deadline, "tracefs never mounted");
        std::thread::sleep(Duration::from_millis(10));
    };
    let marker = format!("tcbpf-exec-debug-{}", std::process::id());
    // Keep writing until the streamer has opened the pipe and passed one on.
    while Instant::now() < deadline {
        std::fs::write(format!("{dir}/trace_marker"), &marker).unwrap();
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains(&marker) => return,
            Ok(_) => {
                while let Ok(line) = rx.try_recv() {
                    if line.contains(&marker) {
                        return;
                    }
                }
            }
            Err(_) => {}
        }
    }
    panic!("marker never came out of 'exec bpf debug'");
}

//! The keeper unit's sandbox leaves the keeper working: run with exactly
//! the capabilities its `CapabilityBoundingSet=` keeps (setpriv drops the
//! rest from the bounding set and sets no_new_privs, as systemd does), it
//! imports an export, lists it, hands the map out read-write and read-only
//! and stops cleanly on SIGTERM. (systemd itself is not PID 1 here, so the
//! unit cannot be started; its file system and system call restrictions
//! are checked by `systemd-analyze security` in systemd_units.rs.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

const BIN: &str = env!("CARGO_BIN_EXE_tcbpf");

/// "CapabilityBoundingSet=CAP_BPF CAP_SYS_ADMIN" → "-all,+bpf,+sys_admin".
fn bounding_set(unit: &str) -> String {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit names its capabilities");
    let mut set = String::from("-all");
    for cap in line.split_whitespace() {
        set.push_str(",+");
        set.push_str(&cap.trim_start_matches("CAP_").to_lowercase());
    }
    set
}

fn tcbpf(mnt: &Path, args: &[&str]) -> String {
    tcbpf_testkit::ok(tcbpf_testkit::tcbpf(BIN, args, Some(mnt)))
}

/// Kills the keeper if the test ends before it was stopped.
struct Keeper(Option<std::process::Child>);

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn keeper_works_with_only_the_capabilities_its_unit_keeps() {
    tcbpf_testkit::require_root!();
    let unit_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd/tcbpf-keeper.service");
    let caps = bounding_set(&std::fs::read_to_string(unit_path).unwrap());
    assert_eq!(caps, "-all,+bpf,+sys_admin");

    let fs = Bpffs::new();
    let dir = TempDir::new("keeper-caps");
    let sock = dir.join("keeper");
    let import = dir.join("keeper.import");
    let state = fs.join("keeper");
    let child = Command::new("setpriv")
        .arg(format!("--bounding-set={caps}"))
        .args(["--inh-caps=-all", "--no-new-privs", BIN, "keeper"])
        .arg(&sock)
        .arg("state")
        .arg(&state)
        .env("TC_BPF_MNT", &fs.path)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)");
    let pid = child.id();
    let mut keeper = Keeper(Some(child));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(sock.exists() && import.exists()) {
        assert!(
            Instant::now() < deadline,
            "the keeper did not bind its sockets"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // It runs with those capabilities and no others.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    let want = (1u64 << 39) | (1u64 << 21); // CAP_BPF, CAP_SYS_ADMIN
    assert_eq!(u64::from_str_radix(&eff, 16).unwrap(), want, "{status}");

    let mnt = &fs.path;
    let name = format!("kcaps{}", next_id());
    let pin = fs.arg("m");
    tcbpf(
        mnt,
        &[
            "map", "create", "type", "hash", "key", "4", "value", "8", "entries", "4", "name",
            &name, "pin", &pin,
        ],
    );
    tcbpf(
        mnt,
        &[
            "map", "update", "pinned", &pin, "key", "u32", "1", "value", "u64", "42",
        ],
    );
    tcbpf(mnt, &["map", "export", s(&import), "pinned", &pin]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let listing = loop {
        let l = tcbpf(mnt, &["keeper", "list", s(&sock)]);
        if l.contains(&name) || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(listing.contains(&name), "{listing}");
    // Read (the keeper reopens the map read-only by id) and write.
    let dump = tcbpf(
        mnt,
        &[
            "map",
            "dump",
            "keeper",
            s(&sock),
            &name,
            "key",
            "u32",
            "value",
            "u64",
        ],
    );
    assert!(dump.contains("key: 1  value: 42"), "{dump}");
    tcbpf(
        mnt,
        &[
            "map",
            "update",
            "keeper",
            s(&sock),
            &name,
            "key",
            "u32",
            "2",
            "value",
            "u64",
            "7",
        ],
    );
    let dump = tcbpf(
        mnt,
        &["map", "dump", "pinned", &pin, "key", "u32", "value", "u64"],
    );
    assert!(dump.contains("key: 2  value: 7"), "{dump}");

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let out = keeper.0.take().unwrap().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "keeper: {stderr}");
    assert!(!stderr.contains("denied"), "{stderr}");
}

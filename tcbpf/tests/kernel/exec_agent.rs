//! The agent API through the example agent (`examples/agent.rs`, which
//! cargo builds with the tests): maps from a socket it binds itself, and
//! maps from the environment the exec proxy sets (checked to be bpf maps).

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use tcbpf::scm::{self, MapDesc, ObjectId};
use tcbpf::sys::{info::map_info, map, MapFd};
use tcbpf_testkit::{Importer, SockPath};

fn agent() -> Command {
    let deps = std::env::current_exe().unwrap();
    let bin = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("agent");
    assert!(bin.exists(), "example agent not built at {}", bin.display());
    Command::new(bin)
}

fn counters(name: &str) -> MapFd {
    let m = tcbpf_testkit::hash_map(name, 4, 16, 8);
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&12u64.to_ne_bytes());
    v[8..].copy_from_slice(&3400u64.to_ne_bytes());
    map::update(&m, &6u32.to_ne_bytes(), &v, 0).unwrap();
    m
}

#[test]
fn agent_receives_maps_on_its_socket_and_prints_their_counters() {
    tcbpf_testkit::require_root!();
    let sock = SockPath::new("agent");
    let path = &sock.0;
    let m = counters("agent_sock");
    let mut cmd = agent();
    cmd.args([
        "--socket",
        path.to_str().unwrap(),
        "--count",
        "2",
        "--interval",
        "10",
    ]);
    let mut child = Importer::start(cmd, path);
    let d = MapDesc::from_info(&map_info(&m).unwrap(), 4);
    let obj = ObjectId {
        name: "agent.o".into(),
        dev: 0,
        ino: 0,
    };
    scm::send_maps(path, &obj, &[(d, m.as_fd())]).unwrap();
    let out = child.finish();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("received 1 map(s) from 'agent.o'"), "{text}");
    assert_eq!(
        text.matches("map 4 'agent_sock' hash: 1 entry").count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("  key 6: 12 3400").count(), 2, "{text}");
    assert!(!path.exists(), "agent unlinked its socket");
}

#[test]
fn agent_takes_maps_from_the_environment_and_checks_they_are_maps() {
    tcbpf_testkit::require_root!();
    let m = counters("agent_env");
    let out = agent()
        .args(["--count", "1"])
        .env("BPF_NUM_MAPS", "1")
        .env("BPF_MAP9", "0")
        .env("BPF_MAP_AGENT_ENV", "0")
        .stdin(Stdio::from(m.try_clone().unwrap().into_owned()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("map 9 'agent_env' hash: 1 entry\n  key 6: 12 3400"),
        "{text}"
    );

    let out = agent()
        .args(["--count", "1"])
        .env("BPF_NUM_MAPS", "1")
        .env("BPF_MAP9", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BPF_MAP9=0") && err.contains("not a bpf map"),
        "{err}"
    );

    let out = agent()
        .args(["--count", "1"])
        .env_remove("BPF_NUM_MAPS")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("BPF_NUM_MAPS is not set"));
}

//! The rough edges a new user hit: `-n` with a namespace path, options
//! after the object word, messages without Rust's "(os error N)", refusals
//! that say which privilege is missing and how to get it (exit 3), and
//! `filter del … tcx` removing the link pins `chain apply` made.

use std::process::{Child, Command, Stdio};
use tcbpf_testkit::*;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tcbpf(args: &[&str]) -> (i32, String, String) {
    run_bin(TCBPF, args)
}

/// A process inside a namespace, killed on drop: its /proc/PID/ns/net is
/// the namespace's path.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn netns_option_takes_a_proc_pid_ns_net_path_as_well_as_a_name() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let dev = format!("d{}", next_id() % 100_000);
    let peer = format!("{dev}p");
    ns.ip(&["link", "add", &dev, "type", "veth", "peer", "name", &peer]);
    let sleeper = Sleeper(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ns_path = format!("/proc/{}/ns/net", sleeper.0.id());
    // `ip netns exec` execs sleep in place: the pid is in the namespace
    // once it has entered it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_link(&ns_path).ok() == std::fs::read_link("/proc/self/ns/net").ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep never entered {}",
            ns.name
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The device is only in the namespace: not found outside it.
    let (code, _, err) = tcbpf(&["net", "show", "dev", &dev]);
    assert_eq!(code, 1, "{err}");
    for how in [
        ns.name.clone(),
        ns_path.clone(),
        format!("/run/netns/{}", ns.name),
    ] {
        let (code, out, err) = tcbpf(&["-n", &how, "-j", "net", "show", "dev", &dev]);
        assert_eq!(code, 0, "-n {how}: {err}");
        assert!(out.starts_with('{') || out.starts_with('['), "{out}");
    }
    // A namespace file of another kind is bad input, named.
    let (code, _, err) = tcbpf(&["-n", "/proc/self/ns/mnt", "net", "show"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a network namespace"), "{err}");
    let (code, _, err) = tcbpf(&["-n", "/nonexistent/ns", "net", "show"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn options_may_follow_the_object_word_as_bpftool_takes_them() {
    let dir = TempDir::new("edges");
    let file = dir.join("f.o");
    std::fs::copy(fixture("btf_maps.o"), &file).unwrap();
    let (code, before, err) = tcbpf(&["-j", "obj", "show", s(&file)]);
    assert_eq!(code, 0, "{err}");
    let (code, after, err) = tcbpf(&["obj", "-j", "show", s(&file)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(before, after);
    serde_json::from_str::<serde_json::Value>(&after).unwrap();
    let (code, _, err) = tcbpf(&["obj", "-x", "show", s(&file)]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown option '-x'"), "{err}");
    let (code, out, _) = tcbpf(&["map", "-h"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Usage: tcbpf map"), "{out}");
}

#[test]
fn no_message_carries_rusts_os_error_suffix() {
    // As root, so each command gets as far as the missing file.
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("edges");
    let missing = dir.join("missing");
    let m = s(&missing);
    for args in [
        &["obj", "show", m][..],
        &["map", "batch", "from", m],
        &["chain", "apply", "dev", "lo", "tcx", "ingress", m],
        &["filter", "add", "dev", "lo", "ingress", "bpf", "obj", m],
        &[
            "filter",
            "add",
            "dev",
            "lo",
            "ingress",
            "bpf",
            "bytecode-file",
            m,
        ],
        &["link", "set", "dev", "lo", "xdp", "obj", m],
        &["-n", m, "map", "show"],
        &["keeper", "list", m],
        &["exec", "bpf", "import", &format!("{m}/x/sock")],
        &["map", "events", "pinned", m],
    ] {
        let (code, _, err) = tcbpf(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(!err.contains("os error"), "{args:?}: {err}");
        assert!(
            err.contains(m) || err.contains("No such file"),
            "{args:?}: {err}"
        );
    }
}

/// Runs tcbpf as uid 65534 with no capabilities.
fn unprivileged(args: &[&str]) -> (i32, String, String) {
    let dir = TempDir::new("edges-nobody");
    let bin = dir.join("tcbpf");
    tcbpf_testkit::copy_executable(TCBPF, &bin);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(&bin)
    .args(args);
    let r = output(cmd);
    (r.code, r.stdout, r.stderr)
}

#[test]
fn permission_errors_exit_3_and_say_which_capability_and_run_as_root() {
    tcbpf_testkit::require_root!();
    for (args, needs) in [
        (&["map", "show"][..], "CAP_SYS_ADMIN"),
        (
            &[
                "map", "create", "type", "hash", "key", "4", "value", "4", "entries", "1",
            ],
            "CAP_BPF",
        ),
        (&["qdisc", "add", "dev", "lo", "clsact"], "CAP_NET_ADMIN"),
        (&["exec", "bpf", "dbg"], "run as root"),
    ] {
        let (code, _, err) = unprivileged(args);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(
            err.contains(needs) && err.contains("run as root"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("os error") && !err.contains("superuser"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn filter_del_tcx_removes_the_link_pins_chain_apply_made() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("edges-chain");
    let file = dir.join("hook.chain");
    let line = |f: &str| format!("obj {} sec tc program {f}", s(&fixture("chain.o")));
    std::fs::write(&file, format!("{}\n{}\n", line("tc1"), line("tc2"))).unwrap();
    let run = |args: &str| {
        let mut cmd = Command::new(TCBPF);
        cmd.args(args.split_whitespace())
            .env_remove("TC_BPF_UDS")
            .env("TC_BPF_MNT", &fs.path);
        output(cmd)
    };
    let r = run(&format!(
        "-n {} chain apply dev v1 tcx ingress {}",
        net.b.name,
        s(&file)
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let chains = fs.path.join("tc").join("chains");
    let pins = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&chains)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| d.path().is_dir())
            .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
            .map(|e| e.path())
            .filter(|p| tcbpf::attach::tcx::open_pinned(p).is_ok())
            .collect()
    };
    assert_eq!(pins().len(), 2, "{:?}", pins());
    let r = run(&format!("-n {} filter del dev v1 tcx ingress", net.b.name));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(pins(), Vec::<std::path::PathBuf>::new());
    let r = run(&format!(
        "-j -n {} filter show dev v1 tcx ingress",
        net.b.name
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("\"prog_id\""), "{}", r.stdout);
}

#[test]
fn keeper_refusing_a_state_dir_off_bpffs_creates_nothing() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("edges-state");
    let state = dir.join("a").join("b");
    let sock = dir.join("k.sock");
    let (code, _, err) = tcbpf(&["keeper", s(&sock), "state", s(&state)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not on a bpffs"), "{err}");
    assert!(
        !dir.join("a").exists(),
        "the refused state directory was created"
    );
    assert!(!sock.exists());
}

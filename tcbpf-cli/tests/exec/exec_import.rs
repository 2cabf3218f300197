//! `tcbpf exec bpf import` and `tcbpf map export` end to end, as separate
//! processes over real sockets and real maps, and against the real `tc`
//! (iproute2) importer. Run as root.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use tcbpf::sys::{info::map_info, map, MapFd};
use tcbpf_testkit::{env_vars, next_id, ok, Importer, SockPath};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

fn tcbpf(args: &[&str]) -> Command {
    tcbpf_testkit::tcbpf(TCBPF, args, None)
}

fn import_cmd(path: &Path, extra: &[&str]) -> Command {
    let mut c = tcbpf(&[
        "exec",
        "bpf",
        "import",
        path.to_str().unwrap(),
        "timeout",
        "30",
    ]);
    c.args(extra);
    c
}

fn hash_map(name: &str) -> MapFd {
    tcbpf_testkit::hash_map(name, 4, 8, 256)
}

fn kernel_id(m: &MapFd) -> u32 {
    map_info(m).unwrap().id
}

/// `map export PATH id K1 id E1 id K2 id E2 …`: each map by kernel id with
/// its export id.
fn export_by_id(path: &Path, maps: &[(u32, u32)]) {
    let mut args = vec![
        "map".to_string(),
        "export".into(),
        path.to_str().unwrap().into(),
    ];
    for (kid, eid) in maps {
        args.extend(["id".into(), kid.to_string(), "id".into(), eid.to_string()]);
    }
    args.extend(["obj".into(), "exec_import.o".into()]);
    let out = Command::new(TCBPF).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn import_receives_1_3_64_65_and_200_maps_with_ids_and_names_in_the_environment() {
    tcbpf_testkit::require_root!();
    for count in [1usize, 3, 64, 65, 200] {
        let path = SockPath::new("count");
        let tag = next_id();
        let maps: Vec<MapFd> = (0..count)
            .map(|i| hash_map(&format!("ei{tag}.m{i}")))
            .collect();
        let mut imp = Importer::start(import_cmd(&path.0, &["run", "env"]), &path.0);
        let pairs: Vec<(u32, u32)> = maps
            .iter()
            .enumerate()
            .map(|(i, m)| (kernel_id(m), 500 + i as u32))
            .collect();
        export_by_id(&path.0, &pairs);
        let out = imp.finish();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = env_vars(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(env.get("BPF_NUM_MAPS"), Some(&count.to_string()));
        assert_eq!(
            env.len(),
            1 + 2 * count,
            "{count}: one id and one name variable per map"
        );
        for i in 0..count {
            let by_id = &env[&format!("BPF_MAP{}", 500 + i)];
            let by_name = &env[&format!("BPF_MAP_EI{tag}_M{i}")];
            assert_eq!(by_id, by_name, "map {i}: id and name name the same fd");
        }
        assert!(!path.0.exists(), "socket unlinked");
    }
}

#[test]
fn values_written_by_the_command_are_seen_by_a_third_process() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("write");
    let m = hash_map("exec_write");
    let kid = kernel_id(&m);
    let script = format!("{TCBPF} map update env 7 key u32 9 value u64 4242 && {TCBPF} map update env exec_write key u32 10 value u64 17");
    let mut imp = Importer::start(import_cmd(&path.0, &["run", "sh", "-c", &script]), &path.0);
    export_by_id(&path.0, &[(kid, 7)]);
    let out = imp.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ok(tcbpf(&[
        "map",
        "lookup",
        "id",
        &kid.to_string(),
        "key",
        "u32",
        "9",
        "value",
        "u64",
    ]));
    assert!(got.contains("4242"), "third process sees the value: {got}");
    let mut v = [0u8; 8];
    map::lookup(&m, &10u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 17);
}

#[test]
fn default_ids_are_the_lowest_unused_in_order() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("defaults");
    let a = hash_map("exec_def_a");
    let b = hash_map("exec_def_b");
    let c = hash_map("exec_def_c");
    let mut imp = Importer::start(import_cmd(&path.0, &["run", "env"]), &path.0);
    // a: no id → 1 (0 is taken by b); b: id 0; c: no id → 2.
    let out = tcbpf(&[
        "map",
        "export",
        path.0.to_str().unwrap(),
        "fd",
        "0",
        "fd",
        "1",
        "id",
        "0",
        "id",
        &kernel_id(&c).to_string(),
    ])
    .stdin(Stdio::from(a.try_clone().unwrap().into_owned()))
    .stdout(Stdio::from(b.try_clone().unwrap().into_owned()))
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = env_vars(&String::from_utf8(imp.finish().stdout).unwrap());
    assert_eq!(env["BPF_MAP1"], env["BPF_MAP_EXEC_DEF_A"]);
    assert_eq!(env["BPF_MAP0"], env["BPF_MAP_EXEC_DEF_B"]);
    assert_eq!(env["BPF_MAP2"], env["BPF_MAP_EXEC_DEF_C"]);
}

#[test]
fn real_tc_imports_from_map_export_and_its_command_uses_tcbpf_map_env() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("tc");
    let maps: Vec<MapFd> = (0..3).map(|i| hash_map(&format!("exec_tc{i}"))).collect();
    let script = format!(
        "echo n=$BPF_NUM_MAPS; {TCBPF} map update env 12 key u32 1 value u64 99 && {TCBPF} -j map lookup env 12 key u32 1 value u64"
    );
    let mut cmd = Command::new("/usr/sbin/tc");
    cmd.args([
        "exec",
        "bpf",
        "import",
        path.0.to_str().unwrap(),
        "run",
        "sh",
        "-c",
        &script,
    ]);
    let mut imp = Importer::start(cmd, &path.0);
    let pairs: Vec<(u32, u32)> = maps
        .iter()
        .enumerate()
        .map(|(i, m)| (kernel_id(m), 10 + i as u32))
        .collect();
    export_by_id(&path.0, &pairs);
    let out = imp.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tc: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("n=3"), "{stdout}");
    assert!(stdout.contains("99"), "{stdout}");
    let mut v = [0u8; 8];
    map::lookup(&maps[2], &1u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(
        u64::from_ne_bytes(v),
        99,
        "tc's command wrote the map with id 12"
    );
}

#[test]
fn json_import_prints_what_arrived_instead_of_running() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("json");
    let m = hash_map("exec_json");
    let mut c = tcbpf(&[
        "-j",
        "exec",
        "bpf",
        "imp",
        path.0.to_str().unwrap(),
        "timeout",
        "30",
        "run",
        "false",
    ]);
    c.env("IGNORED", "1");
    let mut imp = Importer::start(c, &path.0);
    export_by_id(&path.0, &[(kernel_id(&m), 42)]);
    let out = imp.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["object"]["name"], "exec_import.o");
    assert_eq!(v["num_maps"], 1);
    let e = &v["maps"][0];
    assert_eq!(e["id"], 42);
    assert_eq!(e["name"], "exec_json");
    assert_eq!(e["type"], "hash");
    assert_eq!(
        (e["bytes_key"].as_u64(), e["bytes_value"].as_u64()),
        (Some(4), Some(8))
    );
    assert_eq!(e["map_id"], kernel_id(&m));
    assert!(e["fd"].as_u64().unwrap() > 2);
}

#[test]
fn several_commands_share_the_maps_and_a_later_one_sees_all_their_writes() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("share");
    let a = hash_map("exec_share_a");
    let b = hash_map("exec_share_b");
    let script = format!(
        "w() {{ i=$1; while [ $i -le $2 ]; do {TCBPF} map update env $3 key u32 $i value u64 $i || exit 1; i=$((i+1)); done; }}
         w 1 40 0 & w 41 80 0 & w 1 40 1 & w 41 80 1 & wait
         sh -c '{TCBPF} -j map dump env 0; {TCBPF} -j map dump env 1'"
    );
    let mut imp = Importer::start(import_cmd(&path.0, &["run", "sh", "-c", &script]), &path.0);
    export_by_id(&path.0, &[(kernel_id(&a), 0), (kernel_id(&b), 1)]);
    let out = imp.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let dumps: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dumps.len(), 2, "{text}");
    for d in &dumps {
        assert_eq!(
            d.as_array().map(|a| a.len()),
            Some(80),
            "all 80 keys seen: {d}"
        );
    }
    for m in [&a, &b] {
        let mut v = [0u8; 8];
        map::lookup(m, &77u32.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(u64::from_ne_bytes(v), 77);
    }
}

#[test]
fn sender_of_another_uid_is_dropped_with_a_warning_unless_allowed() {
    tcbpf_testkit::require_root!();
    let m = hash_map("exec_uid");
    let kid = kernel_id(&m);
    for allow in [false, true] {
        let path = SockPath::new("uid");
        let mut extra = vec!["mode", "0666"];
        if allow {
            extra.extend(["allow-uid", "65534"]);
        }
        let mut c = tcbpf(&[
            "-j",
            "exec",
            "bpf",
            "import",
            path.0.to_str().unwrap(),
            "timeout",
            "30",
        ]);
        c.args(&extra);
        let mut imp = Importer::start(c, &path.0);
        let nobody = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                TCBPF,
                "map",
                "export",
            ])
            .arg(&path.0)
            .args(["fd", "0", "id", "5"])
            .stdin(Stdio::from(m.try_clone().unwrap().into_owned()))
            .output()
            .unwrap();
        assert!(
            nobody.status.success(),
            "nobody's export: {}",
            String::from_utf8_lossy(&nobody.stderr)
        );
        if !allow {
            export_by_id(&path.0, &[(kid, 6)]);
        }
        let out = imp.finish();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if allow {
            assert_eq!(v["maps"][0]["id"], 5, "nobody's transfer accepted");
            assert!(!stderr.contains("dropped"), "{stderr}");
        } else {
            assert_eq!(v["maps"][0]["id"], 6, "only root's transfer accepted");
            assert!(
                stderr.contains("dropped a datagram from uid 65534"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn import_fails_clearly_on_existing_path_and_long_path() {
    let path = SockPath::new("exists");
    std::fs::write(&path.0, b"x").unwrap();
    let out = import_cmd(&path.0, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert!(path.0.exists(), "an existing path is not removed");
    let long = format!("/tmp/{}", "y".repeat(110));
    let out = import_cmd(Path::new(&long), &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than sun_path"));
}

#[test]
fn sigterm_while_waiting_unlinks_the_socket_and_fails() {
    for sig in ["TERM", "INT"] {
        let path = SockPath::new("signal");
        let mut imp = Importer::start(
            tcbpf(&["exec", "bpf", "import", path.0.to_str().unwrap()]),
            &path.0,
        );
        let pid = imp.pid().to_string();
        assert!(Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap()
            .success());
        let out = imp.finish();
        assert_eq!(out.status.code(), Some(4), "SIG{sig}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("interrupted by SIG{sig}")));
        assert!(!path.0.exists(), "socket removed after SIG{sig}");
    }
}

#[test]
fn timeout_unlinks_the_socket_and_fails() {
    let path = SockPath::new("timeout");
    let out = tcbpf(&[
        "exec",
        "bpf",
        "import",
        path.0.to_str().unwrap(),
        "timeout",
        "0.1",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(!path.0.exists());
}

#[test]
fn export_to_nobody_says_nobody_listens() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("nobody");
    let m = hash_map("exec_nobody");
    let out = tcbpf(&[
        "map",
        "export",
        path.0.to_str().unwrap(),
        "id",
        &kernel_id(&m).to_string(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody is listening"));
}

#[test]
fn missing_command_is_reported_after_receiving() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("nocmd");
    let m = hash_map("exec_nocmd");
    let mut imp = Importer::start(import_cmd(&path.0, &["run", "/nonexistent/cmd"]), &path.0);
    export_by_id(&path.0, &[(kernel_id(&m), 0)]);
    let out = imp.finish();
    assert_eq!(out.status.code(), Some(1));
    let mut err = String::new();
    out.stderr.as_slice().read_to_string(&mut err).unwrap();
    assert!(err.contains("cannot run '/nonexistent/cmd'"), "{err}");
    assert!(!path.0.exists());
}

#[test]
fn inherited_bpf_variables_are_replaced_not_mixed_in() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("stale");
    let m = hash_map("exec_stale");
    let mut c = import_cmd(&path.0, &["run", "env"]);
    c.env("BPF_MAP99", "3")
        .env("BPF_NUM_MAPS", "7")
        .env("BPF_MAP_OLD", "4")
        .env("KEEP_ME", "yes");
    let mut imp = Importer::start(c, &path.0);
    export_by_id(&path.0, &[(kernel_id(&m), 1)]);
    let out = imp.finish();
    let text = String::from_utf8(out.stdout).unwrap();
    let env = env_vars(&text);
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["BPF_MAP1", "BPF_MAP_EXEC_STALE", "BPF_NUM_MAPS"],
        "{text}"
    );
    assert_eq!(env["BPF_NUM_MAPS"], "1");
    assert!(text.contains("KEEP_ME=yes"), "other variables pass through");
}

#[test]
fn socket_is_0600_even_under_umask_000_and_mode_widens_it_exactly() {
    use std::os::unix::fs::PermissionsExt;
    for (extra, want) in [("", 0o600), ("mode 0660", 0o660)] {
        let path = SockPath::new("umask");
        let script = format!(
            "umask 000; exec {TCBPF} exec bpf import {} timeout 30 {extra}",
            path.0.display()
        );
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        let mut imp = Importer::start(c, &path.0);
        let mode = std::fs::symlink_metadata(&path.0)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, want, "mode with umask 000 and '{extra}'");
        let pid = imp.pid().to_string();
        Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .unwrap();
        imp.finish();
    }
}

//! The keeper's `state DIR` taken on no faith (issue 19, item 3): a state
//! directory another user made, or one others may write, is refused with
//! the reason; a planted symlink is never followed (nothing outside the
//! state directory is deleted); swapped set directories are not picked up
//! (their maps do not match the record the keeper wrote), so no client
//! gets a map it may not have; a foreign entry (a program pin, a stray
//! directory) is skipped with a warning, never deleted, and never stops
//! the keeper from starting.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

const NOBODY: u32 = 65534;

/// `tcbpf keeper SOCK state DIR`, which must refuse to start: its exit
/// code and stderr. A keeper still running after 10 s (it took the
/// directory) is killed and the test fails.
fn refused_start(
    sock: &std::path::Path,
    state: &std::path::Path,
    mnt: &std::path::Path,
) -> (i32, String) {
    let mut cmd = tcbpf_cmd(&[
        "keeper",
        sock.to_str().unwrap(),
        "state",
        state.to_str().unwrap(),
    ]);
    cmd.env("TC_BPF_MNT", mnt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the keeper took state directory {} (still running):\n{}",
                state.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_state_directory_made_by_another_user_or_writable_by_others_is_refused() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kst");
    // A bpffs mounted without options has a 1777 root: anyone may make
    // the directory before the keeper does.
    std::fs::set_permissions(&fs.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let state = fs.join("kstate");
    let mut mk = std::process::Command::new("mkdir");
    mk.arg(&state).uid(NOBODY).gid(NOBODY);
    ok(mk);
    let (code, err) = refused_start(&dir.join("k"), &state, &fs.path);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("owned by uid 65534") && err.contains("refused"),
        "{err}"
    );
    assert!(!dir.join("k").exists(), "no socket left behind");

    // Root's own directory, but writable by others: refused too.
    let open = fs.join("kopen");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, err) = refused_start(&dir.join("k"), &open, &fs.path);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("writable by group or others (mode 1777)"),
        "{err}"
    );

    // A symlink to a good directory: refused, not followed.
    let good = fs.join("kgood");
    std::fs::create_dir(&good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = fs.join("klink");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let (code, err) = refused_start(&dir.join("k"), &link, &fs.path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a symlink"), "{err}");

    // The good one works.
    let k = KeeperProc::start(&dir.join("k"), &["state", good.to_str().unwrap()], &fs.path);
    drop(k);
}

#[test]
fn a_planted_new_symlink_is_never_followed_and_nothing_outside_is_deleted() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("ksym");
    // Another directory with pins the keeper must never touch.
    let victim = fs.join("victim");
    std::fs::create_dir(&victim).unwrap();
    let (m, _) = counter_hash(&format!("kv{}", next_id()), 1, 1);
    tcbpf::sys::obj::pin(&m, &victim.join("precious")).unwrap();
    let state = fs.join("kstate");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    // `new~x` (a set being written when a crash came) as a symlink to it,
    // and a plain symlink where a set directory would be.
    std::os::unix::fs::symlink(&victim, state.join("new~x")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("y")).unwrap();
    let mut k = KeeperProc::start(
        &dir.join("k"),
        &["state", state.to_str().unwrap()],
        &fs.path,
    );
    // An export of set x would be pinned through new~x: refused, the
    // symlink left alone; set z is pinned in a directory of its own.
    let (a, a_id) = counter_hash(&format!("kx{}", next_id()), 1, 1);
    let mut export = tcbpf_cmd(&["map", "export", k.import.to_str().unwrap()]);
    export.args(["id", &a_id.to_string(), "obj", "x"]);
    ok(export);
    k.export_map(a_id, "z");
    drop(a);
    let out = k.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        victim.join("precious").exists(),
        "the victim's pin is still there\n{log}"
    );
    assert_eq!(pins(&victim), ["precious"], "{log}");
    assert!(log.contains("skipping entry 'new~x': a symlink"), "{log}");
    assert!(log.contains("skipping entry 'y': a symlink"), "{log}");
    // The symlinks stay (foreign entries are never deleted), the set is
    // pinned in a directory of its own.
    assert!(std::fs::symlink_metadata(state.join("y"))
        .unwrap()
        .is_symlink());
    assert!(std::fs::symlink_metadata(state.join("new~x"))
        .unwrap()
        .is_symlink());
    assert!(
        log.contains("import of 'x' not kept: state: mkdir"),
        "{log}"
    );
    assert!(std::fs::symlink_metadata(state.join("z")).unwrap().is_dir());
    drop(m);
}

#[test]
fn swapped_set_directories_and_foreign_entries_are_skipped_with_a_warning() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kswap");
    let policy = dir.join("policy");
    std::fs::write(&policy, format!("allow uid {NOBODY} set pub.o ro\n")).unwrap();
    let state = fs.join("kstate");
    let state_arg = state.to_str().unwrap().to_string();
    let policy_arg = policy.to_str().unwrap().to_string();
    let args = ["state", &state_arg, "policy", &policy_arg, "mode", "0666"];
    let mut k = KeeperProc::start(&dir.join("k"), &args, &fs.path);
    let pub_name = format!("kp{}", next_id());
    let secret_name = format!("ks{}", next_id());
    let (p, p_id) = counter_hash(&pub_name, 1, 1);
    let (s, s_id) = counter_hash(&secret_name, 1, 31337);
    k.export_map(p_id, "pub.o");
    k.export_map(s_id, "secret.o");
    drop((p, s));
    assert!(k.stop().status.success());

    // Swap the two set directories (as someone with write access would),
    // and plant foreign entries: a program pin in a set-like directory, a
    // directory with a name that is no set, a map pinned at the top.
    std::fs::rename(state.join("pub%2eo"), state.join("tmp")).unwrap();
    std::fs::rename(state.join("secret%2eo"), state.join("pub%2eo")).unwrap();
    std::fs::rename(state.join("tmp"), state.join("secret%2eo")).unwrap();
    std::fs::create_dir(state.join("junk")).unwrap();
    let prog = constant_prog(0);
    tcbpf::sys::obj::pin(&prog, &state.join("junk").join("0000-1")).unwrap();
    std::fs::create_dir(state.join("bad%zz")).unwrap();
    let (t, _) = counter_hash(&format!("kt{}", next_id()), 1, 1);
    tcbpf::sys::obj::pin(&t, &state.join("top")).unwrap();
    drop((prog, t));

    let mut k = KeeperProc::start(&dir.join("k"), &args, &fs.path);
    let sock = k.sock.to_str().unwrap().to_string();
    // uid 65534 may get pub.o: the directory called pub%2eo now holds the
    // secret map; it must not be handed out as pub.o.
    let mut cmd = tcbpf_cmd(&["keeper", "list", &sock]);
    cmd.uid(NOBODY).gid(NOBODY);
    let listed = ok(cmd);
    assert!(!listed.contains(&secret_name), "{listed}");
    let mut cmd = tcbpf_cmd(&[
        "map",
        "lookup",
        "keeper",
        &sock,
        &format!("pub.o/{secret_name}"),
        "key",
        "u32",
        "1",
        "value",
        "u64",
    ]);
    cmd.uid(NOBODY).gid(NOBODY);
    let (code, err) = fails(cmd);
    assert_ne!(code, 0, "{err}");
    assert!(!err.contains("31337"), "{err}");
    let root_list = ok(tcbpf_cmd(&["keeper", "list", &sock]));
    assert!(
        !root_list.contains("set "),
        "neither swapped set is picked up:\n{root_list}"
    );
    let out = k.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "skipping set directory 'pub%2eo': its maps do not match the record",
        "skipping set directory 'secret%2eo': its maps do not match the record",
        "skipping set directory 'junk'",
        "skipping entry 'bad%zz': not a set directory name",
        "skipping entry 'top': a file, not a set directory",
    ] {
        assert!(log.contains(needle), "{needle}\n{log}");
    }
    // Nothing was deleted.
    let mut left: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["bad%zz", "junk", "pub%2eo", "secret%2eo", "top"]);
    assert!(state.join("junk").join("0000-1").exists());
}

/// The generation of set `name` in `tcbpf -j keeper list SOCK`, once it is
/// `want` (5 s at most; the last one seen otherwise).
fn generation(sock: &str, name: &str, want: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..500 {
        let list: serde_json::Value =
            serde_json::from_str(&ok(tcbpf_cmd(&["-j", "keeper", "list", sock]))).unwrap();
        seen = list["sets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["generation"].as_u64())
            .unwrap_or(0);
        if seen == want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    seen
}

#[test]
fn a_sets_generation_survives_a_keeper_restart() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kgen");
    let state = fs.join("kstate");
    let args = ["state", state.to_str().unwrap()];
    let mut k = KeeperProc::start(&dir.join("k"), &args, &fs.path);
    let sock = k.sock.to_str().unwrap().to_string();
    let (m1, id1) = counter_hash(&format!("kg{}", next_id()), 1, 1);
    let (m2, id2) = counter_hash(&format!("kg{}", next_id()), 1, 2);
    k.export_map(id1, "gen.o");
    k.export_map(id2, "gen.o");
    assert_eq!(generation(&sock, "gen.o", 2), 2);
    assert!(k.stop().status.success());

    let k = KeeperProc::start(&dir.join("k"), &args, &fs.path);
    k.wait_for_set("gen.o");
    assert_eq!(
        generation(&sock, "gen.o", 2),
        2,
        "picked up at its generation"
    );
    k.export_map(id1, "gen.o");
    assert_eq!(
        generation(&sock, "gen.o", 3),
        3,
        "and counted on from there"
    );
    drop((m1, m2));
}

//! Exporters check who receives before they send: a socket bound by another
//! user, or in a directory other users can write without the sticky bit,
//! gets nothing unless `allow-uid` names its owner. Run as root.

use crate::e2e_support;

use e2e_support::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");
const NOBODY: &str = "65534";

/// `tcbpf -j exec bpf import PATH timeout SECS` running as `nobody`.
fn nobody_importer(path: &std::path::Path, secs: &str) -> Importer {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        NOBODY,
        "--regid",
        NOBODY,
        "--clear-groups",
        TCBPF,
    ])
    .args(["-j", "exec", "bpf", "import"])
    .arg(path)
    .args(["timeout", secs]);
    Importer::start(c, path)
}

fn sticky_dir(tag: &str, mode: u32) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

fn export(path: &std::path::Path, map_id: u32, extra: &[&str]) -> Run {
    let mut c = Command::new(TCBPF);
    c.args(["map", "export"])
        .arg(path)
        .args(["id", &map_id.to_string()])
        .args(extra);
    output(c)
}

fn kernel_id(m: &tcbpf::sys::MapFd) -> u32 {
    tcbpf::sys::info::map_info(m).unwrap().id
}

#[test]
fn map_export_refuses_a_socket_bound_by_another_uid_unless_allowed() {
    tcbpf_testkit::require_root!();
    let m = hash_map(&unique("hx"), 4, 8, 4);
    let dir = sticky_dir("hxuid", 0o1777);
    let path = dir.join("bpf.sock");
    let mut imp = nobody_importer(&path, "3");
    let refused = export(&path, kernel_id(&m), &[]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("owned by uid 65534") && refused.stderr.contains("allow-uid 65534"),
        "{}",
        refused.stderr
    );
    let sent = export(&path, kernel_id(&m), &["allow-uid", NOBODY]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let out = imp.finish();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["num_maps"], 1, "the allowed export arrived once");
}

#[test]
fn map_export_refuses_a_socket_in_a_directory_others_can_write_without_sticky() {
    tcbpf_testkit::require_root!();
    let m = hash_map(&unique("hx"), 4, 8, 4);
    let dir = sticky_dir("hxdir", 0o777);
    let path = dir.join("bpf.sock");
    let mut c = Command::new(TCBPF);
    c.args(["-j", "exec", "bpf", "import"])
        .arg(&path)
        .args(["timeout", "1"]);
    let mut imp = Importer::start(c, &path);
    let refused = export(&path, kernel_id(&m), &[]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&dir.0.display().to_string()) && refused.stderr.contains("sticky"),
        "{}",
        refused.stderr
    );
    let out = imp.finish();
    assert_eq!(out.status.code(), Some(4), "the importer received nothing");
}

#[test]
fn map_export_refuses_a_symlink_to_a_socket() {
    tcbpf_testkit::require_root!();
    let m = hash_map(&unique("hx"), 4, 8, 4);
    let dir = TempDir::new("hxlnk");
    let path = dir.join("bpf.sock");
    let link = dir.join("link.sock");
    let mut c = Command::new(TCBPF);
    c.args(["-j", "exec", "bpf", "import"])
        .arg(&path)
        .args(["timeout", "1"]);
    let mut imp = Importer::start(c, &path);
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let refused = export(&link, kernel_id(&m), &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not a socket"),
        "{}",
        refused.stderr
    );
    assert_eq!(imp.finish().status.code(), Some(4));
}

#[test]
fn filter_add_export_refuses_a_receiver_of_another_uid_unless_allowed() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let fs = Bpffs::new();
    let dir = sticky_dir("hxflt", 0o1777);
    let path = dir.join("bpf.sock");
    let obj = object("verdict_legacy.o");
    let mut imp = nobody_importer(&path, "5");
    let line = |pref: u32, extra: &str| {
        format!(
            "-n {} filter add dev v0 ingress pref {pref} bpf da obj {obj} sec classifier export {} {extra}",
            ns.name,
            path.display()
        )
    };
    let (code, err) = fails(tcbpf(&line(1, ""), &fs.path));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("owned by uid 65534"), "{err}");
    ok(tcbpf(&line(2, "allow-uid 65534"), &fs.path));
    let out = imp.finish();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["num_maps"].as_u64().unwrap() >= 1, "{v}");
}

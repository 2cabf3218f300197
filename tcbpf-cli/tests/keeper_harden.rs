//! A keeper under a hostile local user (issue 19): every supplementary
//! group of a client counts; a user with no policy line cannot lock root
//! out by holding connections, by pushing the keeper to its open-files
//! limit, or by never reading its replies; refusals are logged at a
//! limited rate and the client prints the keeper's "busy".

mod e2e_support;
mod keeper_support;

use e2e_support::*;
use keeper_support::*;

const NOBODY: u32 = 65534;

/// `setpriv` as uid/gid 65534 with exactly `groups`, running `tcbpf WORDS`.
fn as_nobody_in(groups: &[u32], words: &[&str]) -> std::process::Command {
    let list: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        &format!("--groups={}", list.join(",")),
        TCBPF,
    ])
    .args(words)
    .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn a_client_in_300_supplementary_groups_is_allowed_by_its_last_group() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kgrp");
    let policy = dir.join("policy");
    // Groups 47001..=47300: the policy names the last one, which a buffer
    // of 256 groups never sees.
    let groups: Vec<u32> = (47001..=47300).collect();
    std::fs::write(&policy, "allow gid 47300 set grp.o\n").unwrap();
    let k = KeeperProc::start(
        &dir.join("k"),
        &["policy", policy.to_str().unwrap(), "mode", "0666"],
        &fs.path,
    );
    let (m, id) = counter_hash(&format!("kg{}", next_id()), 1, 9);
    k.export_map(id, "grp.o");
    drop(m);
    let sock = k.sock.to_str().unwrap();
    let listed = ok(as_nobody_in(&groups, &["keeper", "list", sock]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("set grp.o") && l.contains("ro")),
        "the 300th group allows set grp.o read-only:\n{listed}"
    );
    // Without that group: nothing.
    let listed = ok(as_nobody_in(&groups[..299], &["keeper", "list", sock]));
    assert!(!listed.contains("grp.o"), "{listed}");
}

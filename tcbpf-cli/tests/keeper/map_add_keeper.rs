//! `map add` through a keeper's read-only grant: a client that holds
//! CAP_BPF and a `ro` descriptor from the keeper may not add (exit 3,
//! as `update` refuses), though the kernel would let the adder program
//! write the map. Run as root.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::process::Stdio;

#[test]
fn a_keeper_read_only_grant_refuses_add_even_with_cap_bpf() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kadd");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let name = format!("ka{}", next_id());
    let (m, id) = counter_hash(&name, 2, 42);
    k.export_map(id, "add.o");
    let got = tcbpf::exec::agent::from_keeper(&k.sock, "add.o", &[], true).unwrap();
    assert!(got.read_only);
    let ro = &got.received.maps[0].fd;
    let run = |verb: &[&str]| {
        let out = std::process::Command::new(TCBPF)
            .args(verb)
            .stdin(Stdio::from(ro.try_clone().unwrap().into_owned()))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "map", "add", "fd", "0", "key", "u32", "2", "value", "1000000",
    ]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("read-only"), "{err}");
    let (code, err) = run(&[
        "map", "update", "fd", "0", "key", "u32", "2", "value", "u64", "7",
    ]);
    assert_eq!(code, Some(3), "{err}");
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(&m, &2u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 42, "the value is as it was");
}

//! The command `exec bpf import` runs sees exactly the descriptors tcbpf
//! inherited plus the imported maps: the socket, the signalfd and anything
//! else tcbpf opened are gone. A test binary of its own, so no other test
//! thread spawns children while this one counts descriptors.

use std::collections::BTreeSet;
use std::process::Command;
use tcbpf::sys::{info::map_info, map};
use tcbpf_testkit::{Importer, SockPath};

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

#[test]
fn command_sees_only_inherited_descriptors_plus_the_maps() {
    tcbpf_testkit::require_root!();
    let sock = SockPath::new("exec-fds");
    let path = &sock.0;
    let maps: Vec<_> = (0..3)
        .map(|i| {
            map::create(&map::MapCreate {
                map_type: tcbpf::abi::MapType::Array as u32,
                key_size: 4,
                value_size: 8,
                max_entries: 4,
                name: &format!("exec_fds{i}"),
                ..Default::default()
            })
            .unwrap()
        })
        .collect();
    // The shell lists its descriptors by becoming `ls` (exec), after its
    // pipeline has ended: a listing taken from inside a pipeline can catch
    // the shell holding both ends of the pipe while it starts it. `ls`
    // adds one descriptor of its own, the directory it reads.
    let script = format!(
        "env | grep ^BPF_; test -e {} && echo SOCKET_LEFT; exec ls -l /proc/self/fd",
        path.display()
    );
    let mut cmd = Command::new(TCBPF);
    cmd.args([
        "exec",
        "bpf",
        "import",
        path.to_str().unwrap(),
        "timeout",
        "30",
        "run",
        "sh",
        "-c",
        &script,
    ]);
    let mut importer = Importer::start(cmd, path);
    let mut args = vec![
        "map".to_string(),
        "export".into(),
        path.to_str().unwrap().into(),
    ];
    for m in &maps {
        args.extend(["id".into(), map_info(m).unwrap().id.to_string()]);
        args.extend(["id".into(), args.len().to_string()]);
    }
    let export = Command::new(TCBPF).args(&args).output().unwrap();
    assert!(
        export.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&export.stderr)
    );
    let out = importer.finish();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("SOCKET_LEFT"),
        "socket path removed before the command runs"
    );
    // `ls -l` lines end in `FD -> TARGET`; the directory `ls` reads is its own.
    let listed: Vec<(i32, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(left, target)| {
            let fd = left.rsplit(' ').next().unwrap().parse().unwrap();
            (fd, target)
        })
        .filter(|(_, target)| !(target.starts_with("/proc/") && target.ends_with("/fd")))
        .collect();
    let fds: BTreeSet<i32> = listed.iter().map(|(fd, _)| *fd).collect();
    let map_fds: BTreeSet<i32> = text
        .lines()
        .filter(|l| l.starts_with("BPF_MAP") && !l.starts_with("BPF_MAP_"))
        .map(|l| l.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(map_fds.len(), 3, "{text}");
    let expected: BTreeSet<i32> = [0, 1, 2]
        .into_iter()
        .chain(inheritable_fds())
        .chain(map_fds.iter().copied())
        .collect();
    assert_eq!(fds, expected, "descriptors of the command:\n{text}");
    for fd in &map_fds {
        assert!(listed.contains(&(*fd, "anon_inode:bpf-map")), "{text}");
    }
}

/// This process's descriptors without close-on-exec: what any child
/// (tcbpf here) inherits besides its stdio (e.g. from the harness).
fn inheritable_fds() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let info = std::fs::read_to_string(e.path()).ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
            let flags = u32::from_str_radix(flags, 8).ok()?;
            (fd > 2 && flags & libc::O_CLOEXEC as u32 == 0).then_some(fd)
        })
        .collect()
}

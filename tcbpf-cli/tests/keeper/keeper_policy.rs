//! Who gets what from a keeper, and what a client cannot do to it: the
//! policy file (uid 65534 with a read-only set: reads work, every write
//! fails with exit 3; forbidden sets refused with the reason), a client
//! killed mid-life re-attaching to the counters it left, and hostile
//! clients (garbage, huge requests, descriptors sent in) refused with a
//! reason, logged once, leaving the keeper's descriptor count unchanged.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;
use tcbpf::keeper::proto::{self, Status};
use tcbpf::keeper::{Access, Client};

const NOBODY: u32 = 65534;

fn as_nobody(words: &[&str]) -> std::process::Command {
    let mut cmd = tcbpf_cmd(words);
    cmd.uid(NOBODY).gid(NOBODY);
    cmd
}

#[test]
fn unprivileged_client_gets_a_read_only_set_and_every_write_fails_with_exit_3() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kpol");
    let policy = dir.join("policy");
    std::fs::write(
        &policy,
        format!("# test policy\nallow uid {NOBODY} set open.o   # read-only by default\n"),
    )
    .unwrap();
    let mut k = KeeperProc::start(
        &dir.join("k"),
        &["policy", policy.to_str().unwrap(), "mode", "0666"],
        &fs.path,
    );
    let sock = k.sock.to_str().unwrap().to_string();
    let name = format!("ko{}", next_id());
    let (m, id) = counter_hash(&name, 1, 77);
    k.export_map(id, "open.o");
    let (secret, sid) = counter_hash(&format!("ks{}", next_id()), 1, 5);
    k.export_map(sid, "secret.o");
    drop((m, secret));
    let map = format!("open.o/{name}");

    // Reads work, through a MAP reference and through the environment.
    let got = ok(as_nobody(&[
        "map", "lookup", "keeper", &sock, &map, "key", "u32", "1", "value", "u64",
    ]));
    assert_eq!(got.trim(), "key: 1  value: 77");
    let var = name.to_uppercase();
    let got = ok(as_nobody(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        &sock,
        "run",
        "sh",
        "-c",
        &format!("\"$TCBPF\" map lookup env {var} key u32 1 value u64"),
    ]));
    assert_eq!(got.trim(), "key: 1  value: 77");

    // Every write fails with exit 3: the kernel refuses it on the
    // read-only descriptor.
    for words in [
        vec![
            "map", "update", "keeper", &sock, &map, "key", "u32", "1", "value", "u64", "1",
        ],
        vec!["map", "delete", "keeper", &sock, &map, "key", "u32", "1"],
    ] {
        let (code, err) = fails(as_nobody(&words));
        assert_eq!(code, 3, "{words:?}: {err}");
    }
    let (code, err) = fails(as_nobody(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        &sock,
        "set",
        "open.o",
        "run",
        "sh",
        "-c",
        &format!("exec \"$TCBPF\" map update env {var} key u32 1 value u64 1"),
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("Operation not permitted") || err.contains("EPERM"),
        "{err}"
    );

    // The set it is not allowed: refused with the reason, exit 3; it does
    // not even see it listed; status is not for it.
    let (code, err) = fails(as_nobody(&[
        "exec", "bpf", "import", "keeper", &sock, "set", "secret.o", "run", "true",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("may not get set 'secret.o'"), "{err}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(as_nobody(&["-j", "keeper", "list", &sock]))).unwrap();
    let names: Vec<&str> = listed["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["open.o"]);
    assert_eq!(listed["sets"][0]["access"], "ro");
    let (code, _) = fails(as_nobody(&["keeper", "status", &sock]));
    assert_eq!(code, 3);

    // Root gets read-write; the value nobody could not change is intact.
    ok(tcbpf_cmd(&[
        "map", "update", "keeper", &sock, &map, "key", "u32", "1", "value", "u64", "78",
    ]));
    let got = ok(as_nobody(&[
        "map", "lookup", "keeper", &sock, &map, "key", "u32", "1", "value", "u64",
    ]));
    assert_eq!(got.trim(), "key: 1  value: 78");

    let status: serde_json::Value =
        serde_json::from_str(&ok(tcbpf_cmd(&["-j", "keeper", "status", &sock]))).unwrap();
    assert!(
        status["counters"]["refused"].as_u64().unwrap() >= 2,
        "{status}"
    );
    let clients = status["clients"].as_array().unwrap();
    assert!(clients
        .iter()
        .any(|c| c["uid"] == NOBODY && c["access"] == "ro" && c["set"] == "open.o"));
    let text = ok(tcbpf_cmd(&["keeper", "status", &sock]));
    assert!(text.starts_with("keeper: pid "), "{text}");
    assert!(
        text.contains("set open.o  object open.o  rw  1 map(s)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("uid {NOBODY}  set open.o  ro  1 map(s)")),
        "{text}"
    );
    let out = k.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        log.matches("may not get set 'secret.o'").count(),
        1,
        "logged once: {log}"
    );
}

#[test]
fn a_client_killed_mid_life_reattaches_and_sees_the_counters_it_left() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kkill");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let name = format!("kc{}", next_id());
    let (m, id) = counter_hash(&name, 1, 0);
    k.export_map(id, "count.o");
    drop(m);
    let ready = dir.join("ready");
    let script = format!(
        "\"$TCBPF\" map update env {} key u32 1 value u64 41 && touch {} && sleep 30",
        name.to_uppercase(),
        ready.display()
    );
    let sock = k.sock.to_str().unwrap();
    let mut child = tcbpf_cmd(&[
        "exec", "bpf", "import", "keeper", sock, "run", "sh", "-c", &script,
    ])
    .spawn()
    .unwrap();
    assert!(wait_for(&ready, Duration::from_secs(10)));
    child.kill().unwrap();
    child.wait().unwrap();
    let got = ok(tcbpf_cmd(&[
        "map", "lookup", "keeper", sock, &name, "key", "u32", "1", "value", "u64",
    ]));
    assert_eq!(got.trim(), "key: 1  value: 41");
}

/// A fresh connection's answer to `bytes` (with `fds` attached).
fn raw(
    sock: &std::path::Path,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> (Status, String) {
    let c = Client::connect(sock).unwrap();
    let (status, body) = c.raw_request(bytes, fds).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn hostile_clients_are_refused_with_a_reason_and_leave_no_descriptor_behind() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("khost");
    let mut k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let name = format!("kh{}", next_id());
    let (m, id) = counter_hash(&name, 1, 3);
    k.export_map(id, "h.o");
    // Settle: the export's and listing's connections are closed.
    std::thread::sleep(Duration::from_millis(100));
    let fds_before = k.fd_count();

    let good = proto::encode_request(&proto::Request::new(
        proto::Op::Get,
        "h.o",
        &[],
        Access::Best,
    ))
    .unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    let cases: Vec<(Vec<u8>, Vec<std::os::fd::BorrowedFd<'_>>, &str)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), vec![], "magic"),
        (vec![0xff; 100 * 1024], vec![], "larger than 4096"),
        (b"TCBK".to_vec(), vec![], "shorter than"),
        (
            b"TCBK\x01\x07\x00\x00\x00".to_vec(),
            vec![],
            "unknown operation",
        ),
        (
            good.clone(),
            vec![file.as_fd(), m.as_fd()],
            "carry no control messages",
        ),
    ];
    for (bytes, fds, needle) in &cases {
        let (status, reason) = raw(&k.sock, bytes, fds);
        assert_eq!(status, Status::BadRequest, "{needle}");
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    // A client that connects and goes away without a word, one that sends
    // half a request and dies: nothing to answer, nothing kept.
    drop(Client::connect(&k.sock).unwrap());
    let mut half = tcbpf_cmd(&["keeper", "list", k.sock.to_str().unwrap()]);
    let _ = half.output();
    // Garbage on the import socket: refused, the keeper goes on.
    let s = tcbpf::scm::Sender::connect(&k.import).unwrap();
    s.send_raw(b"not a bpf_map_aux", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // Still answering, with the right maps.
    let got = Client::connect(&k.sock)
        .unwrap()
        .get("h.o", &[], Access::Best, false)
        .unwrap();
    assert_eq!(got.received.maps.len(), 1);
    assert_eq!(got.received.maps[0].info.id, id);
    drop(got);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        k.fd_count(),
        fds_before,
        "no descriptor stays in the keeper"
    );

    let out = k.stop();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("refused pid").count(), cases.len(), "{log}");
    assert_eq!(log.matches("import refused").count(), 1, "{log}");
}

#[test]
fn agent_api_gets_maps_from_a_keeper_read_only_when_asked() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kagent");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let name = format!("kg{}", next_id());
    let (m, id) = counter_hash(&name, 2, 1234);
    k.export_map(id, "agent.o");
    drop(m);

    let got = tcbpf::exec::agent::from_keeper(&k.sock, "agent.o", &[], true).unwrap();
    assert!(got.read_only);
    assert_eq!(got.received.object.name, "agent.o");
    let map = &got.received.maps[0];
    assert_eq!((map.info.id, map.desc.id), (id, 0));
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(&map.fd, &2u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 1234);
    let err = tcbpf::sys::map::update(&map.fd, &2u32.to_ne_bytes(), &[0u8; 8], 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM), "{err}");

    let rw =
        tcbpf::exec::agent::from_keeper(&k.sock, "", std::slice::from_ref(&name), false).unwrap();
    assert!(!rw.read_only);
    tcbpf::sys::map::update(
        &rw.received.maps[0].fd,
        &2u32.to_ne_bytes(),
        &7u64.to_ne_bytes(),
        0,
    )
    .unwrap();
    let err =
        tcbpf::exec::agent::from_keeper(&k.sock, "agent.o", &["nope".into()], false).unwrap_err();
    assert_eq!(err.kind, tcbpf::ErrorKind::NotFound);
    assert!(err.message.contains("has no map 'nope'"), "{}", err.message);
}

#[test]
fn a_set_of_more_than_64_maps_arrives_whole_in_several_replies() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("kmany");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let maps: Vec<(tcbpf::sys::MapFd, u32)> = (0..150)
        .map(|i| counter_hash(&format!("kn{}", next_id()), 1, i))
        .collect();
    let mut words: Vec<String> = vec![
        "map".into(),
        "export".into(),
        k.import.display().to_string(),
    ];
    // `id MAP_ID id N`: the kernel's map MAP_ID, exported as entry id N.
    for (n, (_, id)) in maps.iter().enumerate() {
        words.extend(["id".into(), id.to_string(), "id".into(), n.to_string()]);
    }
    words.extend(["obj".to_string(), "many.o".to_string()]);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    ok(tcbpf_cmd(&refs));
    k.wait_for_set("many.o");
    drop(maps);
    for ro in [false, true] {
        let mut words = vec!["exec", "bpf", "import", "keeper", k.sock.to_str().unwrap()];
        if ro {
            words.push("ro");
        }
        words.extend(["run", "env"]);
        let env = env_vars(&ok(tcbpf_cmd(&words)));
        assert_eq!(env["BPF_NUM_MAPS"], "150");
        assert!(env.contains_key("BPF_MAP0") && env.contains_key("BPF_MAP149"));
    }
    // The last map holds the value it was given.
    let got = tcbpf::exec::agent::from_keeper(&k.sock, "many.o", &[], true).unwrap();
    let last = &got.received.maps[149];
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(&last.fd, &1u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 149);
}

#[test]
fn map_watch_reads_a_map_through_a_keeper_reference() {
    // `map watch` runs tcbpf-exporter, which takes the same
    // `keeper SOCK [SET/]MAP` reference as the map helper.
    let fs = Bpffs::new();
    let dir = TempDir::new("kwatch");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let name = format!("kw{}", next_id());
    let (m, id) = counter_hash(&name, 3, 4321);
    k.export_map(id, "watch.o");
    drop(m);
    let map = format!("watch.o/{name}");
    let out = ok(tcbpf_cmd(&[
        "-j",
        "map",
        "watch",
        "keeper",
        k.sock.to_str().unwrap(),
        &map,
        "key",
        "u32",
        "value",
        "u64",
        "count",
        "1",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let row = &v["maps"][0]["rows"][0];
    assert_eq!(row["key"]["key"], 3, "{out}");
    assert_eq!(row["values"]["value"], 4321, "{out}");
    let (code, err) = fails(tcbpf_cmd(&[
        "map",
        "watch",
        "keeper",
        k.sock.to_str().unwrap(),
        "watch.o/nope",
        "count",
        "1",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("has no map 'nope'"), "{err}");
}

//! `tcbpf sync put | del | get | list` against a real etcd: the layout
//! (`PREFIX/maps/NAME/KEY`, keys escaped), canonical keys, exit codes.

use crate::support;

use support::etcd::Etcd;
use support::{sync_fails, sync_ok};

#[test]
fn put_get_list_del_use_the_documented_layout() {
    let e = Etcd::start();
    let ep = e.endpoints();
    let base = ["put", &ep, "prefix", "/t1/"];
    sync_ok(&[&base[..], &["map", "blocked", "key", "53", "value", "1"]].concat());
    sync_ok(
        &[
            &base[..],
            &[
                "map",
                "blocked",
                "key",
                "{ \"ip\": \"10.0.0.1/8\" }",
                "value",
                "{\"n\": 2}",
            ],
        ]
        .concat(),
    );

    // The keys as etcd holds them: compact JSON, '/' and ' ' escaped.
    let keys = e.ctl(&["get", "/t1/", "--prefix", "--keys-only"]);
    let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        keys,
        [
            "/t1/maps/blocked/53",
            "/t1/maps/blocked/{\"ip\":\"10.0.0.1%2F8\"}"
        ]
    );
    assert_eq!(
        e.ctl(&["get", "/t1/maps/blocked/53", "--print-value-only"])
            .trim(),
        "1"
    );

    // get takes the key as typed, in any spacing.
    let v = sync_ok(&[
        "get",
        &ep,
        "prefix",
        "/t1",
        "map",
        "blocked",
        "key",
        "{\"ip\":  \"10.0.0.1/8\"}",
    ]);
    assert_eq!(v.trim(), "{\"n\":2}");
    let v = sync_ok(&[
        "-j", "get", &ep, "prefix", "/t1", "map", "blocked", "key", "53",
    ]);
    assert_eq!(v.trim(), "{\"key\":53,\"value\":1}");

    let list = sync_ok(&["list", &ep, "prefix", "/t1"]);
    assert_eq!(
        list,
        "blocked key 53 value 1\nblocked key {\"ip\":\"10.0.0.1/8\"} value {\"n\":2}\n"
    );
    let list: serde_json::Value = serde_json::from_str(&sync_ok(&[
        "-j", "list", &ep, "prefix", "/t1", "map", "blocked",
    ]))
    .unwrap();
    assert_eq!(list[1]["key"]["ip"], "10.0.0.1/8");
    assert_eq!(list[1]["value"]["n"], 2);

    sync_ok(&["del", &ep, "prefix", "/t1", "map", "blocked", "key", "53"]);
    let err = sync_fails(
        1,
        &["get", &ep, "prefix", "/t1", "map", "blocked", "key", "53"],
    );
    assert!(
        err.contains("map blocked key 53: no such entry under /t1"),
        "{err}"
    );
    let err = sync_fails(
        1,
        &["del", &ep, "prefix", "/t1", "map", "blocked", "key", "53"],
    );
    assert!(err.contains("no such entry"), "{err}");
}

#[test]
fn put_from_writes_json_lines_in_transactions_and_nothing_on_a_bad_line() {
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = tcbpf_testkit::TempDir::new("syncfrom");
    let lines: String = (0..300)
        .map(|i| format!("{{\"key\":{i},\"value\":{}}}\n", i * 2))
        .collect();
    std::fs::write(dir.join("good"), &lines).unwrap();
    std::fs::write(dir.join("bad"), format!("{lines}{{\"key\":1}}\n")).unwrap();

    let err = sync_fails(
        2,
        &[
            "put",
            &ep,
            "prefix",
            "/t2",
            "map",
            "m",
            "from",
            tcbpf_testkit::s(&dir.join("bad")),
        ],
    );
    assert!(
        err.contains("line 301: expected {\"key\":…,\"value\":…}"),
        "{err}"
    );
    assert_eq!(
        e.ctl(&["get", "/t2/", "--prefix", "--keys-only"]).trim(),
        ""
    );

    let out = sync_ok(&[
        "put",
        &ep,
        "prefix",
        "/t2",
        "map",
        "m",
        "from",
        tcbpf_testkit::s(&dir.join("good")),
    ]);
    assert!(out.starts_with("300 entries written, revision "), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&sync_ok(&["-j", "list", &ep, "prefix", "/t2"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 300);
    // 300 entries in 128-op transactions: 3 revisions.
    let revs: std::collections::BTreeSet<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revs.len(), 3);
}

#[test]
fn bad_input_and_unreachable_etcd_exit_with_their_codes() {
    let err = sync_fails(
        2,
        &[
            "put",
            "127.0.0.1:1",
            "prefix",
            "/t",
            "map",
            "m",
            "key",
            "{",
            "value",
            "1",
        ],
    );
    assert!(err.contains("key '{' is not JSON"), "{err}");
    let err = sync_fails(
        2,
        &[
            "put",
            "127.0.0.1:1",
            "prefix",
            "/t",
            "map",
            "a/b",
            "key",
            "1",
            "value",
            "1",
        ],
    );
    assert!(err.contains("map name 'a/b'"), "{err}");
    let err = sync_fails(
        2,
        &["list", "127.0.0.1:1", "user", "root:pw", "prefix", "/t"],
    );
    assert!(err.contains("never taken from the command line"), "{err}");
    let port = support::etcd::free_port().to_string();
    // Unreachable: retried (as through an election) until 'timeout', then exit 4.
    let t0 = std::time::Instant::now();
    let err = sync_fails(
        4,
        &[
            "list",
            &format!("127.0.0.1:{port}"),
            "timeout",
            "1",
            "prefix",
            "/t",
        ],
    );
    assert!(err.contains("read /t/maps/"), "{err}");
    let took = t0.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(500) && took < std::time::Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn a_closed_output_pipe_ends_quietly_with_status_0() {
    // The reader (head -c0) is gone before the command writes.
    let script = format!(
        "exec 3>&1; {{ sleep 0.3; exec {} help 2>&3; }} | head -c0; echo status=${{PIPESTATUS[0]}}",
        support::BIN
    );
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.ends_with("status=0\n"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn status_counts_pending_entries_past_grpcs_4_mib_default() {
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = tcbpf_testkit::TempDir::new("syncbig");
    // 20,000 keys of ~230 bytes: more than 4 MiB of keys for one range.
    let map = "m".repeat(200);
    let lines: String = (0..20_000)
        .map(|i| format!("{{\"key\":{i},\"value\":1}}\n"))
        .collect();
    std::fs::write(dir.join("big"), lines).unwrap();
    sync_ok(&[
        "put",
        &ep,
        "prefix",
        "/t/big",
        "map",
        &map,
        "from",
        tcbpf_testkit::s(&dir.join("big")),
    ]);
    // A node that applied nothing yet.
    e.ctl(&[
        "put",
        "/t/big/nodes/n0",
        r#"{"node":"n0","state":"starting","revision":0,"maps":{}}"#,
    ]);
    let st: serde_json::Value =
        serde_json::from_str(&sync_ok(&["-j", "status", &ep, "prefix", "/t/big"])).unwrap();
    assert_eq!(st["nodes"][0]["node"], "n0", "{st}");
    assert_eq!(st["nodes"][0]["pending"], 20_000, "{st}");
}

/// Waits (bounded) until `map` holds `n` entries.
fn until_entries(map: &tcbpf::sys::MapFd, n: usize, what: &str) {
    let t0 = std::time::Instant::now();
    while tcbpf::maps::read_all(map).unwrap().len() != n {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{what}: the follower did not fill the map"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_follower_takes_every_map_form_of_the_map_helper_with_the_same_exit_codes() {
    tcbpf_testkit::require_root!();
    use support::host::SyncProc;
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = tcbpf_testkit::TempDir::new("syncforms");
    let by_hex = tcbpf_testkit::hash_map(&tcbpf_testkit::unique("sh"), 2, 1, 4);
    let by_name_kernel = tcbpf_testkit::unique("sn");
    let by_name = tcbpf_testkit::hash_map(&by_name_kernel, 2, 1, 4);
    let hex = format!("{:#x}", tcbpf::sys::info::map_info(&by_hex).unwrap().id);
    for (map, port) in [("a", "7"), ("b", "8"), ("b", "9")] {
        sync_ok(&[
            "put", &ep, "prefix", "/t/forms", "map", map, "key", port, "value", "1",
        ]);
    }
    let _f = SyncProc::start(
        &[
            "etcd",
            &ep,
            "prefix",
            "/t/forms",
            "id",
            &hex,
            "as",
            "a",
            "name",
            &by_name_kernel,
            "as",
            "b",
            "node",
            "forms",
        ],
        dir.join("f.log"),
    );
    until_entries(&by_hex, 1, "id in hex");
    until_entries(&by_name, 2, "name");

    // Failures to open are those of 'tcbpf map': not there is 1, for a
    // map id and for a keeper nobody listens on any more.
    let follow = |map: &[&str]| -> String {
        sync_fails(
            1,
            &[&["etcd", "127.0.0.1:1", "prefix", "/t/forms"][..], map].concat(),
        )
    };
    let err = follow(&["id", "0x7ffffff0"]);
    assert!(err.contains("id 2147483632"), "{err}");
    let stale = dir.join("keeper.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = follow(&["keeper", tcbpf_testkit::s(&stale), "set/m", "as", "m"]);
    assert!(err.contains("no keeper is listening"), "{err}");
}

/// `get` and `list` started while etcd is down (as in an election or a
/// restart) retry and answer once it is back within `timeout`.
#[test]
fn get_and_list_retry_until_etcd_is_back_within_the_timeout() {
    let mut e = Etcd::start();
    let ep = e.endpoints();
    sync_ok(&[
        "put", &ep, "prefix", "/t9", "map", "m", "key", "1", "value", "7",
    ]);
    e.members[0].kill();
    let spawn = |args: &[&str]| {
        std::process::Command::new(support::BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let get = spawn(&[
        "get", &ep, "timeout", "30", "prefix", "/t9", "map", "m", "key", "1",
    ]);
    let list = spawn(&["list", &ep, "timeout", "30", "prefix", "/t9"]);
    // Both have met the dead endpoint at least once by now.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    e.members[0].start();
    for (child, want) in [(get, "7\n"), (list, "m key 1 value 7\n")] {
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{err}");
    }
}

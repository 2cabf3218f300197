//! Every `-j` output of `tcbpf-sync` against its schema in docs/json.md
//! (validated with Python's jsonschema, `tcbpf_testkit::schema_failures`),
//! from real runs against a real etcd and a real follower: put, put from,
//! get, list, del, commit (published and staged), rollout, rollback and
//! status with the follower's report in it.

use crate::support;

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::etcd::Etcd;
use support::{sync_ok, BIN};
use tcbpf::load::load_file;
use tcbpf_testkit::{fixture, s, schema_failures, Bpffs, TempDir};

/// A follower process, killed on drop.
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The follower's report of map `blocked` once it holds generation `g`.
fn status_once_in_force(ep: &str, p: &str, g: u64) -> String {
    let t0 = Instant::now();
    loop {
        let out = sync_ok(&["-j", "status", ep, "prefix", p]);
        let st: Value = serde_json::from_str(&out).unwrap();
        if st["nodes"][0]["maps"]["blocked"]["generation"]["in_force"] == g {
            return out;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {st:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_sync_json_output_matches_its_schema_in_docs_json_md() {
    tcbpf_testkit::require_root!();
    let e = Etcd::start();
    let ep = e.endpoints();
    let dir = TempDir::new("sync-json");
    let p = "/t/json";
    let mut outputs: Vec<(&str, String)> = Vec::new();

    // Plain keys and values.
    let kv = ["prefix", p, "map", "kv"];
    let put = |extra: &[&str]| sync_ok(&[&["-j", "put", &ep][..], &kv, extra].concat());
    outputs.push(("sync write", put(&["key", "53", "value", "1"])));
    outputs.push((
        "sync write",
        put(&["key", "{\"ip\": \"10.0.0.1\"}", "value", "{\"n\": 2}"]),
    ));
    let lines = dir.join("kv.json");
    std::fs::write(&lines, "{\"key\":7,\"value\":1}\n{\"key\":8,\"value\":2}\n").unwrap();
    outputs.push(("sync write", put(&["from", s(&lines)])));
    outputs.push((
        "sync get",
        sync_ok(&[&["-j", "get", &ep][..], &kv, &["key", "53"]].concat()),
    ));
    outputs.push((
        "sync get",
        sync_ok(&["-j", "list", &ep, "prefix", p, "map", "kv"]),
    ));
    outputs.push(("sync get", sync_ok(&["-j", "list", &ep, "prefix", p])));
    outputs.push((
        "sync write",
        sync_ok(&[&["-j", "del", &ep][..], &kv, &["key", "8"]].concat()),
    ));

    // A follower of map `blocked`, and generations of it.
    let fs = Bpffs::new();
    let obj = load_file(&fixture("sync_block.o"), &fs.options()).unwrap();
    let pin = fs.join("tc/globals/sync_blocked");
    let log = std::fs::File::create(dir.join("n1.log")).unwrap();
    let _follower = Follower(
        Command::new(BIN)
            .args(["etcd", &ep, "prefix", p, "pinned", s(&pin), "as", "blocked"])
            .args(["node", "n1", "status-ttl", "3"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let blocked = ["prefix", p, "map", "blocked"];
    for (g, ports) in [("1", "7001"), ("2", "7002")] {
        let file = dir.join(format!("gen{g}.json"));
        std::fs::write(&file, format!("{{\"key\":{ports},\"value\":1}}\n")).unwrap();
        let stage: &[&str] = if g == "2" { &["stage"] } else { &[] };
        let args = [
            &["-j", "commit", &ep][..],
            &blocked,
            &["from", s(&file)],
            stage,
        ]
        .concat();
        outputs.push(("sync commit", sync_ok(&args)));
        if g == "1" {
            outputs.push(("sync status", status_once_in_force(&ep, p, 1)));
        }
    }
    outputs.push((
        "sync rollout",
        sync_ok(
            &[
                &["-j", "rollout", &ep][..],
                &blocked,
                &["gen", "2", "wait", "20"],
            ]
            .concat(),
        ),
    ));
    outputs.push(("sync status", status_once_in_force(&ep, p, 2)));
    outputs.push((
        "sync commit",
        sync_ok(&[&["-j", "rollback", &ep][..], &blocked].concat()),
    ));
    outputs.push(("sync status", status_once_in_force(&ep, p, 1)));
    drop(obj);

    let failures = schema_failures(&dir.join(""), &outputs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

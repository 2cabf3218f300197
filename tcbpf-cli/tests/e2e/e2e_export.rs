//! The full loop of the exec proxy, end to end: `tcbpf filter add … bpf obj
//! FILE … export UDS` hands the object's maps to an importer (`tcbpf exec
//! bpf import UDS run sh -c SCRIPT`, or the real `tc exec bpf import`) whose
//! script fills `blocked_ports` with `tcbpf map update env …`; real UDP
//! across a veth pair between two namespaces then shows the new verdict,
//! counted exactly by a UDP socket on the far side and by the `stats` map.

use crate::e2e_support;

use e2e_support::*;
use std::path::Path;
use std::time::Duration;

/// The blocked and the open destination ports, and how many datagrams go
/// to each.
const BLOCKED: u16 = 7001;
const OPEN: u16 = 7002;
const TO_BLOCKED: usize = 20;
const TO_OPEN: usize = 30;

/// One test's world: two namespaces joined by veth (v0 in `a`, v1 in `b`,
/// the classifier on v1's ingress), its own bpffs and private directory.
struct World {
    net: VethPair,
    fs: Bpffs,
    dir: TempDir,
}

impl World {
    fn new() -> World {
        World {
            net: VethPair::new(),
            fs: Bpffs::new(),
            dir: TempDir::new("e2e"),
        }
    }

    fn uds(&self) -> std::path::PathBuf {
        self.dir.join("maps.sock")
    }

    /// `tcbpf -n B filter add dev v1 ingress bpf da obj OBJ sec classifier
    /// export UDS`, run from `cwd` (so OBJ may be relative).
    fn attach_and_export(&self, obj: &str, cwd: &Path) {
        let mut cmd = tcbpf(
            &format!(
                "-n {} filter add dev v1 ingress bpf da obj {obj} sec classifier export {}",
                self.net.b.name,
                self.uds().display()
            ),
            &self.fs.path,
        );
        cmd.current_dir(cwd);
        ok(cmd);
    }

    /// Waits for the importer's script to have filled the map, sends the
    /// traffic, and returns how many datagrams arrived (blocked, open).
    fn traffic(&self) -> (usize, usize) {
        assert!(
            wait_for(&self.dir.join("ready"), Duration::from_secs(10)),
            "the importer's script never became ready"
        );
        let blocked = self.net.send_udp(BLOCKED, TO_BLOCKED);
        let open = self.net.send_udp(OPEN, TO_OPEN);
        std::fs::write(self.dir.join("done"), b"").unwrap();
        (blocked, open)
    }

    /// The pinned `stats` map (PIN_GLOBAL_NS / pinned by name): passed, dropped.
    fn pinned_stats(&self) -> (u64, u64) {
        let pin = self.fs.join("tc/globals/stats");
        (pinned_u64(&pin, 0), pinned_u64(&pin, 1))
    }
}

/// The importer's script with tcbpf's import: record the environment, block
/// BLOCKED through `map update env NAME`, hold the maps until the traffic is
/// through, then read `stats` through `map lookup env ID`.
fn tcbpf_script(w: &World, stats_ref: &str) -> String {
    format!(
        "env > {env}; \
         \"$TCBPF\" map update env BLOCKED_PORTS key be16 {BLOCKED} value u32 1 || exit 9; \
         {hold}; \
         \"$TCBPF\" map lookup env {stats_ref} key u32 0 value u64 && \
         \"$TCBPF\" map lookup env {stats_ref} key u32 1 value u64",
        env = w.dir.join("env").display(),
        hold = hold_until_done(&w.dir.0),
    )
}

fn tcbpf_importer(w: &World, script: &str) -> Importer {
    let mut cmd = tcbpf("exec bpf import", &w.fs.path);
    cmd.arg(w.uds())
        .args(["run", "sh", "-c", script])
        .env("TCBPF", TCBPF);
    Importer::start(cmd, &w.uds())
}

/// Checks the importer's end: exit 0 and the two typed lookups of `stats`.
fn assert_script_read_stats(out: std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "importer script failed ({:?}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("key: 0  value: {TO_OPEN}\nkey: 1  value: {TO_BLOCKED}"),
        "the script's view of stats"
    );
}

#[test]
fn legacy_object_exports_to_tcbpf_import_whose_script_blocks_a_port() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let mut importer = tcbpf_importer(&w, &tcbpf_script(&w, "3"));
    // A relative object path from the repository root, with -n: the
    // namespace switch must not change how the file is found.
    w.attach_and_export("bpf/verdict_legacy.o", &repo());
    let (blocked, open) = w.traffic();
    assert_eq!((blocked, open), (0, TO_OPEN), "datagrams received");
    assert_script_read_stats(importer.finish());
    assert_eq!(
        w.pinned_stats(),
        (TO_OPEN as u64, TO_BLOCKED as u64),
        "stats (passed, dropped) read through the pin"
    );

    // The environment contract: the legacy ids from the object (7 and 3),
    // and the names tcbpf adds.
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "BPF_MAP3",
            "BPF_MAP7",
            "BPF_MAP_BLOCKED_PORTS",
            "BPF_MAP_STATS",
            "BPF_NUM_MAPS"
        ]
    );
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert_eq!(env["BPF_MAP7"], env["BPF_MAP_BLOCKED_PORTS"]);
    assert_eq!(env["BPF_MAP3"], env["BPF_MAP_STATS"]);
    assert_ne!(env["BPF_MAP3"], env["BPF_MAP7"]);

    let shown = tc(&w.net.b, "filter show dev v1 ingress");
    assert!(
        shown.contains("verdict_legacy.o:[classifier] direct-action"),
        "{shown}"
    );
}

#[test]
fn btf_object_exports_too_and_its_script_blocks_a_port() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let mut importer = tcbpf_importer(&w, &tcbpf_script(&w, "STATS"));
    w.attach_and_export(&object("verdict_btf.o"), Path::new("/"));
    let (blocked, open) = w.traffic();
    assert_eq!((blocked, open), (0, TO_OPEN), "datagrams received");
    assert_script_read_stats(importer.finish());
    assert_eq!(w.pinned_stats(), (TO_OPEN as u64, TO_BLOCKED as u64));

    // BTF maps carry no ids: they get the lowest free ones in object order.
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert_eq!(env["BPF_MAP0"], env["BPF_MAP_BLOCKED_PORTS"]);
    assert_eq!(env["BPF_MAP1"], env["BPF_MAP_STATS"]);
}

#[test]
fn real_tc_imports_the_export_and_its_script_uses_tcbpf_map_env_ids() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    // tc sets only BPF_NUM_MAPS and BPF_MAP<id>: the script uses the ids.
    let script = format!(
        "env > {env}; \
         \"$TCBPF\" map update env 7 key be16 {BLOCKED} value u32 1 || exit 9; \
         {hold}; \
         \"$TCBPF\" map dump env 3 key u32 value u64",
        env = w.dir.join("env").display(),
        hold = hold_until_done(&w.dir.0),
    );
    let mut cmd = std::process::Command::new("tc");
    cmd.args(["exec", "bpf", "import"])
        .arg(w.uds())
        .args(["run", "sh", "-c", &script])
        .env("TCBPF", TCBPF)
        .env("TC_BPF_MNT", &w.fs.path);
    let mut importer = Importer::start(cmd, &w.uds());
    w.attach_and_export(&object("verdict_legacy.o"), Path::new("/"));
    let (blocked, open) = w.traffic();
    assert_eq!((blocked, open), (0, TO_OPEN), "datagrams received");

    let out = importer.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tc's script failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("key: 0  value: {TO_OPEN}\nkey: 1  value: {TO_BLOCKED}")
    );
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert!(env.contains_key("BPF_MAP7") && env.contains_key("BPF_MAP3"));
    assert_eq!(w.pinned_stats(), (TO_OPEN as u64, TO_BLOCKED as u64));
}

/// `trace[n]` of the tail-call fixture.
fn trace(m: &tcbpf::sys::MapFd, n: u32) -> u64 {
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(m, &n.to_ne_bytes(), &mut v, 0).expect("lookup trace");
    u64::from_ne_bytes(v)
}

/// True while slot `key` of the program array with kernel id `id` holds a
/// program. The descriptor is closed again at once: holding it would keep
/// the array populated.
fn slot_filled(id: u32, key: u32) -> bool {
    let m = tcbpf::sys::obj::map_by_id(id, 0).expect("open jmp_table by id");
    let mut v = [0u8; 4];
    tcbpf::sys::map::lookup(&m, &key.to_ne_bytes(), &mut v, 0).is_ok()
}

#[test]
fn exported_tail_call_array_works_while_the_importer_holds_it_and_empties_after() {
    tcbpf_testkit::require_root!();
    // bpf/tailcall.c: IPv4 packets go classifier -> slot 2 ("loop", which
    // re-enters its slot until it ran 4 times); trace[3] counts its runs.
    // jmp_table is neither pinned nor held by the filter: only the importer.
    let w = World::new();
    // ARP (first byte after the Ethernet header 0) takes the path that
    // drops: a static neighbour lets the UDP out of `a` all the same.
    let link = w.net.b.ip(&["link", "show", "v1"]);
    let mac = link
        .split_whitespace()
        .skip_while(|x| *x != "link/ether")
        .nth(1)
        .expect("v1's MAC");
    w.net
        .a
        .ip(&["neigh", "replace", ADDR_B, "lladdr", mac, "dev", "v0"]);
    let script = hold_until_done(&w.dir.0);
    let mut importer = tcbpf_importer(&w, &script);
    let mut add = tcbpf(
        &format!(
            "-n {} filter add dev v1 ingress bpf da obj {} sec classifier export {}",
            w.net.b.name,
            object("tailcall.o"),
            w.uds().display()
        ),
        &w.fs.path,
    );
    let out = add.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning"),
        "exported: no warning: {stderr}"
    );
    assert!(wait_for(&w.dir.join("ready"), Duration::from_secs(10)));

    let prog_id = prog_id_in(&tc(&w.net.b, "filter show dev v1 ingress"));
    let traces = map_of_prog(prog_id, "trace");
    let jmp_id = {
        let jmp = map_of_prog(prog_id, "jmp_table");
        tcbpf::sys::info::map_info(&jmp).unwrap().id
    };
    let before = trace(&traces, 3);
    w.net.send_udp(7501, 10);
    assert!(
        trace(&traces, 3) - before >= 40,
        "the tail calls ran: {} runs for 10 datagrams",
        trace(&traces, 3) - before
    );

    // The importer ends: the kernel empties the array (asynchronously).
    std::fs::write(w.dir.join("done"), b"").unwrap();
    assert!(importer.finish().status.success());
    let emptied = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !slot_filled(jmp_id, 2)
    });
    assert!(
        emptied,
        "jmp_table still populated after its last holder left"
    );
    let (entry, looped) = (trace(&traces, 0), trace(&traces, 3));
    w.net.send_udp(7501, 10);
    assert!(trace(&traces, 0) - entry >= 10, "the classifier still runs");
    assert_eq!(trace(&traces, 3), looped, "no tail call without a holder");

    // Without export (nor pin), filter add says so.
    let out = tcbpf(
        &format!(
            "-n {} filter add dev v0 ingress bpf da obj {} sec classifier",
            w.net.a.name,
            object("tailcall.o")
        ),
        &w.fs.path,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: program array 'jmp_table' is neither pinned nor exported"),
        "{stderr}"
    );
}

#[test]
fn real_tc_imports_a_btf_object_export_too() {
    tcbpf_testkit::require_root!();
    // The distro tc exports nothing for BTF objects; as an importer it takes
    // what tcbpf sends for them (ids 0 and 1 in object order).
    let w = World::new();
    let script = format!(
        "env > {env}; \
         \"$TCBPF\" map update env 0 key be16 {BLOCKED} value u32 1 || exit 9; \
         {hold}; \
         \"$TCBPF\" map dump env 1 key u32 value u64",
        env = w.dir.join("env").display(),
        hold = hold_until_done(&w.dir.0),
    );
    let mut cmd = std::process::Command::new("tc");
    cmd.args(["exec", "bpf", "import"])
        .arg(w.uds())
        .args(["run", "sh", "-c", &script])
        .env("TCBPF", TCBPF);
    let mut importer = Importer::start(cmd, &w.uds());
    w.attach_and_export(&object("verdict_btf.o"), Path::new("/"));
    assert_eq!(w.traffic(), (0, TO_OPEN), "datagrams received");
    let out = importer.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.trim(),
        format!("key: 0  value: {TO_OPEN}\nkey: 1  value: {TO_BLOCKED}")
    );
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
}

#[test]
fn export_describes_the_object_as_tc_does_name_inode_and_legacy_ids() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let mut cmd = std::process::Command::new(TCBPF);
    cmd.args(["-j", "exec", "bpf", "import"]).arg(w.uds());
    let mut importer = Importer::start(cmd, &w.uds());
    // Relative, as an operator types it: tc sends the name as given.
    w.attach_and_export("bpf/verdict_legacy.o", &repo());
    let out = importer.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    use std::os::unix::fs::MetadataExt;
    let st = std::fs::metadata(fixture("verdict_legacy.o")).unwrap();
    assert_eq!(got["object"]["name"], "bpf/verdict_legacy.o");
    assert_eq!(got["object"]["dev"], st.dev());
    assert_eq!(got["object"]["ino"], st.ino());
    let ids: Vec<(String, u64)> = got["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["id"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("blocked_ports".to_string(), 7), ("stats".to_string(), 3)],
        "legacy ids travel in the entries, in object order"
    );
}

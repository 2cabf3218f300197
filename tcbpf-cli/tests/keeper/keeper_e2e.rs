//! The keeper end to end with real traffic: objects exported into a keeper
//! by `tcbpf filter add … export` (the exporter then exits), clients that
//! get the maps with `exec bpf import keeper … run` or a `keeper` MAP
//! reference, tail calls that keep working while only the keeper holds the
//! program array, and `keeper send` into the real `tc exec bpf import`.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use std::path::Path;
use std::time::Duration;

const BLOCKED: u16 = 7101;
const OPEN: u16 = 7102;

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
            dir: TempDir::new("keeper"),
        }
    }

    fn keeper(&self) -> KeeperProc {
        KeeperProc::start(&self.dir.join("k"), &[], &self.fs.path)
    }

    /// `tcbpf -n NS filter add dev DEV ingress bpf da obj OBJ export UDS`;
    /// the command exits when it returns.
    fn attach_and_export(&self, ns: &Netns, dev: &str, obj: &str, uds: &Path) {
        ok(tcbpf(
            &format!(
                "-n {} filter add dev {dev} ingress bpf da obj {} sec classifier export {}",
                ns.name,
                object(obj),
                uds.display()
            ),
            &self.fs.path,
        ));
    }
}

#[test]
fn legacy_and_btf_sets_from_filter_add_serve_exec_import_keeper_after_the_exporters_exited() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let mut k = w.keeper();
    w.attach_and_export(&w.net.b, "v1", "verdict_legacy.o", &k.import);
    w.attach_and_export(&w.net.a, "v0", "verdict_btf.o", &k.import);
    k.wait_for_set("verdict_legacy.o");
    k.wait_for_set("verdict_btf.o");

    // The client blocks a port and exits: the keeper still holds the map.
    let env_file = w.dir.join("env");
    let script = format!(
        "env > {}; \"$TCBPF\" map update env BLOCKED_PORTS key be16 {BLOCKED} value u32 1",
        env_file.display()
    );
    let k_sock = k.sock.to_str().unwrap().to_string();
    ok(tcbpf_cmd(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        &k_sock,
        "set",
        "verdict_legacy.o",
        "run",
        "sh",
        "-c",
        &script,
    ]));
    let env = env_vars(&std::fs::read_to_string(&env_file).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert_eq!(env["BPF_MAP7"], env["BPF_MAP_BLOCKED_PORTS"]);
    assert_eq!(env["BPF_MAP3"], env["BPF_MAP_STATS"]);

    assert_eq!(w.net.send_udp(BLOCKED, 20), 0, "blocked port");
    assert_eq!(w.net.send_udp(OPEN, 30), 30, "open port");
    let dropped = ok(tcbpf_cmd(&[
        "map",
        "lookup",
        "keeper",
        &k_sock,
        "verdict_legacy.o/stats",
        "key",
        "u32",
        "1",
        "value",
        "u64",
    ]));
    assert_eq!(dropped.trim(), "key: 1  value: 20");

    // The BTF object's maps take ids 0 and 1 in object order.
    let env = env_vars(&ok(tcbpf_cmd(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        &k_sock,
        "set",
        "verdict_btf.o",
        "run",
        "env",
    ])));
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert_eq!(env["BPF_MAP0"], env["BPF_MAP_BLOCKED_PORTS"]);
    assert_eq!(env["BPF_MAP1"], env["BPF_MAP_STATS"]);

    // Only the maps asked for, and a map name two sets hold is ambiguous.
    let env = env_vars(&ok(tcbpf_cmd(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        &k_sock,
        "set",
        "verdict_legacy.o",
        "map",
        "stats",
        "run",
        "env",
    ])));
    assert_eq!(env["BPF_NUM_MAPS"], "1");
    assert!(env.contains_key("BPF_MAP3") && !env.contains_key("BPF_MAP7"));
    let (code, err) = fails(tcbpf_cmd(&[
        "map", "lookup", "keeper", &k_sock, "stats", "key", "u32", "1",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("several sets match"), "{err}");
    let (code, err) = fails(tcbpf_cmd(&[
        "exec", "bpf", "import", "keeper", &k_sock, "set", "nope.o", "run", "true",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no set 'nope.o'"), "{err}");

    let out = k.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!k.sock.exists() && !k.import.exists(), "sockets unlinked");
}

/// `trace[n]` of the tail-call fixture.
fn trace(m: &tcbpf::sys::MapFd, n: u32) -> u64 {
    let mut v = [0u8; 8];
    tcbpf::sys::map::lookup(m, &n.to_ne_bytes(), &mut v, 0).expect("lookup trace");
    u64::from_ne_bytes(v)
}

#[test]
fn tail_calls_keep_changing_real_traffic_while_only_the_keeper_holds_the_program_array() {
    tcbpf_testkit::require_root!();
    // bpf/tailcall.c: IPv4 goes classifier -> slot 2 ("loop", 4 runs);
    // trace[3] counts the loop's runs. Nothing is pinned; the exporting
    // `filter add` exits at once: only the keeper holds jmp_table.
    let w = World::new();
    let link = w.net.b.ip(&["link", "show", "v1"]);
    let mac = link
        .split_whitespace()
        .skip_while(|x| *x != "link/ether")
        .nth(1)
        .expect("v1's MAC");
    w.net
        .a
        .ip(&["neigh", "replace", ADDR_B, "lladdr", mac, "dev", "v0"]);
    let mut k = w.keeper();
    w.attach_and_export(&w.net.b, "v1", "tailcall.o", &k.import);
    k.wait_for_set("tailcall.o");
    let prog_id = prog_id_in(&tc(&w.net.b, "filter show dev v1 ingress"));
    let traces = map_of_prog(prog_id, "trace");
    let jmp_id = tcbpf::sys::info::map_info(map_of_prog(prog_id, "jmp_table"))
        .unwrap()
        .id;
    // Let go of everything this test opened on jmp_table: only the keeper
    // may hold it.
    std::thread::sleep(Duration::from_millis(50));
    let before = trace(&traces, 3);
    w.net.send_udp(7501, 10);
    let ran = trace(&traces, 3) - before;
    assert!(ran >= 40, "tail calls ran {ran} times for 10 datagrams");

    // The keeper stops: the last holder is gone, the kernel empties the
    // array and the tail calls stop.
    let out = k.stop();
    assert!(out.status.success());
    let emptied = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let m = tcbpf::sys::obj::map_by_id(jmp_id, 0).unwrap();
        let mut v = [0u8; 4];
        tcbpf::sys::map::lookup(&m, &2u32.to_ne_bytes(), &mut v, 0).is_err()
    });
    assert!(emptied, "jmp_table still populated after the keeper left");
    let looped = trace(&traces, 3);
    w.net.send_udp(7501, 10);
    assert_eq!(trace(&traces, 3), looped, "no tail call without a holder");
}

#[test]
fn keeper_send_hands_a_set_to_the_real_tc_exec_bpf_import() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let k = w.keeper();
    w.attach_and_export(&w.net.b, "v1", "verdict_legacy.o", &k.import);
    k.wait_for_set("verdict_legacy.o");
    // tc's importer, long after the exporter is gone: it blocks the port
    // through the ids tc sets (7 and 3, from the object).
    let uds = w.dir.join("tc.sock");
    let script = format!(
        "\"$TCBPF\" map update env 7 key be16 {BLOCKED} value u32 1 || exit 9; \
         \"$TCBPF\" map lookup env 3 key u32 1 value u64; echo num=$BPF_NUM_MAPS"
    );
    let mut cmd = std::process::Command::new("tc");
    cmd.args(["exec", "bpf", "import"])
        .arg(&uds)
        .args(["run", "sh", "-c", &script])
        .env("TCBPF", TCBPF)
        .env("TC_BPF_MNT", &w.fs.path);
    let mut importer = Importer::start(cmd, &uds);
    ok(tcbpf_cmd(&[
        "keeper",
        "send",
        k.sock.to_str().unwrap(),
        uds.to_str().unwrap(),
        "set",
        "verdict_legacy.o",
    ]));
    let out = importer.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "key: 1  value: 0\nnum=2");
    assert_eq!(w.net.send_udp(BLOCKED, 10), 0, "tc's script blocked it");
    assert_eq!(w.net.send_udp(OPEN, 10), 10);
}

#[test]
fn restart_with_state_keeps_the_maps_and_the_tail_calls() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let link = w.net.b.ip(&["link", "show", "v1"]);
    let mac = link
        .split_whitespace()
        .skip_while(|x| *x != "link/ether")
        .nth(1)
        .expect("v1's MAC");
    w.net
        .a
        .ip(&["neigh", "replace", ADDR_B, "lladdr", mac, "dev", "v0"]);
    let state = w.fs.join("keeper-state");
    let sock = w.dir.join("k");
    let state_arg = state.to_str().unwrap().to_string();
    let mut k = KeeperProc::start(&sock, &["state", &state_arg], &w.fs.path);
    w.attach_and_export(&w.net.b, "v1", "tailcall.o", &k.import);
    k.wait_for_set("tailcall.o");
    let ids = |k: &KeeperProc| -> Vec<u32> {
        let l = tcbpf::keeper::Client::connect(&k.sock)
            .unwrap()
            .list()
            .unwrap();
        l.sets[0].maps.iter().map(|m| m.map_id).collect()
    };
    let before_ids = ids(&k);
    assert!(state.join("tailcall%2eo").is_dir(), "the set is pinned");
    let out = k.stop();
    assert!(out.status.success());

    // Restarted on the same state: the same kernel maps, and the tail
    // calls never stopped.
    let k = KeeperProc::start(&sock, &["state", &state_arg], &w.fs.path);
    k.wait_for_set("tailcall.o");
    assert_eq!(ids(&k), before_ids, "the same maps after the restart");
    let prog_id = prog_id_in(&tc(&w.net.b, "filter show dev v1 ingress"));
    let traces = map_of_prog(prog_id, "trace");
    let before = trace(&traces, 3);
    w.net.send_udp(7501, 10);
    let ran = trace(&traces, 3) - before;
    assert!(ran >= 40, "tail calls ran {ran} times after the restart");
    // A client gets the restored set with its entry ids.
    let env = env_vars(&ok(tcbpf_cmd(&[
        "exec",
        "bpf",
        "import",
        "keeper",
        k.sock.to_str().unwrap(),
        "run",
        "env",
    ])));
    assert_eq!(env["BPF_NUM_MAPS"], before_ids.len().to_string());
    assert!(env.contains_key("BPF_MAP_JMP_TABLE"), "{env:?}");

    // A second export of the same name replaces the set and its pins,
    // leaving no half-written directory.
    let (a, a_id) = counter_hash(&format!("kr{}", next_id()), 1, 1);
    let (b, b_id) = counter_hash(&format!("kr{}", next_id()), 1, 2);
    k.export_map(a_id, "other.o");
    k.export_map(b_id, "other.o");
    drop((a, b));
    let l = tcbpf::keeper::Client::connect(&k.sock)
        .unwrap()
        .list()
        .unwrap();
    let other = l.sets.iter().find(|s| s.name == "other.o").unwrap();
    assert_eq!(other.maps[0].map_id, b_id, "the later export replaced it");
    let mut entries: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, ["other%2eo", "tailcall%2eo"]);
    let mut set_dir: Vec<String> = std::fs::read_dir(state.join("other%2eo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    set_dir.sort();
    assert_eq!(
        set_dir,
        ["0000-0", "record"],
        "one pin and the set's record"
    );
}

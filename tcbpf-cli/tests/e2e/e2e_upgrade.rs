//! `filter upgrade` end to end: the classifier of `bpf/upgrade_*.c` on a
//! veth's egress, planned (text and `-j`, nothing changed), refused (exit
//! 2 naming the map and member, nothing changed) and upgraded with its
//! counts carried into the new value layout, checked with the real `tc`
//! and real UDP traffic. The usage text is the README's.

use crate::e2e_support;
use crate::keeper_support;

use e2e_support::*;
use keeper_support::*;
use serde_json::Value;

fn filter_prog(net: &VethPair) -> u32 {
    prog_id_in(&tc(&net.a, "filter show dev v0 egress"))
}

/// The `packets` of key 17 (UDP) in the map pinned at `pin`.
fn udp_packets(pin: &std::path::Path) -> u64 {
    let m = tcbpf::sys::obj::get_pinned_map(pin, tcbpf::sys::obj::open::RDONLY).unwrap();
    let size = tcbpf::sys::info::map_info(&m).unwrap().value_size as usize;
    let mut v = vec![0u8; size];
    tcbpf::sys::map::lookup(&m, &17u32.to_ne_bytes(), &mut v, 0).unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

#[test]
fn plan_refusal_and_upgrade_carry_the_counts_into_the_new_layout() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 egress pref 1 handle 1 bpf da obj {}",
            object("upgrade_v1.o")
        ),
        &fs.path,
    ));
    assert_eq!(net.send_udp(7400, 10), 10);
    assert_eq!(udp_packets(&pin), 10);
    let v1 = filter_prog(&net);
    let base = format!("-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj");

    // plan: text and JSON, nothing changes.
    let text = ok(tcbpf(
        &format!("{base} {} plan", object("upgrade_v2.o")),
        &fs.path,
    ));
    assert!(
        text.contains("  map counters: migrate (sum), ") && text.contains("; added drops"),
        "{text}"
    );
    assert!(text.contains("  map sizes: fresh (new map)"), "{text}");
    let json: Value = serde_json::from_str(&ok(tcbpf(
        &format!("-j {base} {} plan", object("upgrade_v2.o")),
        &fs.path,
    )))
    .unwrap();
    let counters = &json["maps"][0];
    assert_eq!(counters["name"], "counters");
    assert_eq!(counters["action"], "migrate");
    assert_eq!(counters["mode"], "sum");
    assert_eq!(counters["added"], serde_json::json!(["drops"]));
    assert_eq!(json["old_prog"]["id"], v1);
    assert_eq!(json["new_prog"], Value::Null);
    assert_eq!(filter_prog(&net), v1, "plan changes nothing");

    // A member turned into a struct: exit 2, naming map and member.
    let (code, err) = fails(tcbpf(
        &format!("{base} {}", object("upgrade_refused.o")),
        &fs.path,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("map 'counters'") && err.contains("member 'bytes'"),
        "{err}"
    );
    assert_eq!(filter_prog(&net), v1);
    // … unless the map starts fresh.
    let (code, err) = fails(tcbpf(
        &format!("{base} {} map nosuch fresh", object("upgrade_refused.o")),
        &fs.path,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("map 'nosuch' is not in"), "{err}");

    // The upgrade: the counts follow into {packets, bytes, drops}.
    let out = ok(tcbpf(
        &format!("{base} {}", object("upgrade_v2.o")),
        &fs.path,
    ));
    assert!(
        out.starts_with(&format!(
            "upgraded dev v0 egress pref 1 handle 0x1: program {v1} (upg_cls) -> upgrade_v2.o:[classifier]"
        )),
        "{out}"
    );
    let shown = tc(&net.a, "filter show dev v0 egress");
    assert!(shown.contains("upgrade_v2.o:[classifier]"), "{shown}");
    assert_ne!(filter_prog(&net), v1);
    assert_eq!(udp_packets(&pin), 10);
    assert_eq!(net.send_udp(7400, 5), 5);
    assert_eq!(udp_packets(&pin), 15);
    let info = tcbpf::sys::info::map_info(
        tcbpf::sys::obj::get_pinned_map(&pin, tcbpf::sys::obj::open::RDONLY).unwrap(),
    )
    .unwrap();
    assert_eq!(info.value_size, 24, "the pin names the new map");
}

#[test]
fn upgrade_usage_is_in_the_readme() {
    let (code, out, _) = run_bin(TCBPF, &["filter", "upgrade", "help"]);
    assert_eq!(code, 0);
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for line in out.lines().take(4) {
        let line = line.trim_start().trim_start_matches("Usage: ");
        assert!(readme.contains(line), "README lacks: {line}");
    }
}

/// The map ids the program at the hook uses.
fn map_ids_of(prog: u32) -> Vec<u32> {
    let fd = tcbpf::sys::obj::prog_by_id(prog).unwrap();
    tcbpf::sys::info::prog_info(&fd).unwrap().map_ids
}

fn pinned_id(pin: &std::path::Path) -> u32 {
    let m = tcbpf::sys::obj::get_pinned_map(pin, tcbpf::sys::obj::open::RDONLY).unwrap();
    tcbpf::sys::info::map_info(&m).unwrap().id
}

#[test]
fn sigkill_at_20_points_then_rerun_converges() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let pin = fs.join("tc/globals/counters");
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 egress pref 1 handle 1 bpf da obj {}",
            object("upgrade_v1.o")
        ),
        &fs.path,
    ));
    let base = format!("-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj");
    // How long one whole upgrade takes, process start included.
    let started = std::time::Instant::now();
    ok(tcbpf(
        &format!("{base} {}", object("upgrade_v2.o")),
        &fs.path,
    ));
    let whole = started.elapsed();
    let mut sent = 0u64;
    let mut states = std::collections::BTreeMap::new();
    let builds = ["upgrade_v1.o", "upgrade_v2.o"];
    for i in 0..20u32 {
        assert_eq!(net.send_udp(7500, 3), 3);
        sent += 3;
        let before = filter_prog(&net);
        let target = object(builds[i as usize % 2]);
        let mut child = tcbpf(&format!("{base} {target}"), &fs.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole * i / 20);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let now = filter_prog(&net);
        let pinned = pinned_id(&pin);
        // Either the old program with the pin on its map, or the new
        // program (whose pin the rerun moves if the kill came before).
        let state = if now == before {
            assert!(
                map_ids_of(before).contains(&pinned),
                "kill {i}: old program, foreign pin"
            );
            "old"
        } else if map_ids_of(now).contains(&pinned) {
            "new"
        } else {
            "new, pins not yet renamed"
        };
        *states.entry(state).or_insert(0) += 1;
        let _ = status;
        // Rerunning the same upgrade converges.
        let out = ok(tcbpf(&format!("{base} {target}"), &fs.path));
        let after = filter_prog(&net);
        assert!(
            map_ids_of(after).contains(&pinned_id(&pin)),
            "kill {i} ({state}): after the rerun the pin names the running program's map: {out}"
        );
        let left: Vec<String> = std::fs::read_dir(fs.join("tc/globals"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["counters".to_string()], "kill {i}: {out}");
        assert_eq!(udp_packets(&pin), sent, "kill {i} ({state}): counts");
    }
    eprintln!("states after SIGKILL at 20 points over {whole:?}: {states:?}");
}

/// The generation of set `name` in the keeper at `sock`, once it is
/// `want` (5 s at most).
fn wait_generation(sock: &str, name: &str, want: u64) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        last = serde_json::from_str(&ok(tcbpf_cmd(&["-j", "keeper", "list", sock]))).unwrap();
        let set = last["sets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned();
        if let Some(set) = set {
            if set["generation"] == want {
                return set;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("set {name} never reached generation {want}: {last}");
}

#[test]
fn a_keeper_set_is_replaced_by_the_upgrade_with_a_new_generation() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("upgrade-keeper");
    let k = KeeperProc::start(&dir.join("k"), &[], &fs.path);
    let sock = k.sock.to_str().unwrap().to_string();
    let import = k.import.to_str().unwrap().to_string();
    let a = &net.a.name;
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 egress pref 1 handle 1 bpf da obj {} export {import}",
            object("upgrade_v1.o")
        ),
        &fs.path,
    ));
    let v1_set = wait_generation(&sock, "upgrade_v1.o", 1);
    assert_eq!(v1_set["maps"][0]["bytes_value"], 16, "{v1_set}");
    assert_eq!(net.send_udp(7600, 12), 12);
    ok(tcbpf(
        &format!(
            "-n {a} filter upgrade dev v0 egress pref 1 handle 1 bpf obj {} export {import}",
            object("upgrade_v2.o")
        ),
        &fs.path,
    ));
    let v2_set = wait_generation(&sock, "upgrade_v1.o", 2);
    let counters = v2_set["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "counters")
        .unwrap()
        .clone();
    assert_eq!(counters["bytes_value"], 24, "the new layout: {v2_set}");
    let text = ok(tcbpf_cmd(&["keeper", "list", &sock]));
    assert!(text.contains("generation 2"), "{text}");
    // A client re-attaching gets the new map with the carried-over counts.
    assert_eq!(net.send_udp(7600, 3), 3);
    let got: Value = serde_json::from_str(&ok(tcbpf_cmd(&[
        "-j",
        "map",
        "lookup",
        "keeper",
        &sock,
        "upgrade_v1.o/counters",
        "key",
        "17",
    ])))
    .unwrap();
    assert_eq!(got["value"]["packets"], 15, "{got}");
    assert_eq!(got["value"]["drops"], 0, "{got}");
}

#[test]
fn tcx_link_upgrade_from_the_command_line() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let a = &net.a.name;
    let link = fs.join("upg-link");
    let pin = fs.join("tc/globals/counters");
    ok(tcbpf(
        &format!(
            "-n {a} filter add dev v0 tcx egress bpf obj {} link {}",
            object("upgrade_v1.o"),
            link.display()
        ),
        &fs.path,
    ));
    assert_eq!(net.send_udp(7700, 4), 4);
    let (_, before) = tcbpf::tc::tcx::open_pinned(&link).unwrap();
    let out = ok(tcbpf(
        &format!(
            "-n {a} filter upgrade dev v0 tcx egress link {} bpf obj {}",
            link.display(),
            object("upgrade_v3.o")
        ),
        &fs.path,
    ));
    assert!(out.contains(&format!("link {}", before.id)), "{out}");
    let (_, after) = tcbpf::tc::tcx::open_pinned(&link).unwrap();
    assert_eq!(after.id, before.id, "the same link");
    assert_ne!(after.prog_id, before.prog_id, "a new program behind it");
    assert_eq!(net.send_udp(7700, 2), 2);
    assert_eq!(udp_packets(&pin), 6);
    ok(tcbpf(
        &format!(
            "-n {a} filter del dev v0 tcx egress link {}",
            link.display()
        ),
        &fs.path,
    ));
}

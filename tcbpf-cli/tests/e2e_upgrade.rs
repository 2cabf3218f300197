//! `filter upgrade` end to end: the classifier of `bpf/upgrade_*.c` on a
//! veth's egress, planned (text and `-j`, nothing changed), refused (exit
//! 2 naming the map and member, nothing changed) and upgraded with its
//! counts carried into the new value layout, checked with the real `tc`
//! and real UDP traffic. The usage text is the README's.

mod e2e_support;

use e2e_support::*;
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

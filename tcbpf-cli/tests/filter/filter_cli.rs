//! `tcbpf qdisc` and `tcbpf filter` end to end: the binary against the real
//! kernel, checked against the real `tc` both ways, with real traffic,
//! tcx links, `-n NETNS`, and bad input. Every test works in namespaces
//! and a bpffs it creates and removes.

use std::path::Path;
use std::process::Command;
use tcbpf::sys;
use tcbpf_testkit::*;

/// Runs `tcbpf` with the words of `line` (paths here hold no spaces), and
/// `TC_BPF_MNT` at `mnt` when given.
fn tcbpf(line: &str, mnt: Option<&Path>) -> Command {
    tcbpf_testkit::tcbpf(env!("CARGO_BIN_EXE_tcbpf"), line.split_whitespace(), mnt)
}

fn veth(ns: &Netns) {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
}

/// A bpffs with `constant_prog(verdict)` pinned at NAME in it.
fn pinned_const(fs: &Bpffs, name: &str, verdict: i32) -> (sys::ProgFd, String) {
    let prog = constant_prog(verdict);
    let pin = fs.join(name);
    sys::obj::pin(&prog, &pin).unwrap();
    (prog, s(&pin).to_string())
}

#[test]
fn qdisc_add_and_del_manage_clsact() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    veth(&ns);
    let n = &ns.name;
    ok(tcbpf(&format!("-n {n} qdisc add dev v0 clsact"), None));
    assert!(tc(&ns, "qdisc show dev v0").contains("qdisc clsact ffff: parent ffff:fff1"));
    let (code, err) = fails(tcbpf(&format!("-n {n} qdisc add dev v0 clsact"), None));
    assert_eq!(
        (code, err.trim()),
        (4, "tcbpf: dev 'v0' already has a clsact qdisc")
    );
    ok(tcbpf(&format!("-n {n} qdisc del dev v0 clsact"), None));
    assert!(!tc(&ns, "qdisc show dev v0").contains("clsact"));
    let (code, err) = fails(tcbpf(&format!("-n {n} qdisc del dev v0 clsact"), None));
    assert_eq!(code, 1);
    assert!(err.contains("dev 'v0': no clsact qdisc"), "{err}");
}

#[test]
fn filter_show_prints_what_tc_prints_line_for_line() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    veth(&ns);
    let (pass, p_pass) = pinned_const(&fs, "pass", PASS);
    let (shot, p_shot) = pinned_const(&fs, "shot", SHOT);
    let n = &ns.name;
    // The pins live in this process's mount namespace: -n keeps them visible.
    for line in [
        format!("ingress bpf da pinned {p_pass}"),
        format!("ingress pref 7 handle 0x3 protocol ip bpf da pinned {p_shot}"),
        format!("egress pref 8 protocol 802.1Q chain 3 bpf classid 1:2 pinned {p_pass}"),
        format!("egress protocol 0x1234 bpf da pinned {p_shot}"),
    ] {
        ok(tcbpf(&format!("-n {n} filter add dev v0 {line}"), None));
    }
    for hook in [
        "ingress",
        "egress",
        "ingress pref 7",
        "egress chain 3",
        "ingress protocol all",
    ] {
        for json in ["", "-j"] {
            let line = format!("-n {n} {json} filter show dev v0 {hook}");
            let ours = ok(tcbpf(&line, None));
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(ours, run("tc", &words), "{line}");
            assert!(!ours.is_empty());
        }
    }
    let text = ok(tcbpf(&format!("-n {n} filter show dev v0 ingress"), None));
    let id = sys::info::prog_info(&shot).unwrap().id;
    let expected = format!(
        "filter protocol ip pref 7 bpf chain 0 handle 0x3 shot:[*fsobj] direct-action \
         not_in_hw id {id} name tc_const tag "
    );
    assert!(text.contains(&expected), "{text}");

    // replace swaps the program; del removes exactly the filter named.
    ok(tcbpf(
        &format!("-n {n} filter replace dev v0 ingress pref 7 handle 3 protocol ip bpf da pinned {p_pass}"),
        None,
    ));
    let pass_id = sys::info::prog_info(&pass).unwrap().id;
    let theirs = tc(&ns, "filter show dev v0 ingress pref 7");
    assert!(
        theirs.contains(&format!(
            "pass:[*fsobj] direct-action not_in_hw id {pass_id} "
        )),
        "{theirs}"
    );
    ok(tcbpf(
        &format!("-n {n} filter del dev v0 ingress pref 7 handle 3"),
        None,
    ));
    assert_eq!(tc(&ns, "filter show dev v0 ingress pref 7"), "");
    // Without pref, del flushes one chain (0 unless given), as tc does.
    ok(tcbpf(&format!("-n {n} filter del dev v0 egress"), None));
    let left = tc(&ns, "filter show dev v0 egress");
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(left.contains("chain 3"), "{left}");
    ok(tcbpf(
        &format!("-n {n} filter del dev v0 egress chain 3"),
        None,
    ));
    assert_eq!(
        ok(tcbpf(&format!("-n {n} filter show dev v0 egress"), None)),
        ""
    );
    assert_ne!(
        ok(tcbpf(&format!("-n {n} filter show dev v0 ingress"), None)),
        ""
    );
}

#[test]
fn filter_added_by_tc_shows_in_tcbpf() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    veth(&ns);
    let (prog, pin) = pinned_const(&fs, "from_tc", PASS);
    tc(&ns, "qdisc add dev v1 clsact");
    tc(
        &ns,
        &format!("filter add dev v1 egress pref 4 handle 9 bpf da pinned {pin}"),
    );
    let ours = ok(tcbpf(
        &format!("-n {} filter show dev v1 egress", ns.name),
        None,
    ));
    let info = sys::info::prog_info(&prog).unwrap();
    let expected = format!(
        "filter protocol all pref 4 bpf chain 0 handle 0x9 from_tc:[*fsobj] direct-action \
         not_in_hw id {} name tc_const tag {} jited ",
        info.id,
        info.tag_hex()
    );
    assert_eq!(ours.lines().nth(1).unwrap(), expected);
    assert_eq!(ours, tc(&ns, "filter show dev v1 egress"));
}

#[test]
fn filter_on_a_parent_class_carries_its_classid() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    veth(&ns);
    let (_prog, pin) = pinned_const(&fs, "classify", PASS);
    let n = &ns.name;
    let add = format!("-n {n} filter add dev v0 parent 1: pref 3 bpf classid 1:2 pinned {pin}");
    let (code, err) = fails(tcbpf(&add, None));
    assert_eq!(code, 4, "{err}");
    assert!(
        !tc(&ns, "qdisc show dev v0").contains("clsact"),
        "no clsact for a class parent"
    );
    tc(&ns, "qdisc add dev v0 root handle 1: htb default 1");
    ok(tcbpf(&add, None));
    let ours = ok(tcbpf(&format!("-n {n} filter show dev v0 parent 1:"), None));
    assert_eq!(ours, tc(&ns, "filter show dev v0 parent 1:"));
    assert!(
        ours.contains("handle 0x1 flowid 1:2 classify:[*fsobj] not_in_hw id"),
        "{ours}"
    );
    let ours = ok(tcbpf(
        &format!("-n {n} -j filter show dev v0 parent 1:"),
        None,
    ));
    assert_eq!(ours, tc(&ns, "-j filter show dev v0 parent 1:"));
}

#[test]
fn attached_filter_counts_udp_packets_sent_between_namespaces() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let fs = Bpffs::new();
    let counter = counter_map();
    let pin = fs.join("count");
    sys::obj::pin(udp_counter_prog(&counter, 7000, PASS), &pin).unwrap();
    let b = &pair.b.name;
    let add = format!(
        "-n {b} filter add dev v1 ingress protocol ip bpf da pinned {}",
        s(&pin)
    );
    ok(tcbpf(&add, None));
    assert_eq!(pair.send_udp(7000, 40), 40);
    assert_eq!(read_counter(&counter), 40);
    ok(tcbpf(&format!("-n {b} qdisc del dev v1 clsact"), None));
    assert_eq!(pair.send_udp(7000, 3), 3);
    assert_eq!(
        read_counter(&counter),
        40,
        "the qdisc and its filter are gone"
    );
}

#[test]
fn tcx_link_is_pinned_counts_packets_and_is_detached_by_del() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let fs = Bpffs::new();
    let counter = counter_map();
    let prog = udp_counter_prog(&counter, 7100, PASS);
    let pin = fs.join("tcx_count");
    sys::obj::pin(&prog, &pin).unwrap();
    let prog_id = sys::info::prog_info(&prog).unwrap().id;
    drop(prog);
    let (b, pin) = (&pair.b.name, s(&pin));
    let mnt = Some(fs.path.as_path());
    let out = ok(tcbpf(
        &format!("-n {b} -j filter add dev v1 tcx ingress bpf pinned {pin}"),
        mnt,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let link_id = v["link_id"].as_u64().unwrap();
    let link_pin = fs.path.join(format!("tc/links/tcx-v1-ingress-{link_id}"));
    assert_eq!(v["pinned"], link_pin.display().to_string());
    assert!(link_pin.exists());
    let shown = ok(tcbpf(
        &format!("-n {b} -j filter show dev v1 tcx ingress"),
        mnt,
    ));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v[0]["prog"]["id"], prog_id);
    assert_eq!(v[0]["link_id"], link_id);
    assert_eq!(v[0]["prog"]["name"], "tc_udp_count");

    assert_eq!(pair.send_udp(7100, 17), 17);
    assert_eq!(read_counter(&counter), 17);
    ok(tcbpf(&format!("-n {b} filter del dev v1 tcx ingress"), mnt));
    assert!(!link_pin.exists(), "del unpins the link");
    assert_eq!(
        ok(tcbpf(
            &format!("-n {b} filter show dev v1 tcx ingress"),
            mnt
        )),
        ""
    );
    assert_eq!(pair.send_udp(7100, 5), 5);
    assert_eq!(read_counter(&counter), 17, "detached: no more counting");

    // An explicit link path, detached by naming it on the right hook.
    let my_link = fs.join("my_link");
    let my = s(&my_link);
    ok(tcbpf(
        &format!("-n {b} filter add dev v1 tcx egress bpf pinned {pin} link {my}"),
        mnt,
    ));
    let (code, err) = fails(tcbpf(
        &format!("-n {b} filter del dev v1 tcx ingress link {my}"),
        mnt,
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("is not attached to dev 'v1' tcx ingress"),
        "{err}"
    );
    ok(tcbpf(
        &format!("-n {b} filter del dev v1 tcx egress link {my}"),
        mnt,
    ));
    assert!(!my_link.exists());
    let (code, _) = fails(tcbpf(&format!("-n {b} filter del dev v1 tcx egress"), mnt));
    assert_eq!(code, 1);

    // A link path outside bpffs is refused before anything is attached.
    let not_bpffs = std::env::temp_dir().join(unique("tcbpf-not-bpffs-"));
    let add = format!(
        "-n {b} filter add dev v1 tcx egress bpf pinned {pin} link {}",
        s(&not_bpffs)
    );
    let (code, err) = fails(tcbpf(&add, mnt));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not on a bpffs"), "{err}");
    // A link that cannot be pinned (the path is taken) is not left attached.
    let add = format!("-n {b} filter add dev v1 tcx egress bpf pinned {pin} link {pin}");
    let (code, err) = fails(tcbpf(&add, mnt));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("pinning the tcx link") && err.contains("(EEXIST)"),
        "{err}"
    );
    assert_eq!(
        ok(tcbpf(&format!("-n {b} filter show dev v1 tcx egress"), mnt)),
        ""
    );
    // The same program twice on one hook: the kernel refuses, tcbpf says why.
    let add = format!("-n {b} filter add dev v1 tcx egress bpf pinned {pin}");
    ok(tcbpf(&add, mnt));
    let (_, err) = fails(tcbpf(&add, mnt));
    assert!(err.contains("already attached to this hook"), "{err}");
    assert_eq!(
        std::fs::read_dir(fs.path.join("tc/links")).unwrap().count(),
        1
    );
}

#[test]
fn act_bpf_fails_clearly_and_leaves_no_qdisc() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    veth(&ns);
    let (_prog, pin) = pinned_const(&fs, "p", PASS);
    let line = format!(
        "-n {} filter add dev v0 ingress bpf da pinned {pin} action bpf pinned {pin}",
        ns.name
    );
    let (code, err) = fails(tcbpf(&line, None));
    assert_eq!(code, 4);
    assert!(
        err.contains("act_bpf is not supported by this kernel"),
        "{err}"
    );
    assert!(err.contains("(EOPNOTSUPP)"), "{err}");
    assert!(
        !tc(&ns, "qdisc show dev v0").contains("clsact"),
        "the qdisc made for it is gone"
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    veth(&ns);
    let n = &ns.name;
    let (_prog, pin) = pinned_const(&fs, "p", PASS);
    let m = counter_map();
    let map_pin = fs.join("m");
    sys::obj::pin(&m, &map_pin).unwrap();

    let line = format!("-n {n} filter add dev nosuch0 ingress bpf da pinned {pin}");
    let (code, err) = fails(tcbpf(&line, None));
    assert_eq!((code, err.trim()), (1, "tcbpf: no such device 'nosuch0'"));
    for verb in ["show", "del"] {
        let (code, err) = fails(tcbpf(&format!("-n {n} filter {verb} dev v0 ingress"), None));
        assert_eq!(code, 1);
        assert!(err.contains("dev 'v0': no clsact qdisc"), "{err}");
    }
    let line = format!(
        "-n {n} filter add dev v0 ingress bpf da pinned {}",
        s(&map_pin)
    );
    let (code, err) = fails(tcbpf(&line, None));
    // A pin of the wrong kind is bad input (2), as a MAP pin that is no
    // map and `chain apply`'s `pinned PATH` that is no program.
    assert_eq!(code, 2);
    assert!(err.contains("not a bpf program"), "{err}");
    let line = "-n tcbpf-no-such-netns filter show dev v0 ingress";
    let (code, err) = fails(tcbpf(line, None));
    assert_eq!(code, 1);
    assert!(err.contains("netns 'tcbpf-no-such-netns'"), "{err}");
    assert!(!tc(&ns, "qdisc show dev v0").contains("clsact"));

    let add = format!("-n {n} filter add dev v0 ingress pref 2 handle 1 bpf da pinned {pin}");
    ok(tcbpf(&add, None));
    let (code, err) = fails(tcbpf(&add, None));
    assert_eq!(code, 4);
    assert!(err.contains("(EEXIST)"), "{err}");
    let (code, err) = fails(tcbpf(
        &format!("-n {n} filter add dev v0 ingress bpf pinned"),
        None,
    ));
    assert_eq!(code, 2);
    assert!(err.contains("expected a bpffs path"), "{err}");
    assert_eq!(tc(&ns, "filter show dev v0 ingress").lines().count(), 2);
}

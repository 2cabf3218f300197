//! `filter replace` with objects that share a pinned map, and `tcx` with
//! an object, end to end: real UDP across a veth pair between two
//! namespaces, counted exactly by the receiver and by the pinned `stats`
//! map of the verdict fixtures (`bpf/verdict_legacy.c`, `bpf/verdict_btf.c`).

use crate::e2e_support;

use e2e_support::*;

#[test]
fn replace_swaps_the_program_while_the_pinned_map_keeps_counting() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let b = &net.b.name;
    let legacy = object("verdict_legacy.o");
    let btf = object("verdict_btf.o");
    let stats = fs.join("tc/globals/stats");

    ok(tcbpf(
        &format!(
            "-n {b} filter add dev v1 ingress pref 3 handle 2 bpf da obj {legacy} sec classifier"
        ),
        &fs.path,
    ));
    let first = tc(&net.b, "filter show dev v1 ingress");
    assert!(
        first.contains("handle 0x2 verdict_legacy.o:[classifier]"),
        "{first}"
    );
    assert_eq!(net.send_udp(7301, 10), 10);
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (10, 0));

    // The BTF twin pins `stats` by name: the same map, reused.
    ok(tcbpf(
        &format!(
            "-n {b} filter replace dev v1 ingress pref 3 handle 2 bpf da obj {btf} sec classifier"
        ),
        &fs.path,
    ));
    let second = tc(&net.b, "filter show dev v1 ingress");
    assert!(
        second.contains("handle 0x2 verdict_btf.o:[classifier]"),
        "{second}"
    );
    assert_eq!(second.matches("handle 0x2").count(), 1, "{second}");
    let (old_id, new_id) = (prog_id_in(&first), prog_id_in(&second));
    assert_ne!(old_id, new_id);
    assert_eq!(net.send_udp(7301, 15), 15);
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (25, 0));

    // The new program decides: blocking the port in its own map drops.
    block_port(new_id, 7302);
    assert_eq!(net.send_udp(7302, 6), 0);
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (25, 6));
    // The replaced program is released (cls_bpf frees it after an RCU
    // grace period, hence the wait).
    let released = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        tcbpf::sys::obj::prog_by_id(old_id).is_err()
    });
    assert!(released, "the replaced program {old_id} is still alive");

    ok(tcbpf(
        &format!("-n {b} filter del dev v1 ingress pref 3 handle 2"),
        &fs.path,
    ));
    assert_eq!(tc(&net.b, "filter show dev v1 ingress"), "");
    assert_eq!(net.send_udp(7302, 4), 4, "deleted: nothing drops");
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (25, 6));
}

#[test]
fn tcx_with_an_object_counts_real_traffic_exactly() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let b = &net.b.name;
    let obj = object("verdict_legacy.o");
    let out = ok(tcbpf(
        &format!("-n {b} -j filter add dev v1 tcx ingress bpf obj {obj} sec classifier"),
        &fs.path,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let link_id = v["link_id"].as_u64().unwrap();
    assert!(fs
        .join(format!("tc/links/tcx-v1-ingress-{link_id}"))
        .exists());
    let shown = ok(tcbpf(
        &format!("-n {b} -j filter show dev v1 tcx ingress"),
        &fs.path,
    ));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v[0]["prog"]["name"], "verdict");
    let prog_id = v[0]["prog"]["id"].as_u64().unwrap() as u32;

    let stats = fs.join("tc/globals/stats");
    assert_eq!(net.send_udp(7401, 12), 12);
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (12, 0));
    block_port(prog_id, 7402);
    assert_eq!(net.send_udp(7402, 8), 0);
    assert_eq!(net.send_udp(7401, 3), 3);
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (15, 8));
    // tcx links are not cls_bpf filters: tc sees no filter, no qdisc needed.
    assert!(!tc(&net.b, "qdisc show dev v1").contains("clsact"));

    ok(tcbpf(
        &format!("-n {b} filter del dev v1 tcx ingress"),
        &fs.path,
    ));
    assert_eq!(net.send_udp(7402, 5), 5, "detached: nothing drops");
    assert_eq!((pinned_u64(&stats, 0), pinned_u64(&stats, 1)), (15, 8));
}

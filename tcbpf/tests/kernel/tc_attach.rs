//! The tc layer against the real kernel and the real `tc`: clsact qdisc,
//! cls_bpf filters (add, list, replace, delete), real traffic counted by an
//! attached classifier, tcx links, act_bpf's clear error, and bad input.
//! Each test works in namespaces it creates and deletes.

use std::os::fd::AsFd;
use tcbpf::attach::cls_bpf::{self as filter, FilterSelector, FilterSpec, Mode};
use tcbpf::attach::tcx::{self, Direction};
use tcbpf::sys::{self, info};
use tcbpf::tc::action::{self, ActionSpec};
use tcbpf::tc::{device, qdisc, Protocol, Socket, TcHandle};
use tcbpf_testkit::*;

fn spec<'a>(ifindex: u32, prog: &'a sys::ProgFd, pref: u16, handle: u32) -> FilterSpec<'a> {
    FilterSpec {
        ifindex,
        parent: TcHandle::INGRESS,
        pref,
        handle,
        protocol: Protocol::ALL,
        chain: None,
        prog: prog.as_fd().into(),
        name: "test.o:[classifier]".into(),
        skip_flags: 0,
        direct_action: true,
        classid: None,
        actions: Vec::new(),
    }
}

fn selector(ifindex: u32) -> FilterSelector {
    FilterSelector {
        ifindex,
        parent: TcHandle::INGRESS,
        pref: 0,
        protocol: None,
        handle: 0,
        chain: None,
    }
}

fn veth_in(ns: &Netns) -> u32 {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap())
}

#[test]
fn clsact_qdisc_is_added_once_and_deleted() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    ns.run(|| {
        let sock = Socket::open().unwrap();
        assert!(!qdisc::has_clsact(&sock, ifindex).unwrap());
        assert_eq!(
            qdisc::add_clsact(&sock, ifindex).unwrap(),
            qdisc::Added::Created
        );
        assert_eq!(
            qdisc::add_clsact(&sock, ifindex).unwrap(),
            qdisc::Added::Existed
        );
        assert!(qdisc::has_clsact(&sock, ifindex).unwrap());
        qdisc::delete_clsact(&sock, ifindex).unwrap();
        assert!(!qdisc::has_clsact(&sock, ifindex).unwrap());
        let err = qdisc::delete_clsact(&sock, ifindex).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(err.to_string().contains("no clsact qdisc"), "{err}");
    });
    assert!(!ns.ip(&["-d", "link", "show", "v0"]).is_empty());
    let out = run("tc", &["-n", &ns.name, "qdisc", "show", "dev", "v0"]);
    assert!(!out.contains("clsact"), "{out}");
}

#[test]
fn filter_is_listed_seen_by_tc_replaced_and_deleted() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let first = constant_prog(PASS);
    let second = constant_prog(SHOT);
    let first_id = info::prog_info(&first).unwrap().id;
    let second_id = info::prog_info(&second).unwrap().id;
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let mut s = spec(ifindex, &first, 7, 3);
        s.protocol = Protocol::IP;
        let attached = filter::attach(&sock, &s, Mode::Add).unwrap();
        assert!(attached.created_clsact);
        let list = filter::list(&sock, &selector(ifindex)).unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(
            (list[0].handle, list[0].pref, list[0].protocol),
            (0, 7, Protocol::IP)
        );
        let f = &list[1];
        assert_eq!(
            (f.handle, f.pref, f.kind.as_str(), f.chain),
            (3, 7, "bpf", Some(0))
        );
        let bpf = f.bpf.as_ref().unwrap();
        assert_eq!(bpf.name.as_deref(), Some("test.o:[classifier]"));
        assert!(bpf.direct_action);
        assert_eq!(bpf.prog_id, Some(first_id));
        assert_eq!(
            bpf.tag.as_deref(),
            Some(&info::prog_info(&first).unwrap().tag[..])
        );
    });
    let tc = run(
        "tc",
        &["-n", &ns.name, "filter", "show", "dev", "v0", "ingress"],
    );
    assert!(tc.contains(&format!("filter protocol ip pref 7 bpf chain 0 handle 0x3 test.o:[classifier] direct-action not_in_hw id {first_id} ")), "{tc}");
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let mut busy = spec(ifindex, &second, 7, 3);
        busy.protocol = Protocol::IP;
        let err = filter::add(&sock, &busy).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
        let mut s = spec(ifindex, &second, 7, 3);
        s.protocol = Protocol::IP;
        filter::replace(&sock, &s).unwrap();
        let list = filter::list(&sock, &selector(ifindex)).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].bpf.as_ref().unwrap().prog_id, Some(second_id));
        let mut sel = selector(ifindex);
        sel.pref = 7;
        sel.handle = 3;
        filter::delete(&sock, &sel).unwrap();
        assert!(filter::list(&sock, &selector(ifindex)).unwrap().is_empty());
        let err = filter::delete(&sock, &sel).unwrap_err();
        assert!(err.errno().is_some(), "{err}");
    });
    let tc = run(
        "tc",
        &["-n", &ns.name, "filter", "show", "dev", "v0", "ingress"],
    );
    assert_eq!(tc, "");
}

#[test]
fn filter_added_by_tc_from_a_pin_is_listed_with_its_name() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    let ifindex = veth_in(&ns);
    let prog = constant_prog(PASS);
    let pin = fs.join("shot");
    sys::obj::pin(&prog, &pin).unwrap();
    let id = info::prog_info(&prog).unwrap().id;
    run(
        "tc",
        &["-n", &ns.name, "qdisc", "add", "dev", "v0", "clsact"],
    );
    run(
        "tc",
        &[
            "-n",
            &ns.name,
            "filter",
            "add",
            "dev",
            "v0",
            "egress",
            "pref",
            "9",
            "bpf",
            "da",
            "pinned",
            s(&pin),
        ],
    );
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let mut sel = selector(ifindex);
        sel.parent = TcHandle::EGRESS;
        let list = filter::list(&sock, &sel).unwrap();
        let f = list.iter().find(|f| f.handle != 0).expect("filter from tc");
        assert_eq!(f.pref, 9);
        let bpf = f.bpf.as_ref().unwrap();
        assert_eq!(bpf.name.as_deref(), Some("shot:[*fsobj]"));
        assert_eq!(bpf.prog_id, Some(id));
        assert_eq!(
            bpf.flags_gen.unwrap() & filter::cls_flags::NOT_IN_HW,
            filter::cls_flags::NOT_IN_HW
        );
    });
}

#[test]
fn classifier_counts_exactly_the_udp_packets_sent_across_veth() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let counter = counter_map();
    let prog = udp_counter_prog(&counter, 4242, PASS);
    let ifindex = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        filter::attach(&sock, &spec(ifindex, &prog, 1, 1), Mode::Add).unwrap();
        ifindex
    });
    assert_eq!(pair.send_udp(4242, 25), 25);
    assert_eq!(read_counter(&counter), 25);
    assert_eq!(pair.send_udp(4243, 5), 5, "other ports pass uncounted");
    assert_eq!(read_counter(&counter), 25);

    // Replace with a dropping program that counts into the same map: the
    // count goes on, the packets stop.
    let drop_prog = udp_counter_prog(&counter, 4242, SHOT);
    pair.b.run(|| {
        filter::replace(&Socket::open().unwrap(), &spec(ifindex, &drop_prog, 1, 1)).unwrap();
    });
    assert_eq!(pair.send_udp(4242, 7), 0);
    assert_eq!(read_counter(&counter), 32);
}

#[test]
fn tcx_link_counts_traffic_and_detaches() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let fs = Bpffs::new();
    let counter = counter_map();
    let prog = udp_counter_prog(&counter, 5353, PASS);
    let prog_id = info::prog_info(&prog).unwrap().id;
    let pin = fs.join("link");
    let ifindex = pair
        .b
        .run(|| device::ifindex(&Socket::open().unwrap(), "v1").unwrap());
    let link_id = pair
        .b
        .run(|| tcx::attach_pinned(ifindex, Direction::Ingress, prog.as_fd(), &pin).unwrap());
    let listed = pair
        .b
        .run(|| tcx::list(ifindex, Direction::Ingress).unwrap());
    assert_eq!(listed, vec![tcx::TcxProgram { prog_id, link_id }]);
    assert!(pair
        .b
        .run(|| tcx::list(ifindex, Direction::Egress).unwrap())
        .is_empty());
    drop(prog); // the pinned link keeps the program attached
    assert_eq!(pair.send_udp(5353, 12), 12);
    assert_eq!(read_counter(&counter), 12);

    let (link, info) = tcx::open_pinned(&pin).unwrap();
    assert_eq!(
        (info.id, info.ifindex, info.attach_type),
        (link_id, ifindex, 46)
    );
    tcx::detach(&link).unwrap();
    assert!(pair
        .b
        .run(|| tcx::list(ifindex, Direction::Ingress).unwrap())
        .is_empty());
    assert_eq!(pair.send_udp(5353, 4), 4);
    assert_eq!(read_counter(&counter), 12, "detached: no more counting");
}

#[test]
fn act_bpf_reports_that_the_kernel_lacks_it() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let prog = constant_prog(PASS);
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let a = ActionSpec {
            prog: prog.as_fd(),
            name: "act.o:[action]".into(),
            index: 0,
            verdict: action::verdict::PIPE,
        };
        let err = action::add_action(&sock, &a).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EOPNOTSUPP));
        assert!(
            err.to_string()
                .contains("act_bpf is not supported by this kernel"),
            "{err}"
        );
        let mut s = spec(ifindex, &prog, 3, 1);
        s.actions.push(a);
        let err = filter::attach(&sock, &s, Mode::Add).unwrap_err();
        assert!(
            err.to_string()
                .contains("act_bpf is not supported by this kernel"),
            "{err}"
        );
        // The qdisc made for the failed filter is gone again.
        assert!(!qdisc::has_clsact(&sock, ifindex).unwrap());
    });
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let prog = constant_prog(PASS);
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let err = device::ifindex(&sock, "nosuchdev0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "find device: no such device 'nosuchdev0' (ENODEV)"
        );
        assert!(device::ifindex(&sock, "a/b").is_err());
        let err = filter::list(&sock, &selector(ifindex)).unwrap_err();
        assert!(err.to_string().contains("no clsact qdisc"), "{err}");
        let err = filter::delete(&sock, &selector(ifindex)).unwrap_err();
        assert!(err.to_string().contains("no clsact qdisc"), "{err}");
        // A filter on a parent class that does not exist fails; no qdisc stays.
        let mut s = spec(ifindex, &prog, 1, 1);
        s.parent = TcHandle::new(1, 0);
        let err = filter::attach(&sock, &s, Mode::Add).unwrap_err();
        assert!(err.errno().is_some(), "{err}");
        assert!(!qdisc::has_clsact(&sock, ifindex).unwrap());
        assert_eq!(device::ifname(&sock, ifindex).unwrap(), "v0");
    });
    let fs = Bpffs::new();
    let m = counter_map();
    sys::obj::pin(&m, &fs.join("map")).unwrap();
    let err = sys::obj::get_pinned_prog(&fs.join("map")).unwrap_err();
    assert!(err.to_string().contains("not a bpf program"), "{err}");
    let err = tcx::open_pinned(&fs.join("map")).unwrap_err();
    assert!(err.to_string().contains("not a bpf link"), "{err}");
    let err = tcbpf::tc::netns::enter("tcbpf-no-such-ns").unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
}

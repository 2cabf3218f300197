//! Discovery against the real kernel: the filters and tcx programs on a
//! device's hooks, the maps their programs use, and run statistics counted
//! while BPF_ENABLE_STATS is held. Each test works in namespaces it creates.

use std::os::fd::AsFd;
use tcbpf::attach::cls_bpf::{self as filter, FilterSpec, Mode};
use tcbpf::attach::discover::{self, Hook};
use tcbpf::attach::tcx::{self, Direction};
use tcbpf::sys::{info, prog};
use tcbpf::tc::{device, Protocol, Socket, TcHandle};
use tcbpf_testkit::*;

#[test]
fn device_programs_and_their_maps_are_found_with_run_counts() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let counter = counter_map();
    let map_id = info::map_info(&counter).unwrap().id;
    let cls = udp_counter_prog(&counter, 7001, PASS);
    let cls_id = info::prog_info(&cls).unwrap().id;
    let tcx_prog = constant_prog(PASS);
    let tcx_id = info::prog_info(&tcx_prog).unwrap().id;
    let _stats = prog::enable_stats().unwrap();

    let (found, _link) = pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        let none = discover::attachments(&sock, ifindex, &[Direction::Ingress, Direction::Egress])
            .unwrap();
        assert!(none.is_empty(), "a fresh veth has no programs: {none:?}");
        let spec = FilterSpec {
            ifindex,
            parent: TcHandle::INGRESS,
            pref: 7,
            handle: 1,
            protocol: Protocol::ALL,
            chain: None,
            prog: cls.as_fd().into(),
            skip_flags: 0,
            name: "count.o:[classifier]".into(),
            direct_action: true,
            classid: None,
            actions: Vec::new(),
        };
        filter::attach(&sock, &spec, Mode::Add).unwrap();
        let link = tcx::attach(ifindex, Direction::Egress, tcx_prog.as_fd()).unwrap();
        let found = discover::attachments(&sock, ifindex, &[Direction::Ingress, Direction::Egress])
            .unwrap();
        (found, link)
    });
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].direction, Direction::Ingress);
    assert_eq!(found[0].prog_id, cls_id);
    assert_eq!(
        found[0].hook,
        Hook::Filter {
            pref: 7,
            handle: 1,
            name: Some("count.o:[classifier]".into()),
            direct_action: true,
        }
    );
    assert_eq!(found[1].direction, Direction::Egress);
    assert_eq!(found[1].prog_id, tcx_id);
    assert!(matches!(found[1].hook, Hook::Tcx { link_id } if link_id != 0));

    let before = discover::program(cls_id).unwrap();
    assert_eq!(before.map_ids, vec![map_id]);
    assert_eq!(pair.send_udp(7001, 10), 10);
    let after = discover::program(cls_id).unwrap();
    assert!(
        after.run_cnt >= before.run_cnt + 10,
        "run count {} → {} after 10 datagrams",
        before.run_cnt,
        after.run_cnt
    );
    assert!(after.run_time_ns > before.run_time_ns);
    assert_eq!(read_counter(&counter), 10);
}

#[test]
fn only_the_asked_direction_is_listed_and_a_gone_program_is_enoent() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let prog = constant_prog(PASS);
    let id = info::prog_info(&prog).unwrap().id;
    let found = ns.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v0").unwrap();
        let _link = tcx::attach(ifindex, Direction::Ingress, prog.as_fd()).unwrap();
        (
            discover::attachments(&sock, ifindex, &[Direction::Egress]).unwrap(),
            discover::attachments(&sock, ifindex, &[Direction::Ingress]).unwrap(),
        )
    });
    assert!(found.0.is_empty());
    assert_eq!(found.1.len(), 1);
    assert_eq!(found.1[0].prog_id, id);
    drop(prog);
    // The link was dropped inside the closure and the last descriptor just
    // now: the kernel frees the program after an RCU grace period, so give
    // it up to 5 s to be gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let err = loop {
        match discover::program(id) {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(p) => panic!("program {id} still there 5 s after its last holder closed: {p:?}"),
        }
    };
    assert_eq!(err.errno, Some(libc::ENOENT), "{err}");
}

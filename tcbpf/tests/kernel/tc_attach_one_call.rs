//! `attach::attach`, the one call the CLI and chains attach through:
//! a cls_bpf filter with its tc options, a tcx link at an anchor, and the
//! step named when an action's pin is missing or a classic program is
//! sent to a tcx hook. Each test works in a namespace it creates.

use std::os::fd::AsFd;
use tcbpf::attach::cls_bpf::{self as filter, FilterSelector};
use tcbpf::attach::tcx::{self, Anchor, Direction};
use tcbpf::attach::{attach, AttachError, AttachTarget, Attachment, Hook};
use tcbpf::sys::link;
use tcbpf::tc::classic::parse_bytecode;
use tcbpf::tc::{device, Socket, TcHandle};
use tcbpf_testkit::*;

fn veth_in(ns: &Netns) -> u32 {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap())
}

#[test]
fn cls_bpf_target_attaches_a_filter_with_its_pref_and_handle_and_creates_clsact() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let prog = constant_prog(PASS);
    ns.run(|| {
        let target = AttachTarget {
            pref: 7,
            handle: 3,
            direct_action: true,
            ..AttachTarget::new(ifindex, Hook::Parent(TcHandle::INGRESS))
        };
        let got = attach(&target, prog.as_fd().into(), "one.o:[classifier]").unwrap();
        assert!(matches!(
            got,
            Attachment::Filter {
                created_clsact: true
            }
        ));
        let sel = FilterSelector {
            ifindex,
            parent: TcHandle::INGRESS,
            pref: 0,
            protocol: None,
            handle: 0,
            chain: None,
        };
        let listed = filter::list(&Socket::open().unwrap(), &sel).unwrap();
        let f = listed
            .iter()
            .find(|f| f.handle == 3)
            .expect("the filter is listed");
        assert_eq!(f.pref, 7);
        assert_eq!(
            f.bpf.as_ref().unwrap().name.as_deref(),
            Some("one.o:[classifier]")
        );
    });
}

#[test]
fn tcx_target_returns_the_link_at_its_anchor() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let (a, b) = (constant_prog(PASS), constant_prog(SHOT));
    ns.run(|| {
        let tail = AttachTarget::new(ifindex, Hook::Tcx(Direction::Ingress));
        let (la, ida) = attach(&tail, a.as_fd().into(), "")
            .unwrap()
            .into_link()
            .unwrap();
        assert_eq!(link::link_info(&la).unwrap().id, ida);
        let head = AttachTarget {
            anchor: Anchor::Head,
            ..tail.clone()
        };
        let (_lb, _) = attach(&head, b.as_fd().into(), "")
            .unwrap()
            .into_link()
            .unwrap();
        let ids: Vec<u32> = tcx::list(ifindex, Direction::Ingress)
            .unwrap()
            .iter()
            .map(|p| p.link_id)
            .collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1], ida, "the first link is behind the head one");
    });
}

#[test]
fn missing_action_pin_and_classic_on_tcx_name_the_step_that_failed() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let ifindex = veth_in(&ns);
    let prog = constant_prog(PASS);
    ns.run(|| {
        let target = AttachTarget {
            actions: vec!["/sys/fs/bpf/surely/not/here".into()],
            ..AttachTarget::new(ifindex, Hook::Parent(TcHandle::INGRESS))
        };
        match attach(&target, prog.as_fd().into(), "x") {
            Err(AttachError::Action { path, source }) => {
                assert_eq!(path.to_str(), Some("/sys/fs/bpf/surely/not/here"));
                assert_eq!(source.errno(), Some(libc::ENOENT));
            }
            other => panic!("expected an action error, got {other:?}"),
        }
        let insns = parse_bytecode("1,6 0 0 0").unwrap();
        let tcx = AttachTarget::new(ifindex, Hook::Tcx(Direction::Egress));
        assert!(matches!(
            attach(&tcx, filter::FilterProg::Classic(&insns), ""),
            Err(AttachError::ClassicOnTcx)
        ));
    });
}

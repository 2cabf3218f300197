//! XDP through the one attach call (`attach::attach` with
//! `Hook::Xdp`): by netlink (`add` refuses a second program, `replace`
//! swaps it), in a bpf link (swapped in place with `attach::xdp::update`), what
//! `attach::xdp::query` and `devices` report, what `attach::xdp::detach` leaves, and
//! a classic program refused. Objects load with `ProgKind::Xdp`, the same
//! loader as classifiers. Each test works in a namespace it creates.

use std::os::fd::AsFd;
use tcbpf::attach::cls_bpf::Mode;
use tcbpf::attach::xdp::{self, XdpMode, XdpProgram};
use tcbpf::attach::{attach, AttachError, AttachTarget, Attachment, Hook};
use tcbpf::load::{load_file, LoadOptions, LoadedObject, ProgKind};
use tcbpf::sys::link;
use tcbpf::tc::{device, Socket};
use tcbpf_testkit::*;

fn veth_in(ns: &Netns) -> u32 {
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns.run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap())
}

fn load(fs: &Bpffs, file: &str, section: &str) -> LoadedObject {
    let opts = LoadOptions {
        prog_type: ProgKind::Xdp,
        section: Some(section.to_string()),
        ..fs.options()
    };
    load_file(&fixture(file), &opts).expect("load the XDP object")
}

fn prog_id(obj: &LoadedObject) -> u32 {
    tcbpf::sys::info::prog_info(&obj.main_program().fd)
        .unwrap()
        .id
}

fn target(ifindex: u32, mode: XdpMode, link: bool) -> AttachTarget<'static> {
    AttachTarget::new(ifindex, Hook::Xdp { mode, link })
}

#[test]
fn netlink_xdp_add_refuses_a_second_program_and_replace_swaps_it() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    let ifindex = veth_in(&ns);
    let legacy = load(&fs, "xdp_legacy.o", "xdp");
    let btf = load(&fs, "xdp_btf.o", "xdp/pass");
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let add = target(ifindex, XdpMode::Driver, false);
        let got = attach(&add, legacy.main_program().fd.as_fd().into(), "").unwrap();
        assert!(matches!(got, Attachment::Xdp));
        let one = |id| {
            vec![XdpProgram {
                mode: XdpMode::Driver,
                prog_id: id,
                link_id: 0,
            }]
        };
        assert_eq!(xdp::query(&sock, ifindex).unwrap(), one(prog_id(&legacy)));

        let again = attach(&add, btf.main_program().fd.as_fd().into(), "");
        let Err(AttachError::Attach(e)) = again else {
            panic!("a second add must fail: {again:?}");
        };
        assert_eq!(e.errno(), Some(libc::EBUSY), "{e}");
        assert_eq!(xdp::query(&sock, ifindex).unwrap(), one(prog_id(&legacy)));

        let replace = AttachTarget {
            mode: Mode::Replace,
            ..target(ifindex, XdpMode::Driver, false)
        };
        attach(&replace, btf.main_program().fd.as_fd().into(), "").unwrap();
        assert_eq!(xdp::query(&sock, ifindex).unwrap(), one(prog_id(&btf)));
        let devices = xdp::devices(&sock).unwrap();
        let v0 = devices.iter().find(|d| d.name == "v0").unwrap();
        assert_eq!((v0.ifindex, v0.xdp.clone()), (ifindex, one(prog_id(&btf))));

        let gone = xdp::detach(&sock, ifindex, XdpMode::Auto).unwrap();
        assert_eq!(gone, one(prog_id(&btf)));
        assert!(xdp::query(&sock, ifindex).unwrap().is_empty());
        assert!(xdp::detach(&sock, ifindex, XdpMode::Auto)
            .unwrap()
            .is_empty());
    });
}

#[test]
fn xdp_link_is_updated_in_place_and_detached_by_detach() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let fs = Bpffs::new();
    let ifindex = veth_in(&ns);
    let verdict = load(&fs, "xdp_btf.o", "xdp");
    let pass = load(&fs, "xdp_btf.o", "xdp/pass");
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let t = target(ifindex, XdpMode::Generic, true);
        let (link, id) = attach(&t, verdict.main_program().fd.as_fd().into(), "")
            .unwrap()
            .into_link()
            .expect("a link");
        let info = link::link_info(&link).unwrap();
        assert_eq!(
            (info.link_type, info.ifindex, info.prog_id),
            (xdp::LINK_TYPE_XDP, ifindex, prog_id(&verdict))
        );
        let q = xdp::query(&sock, ifindex).unwrap();
        assert_eq!(
            q,
            vec![XdpProgram {
                mode: XdpMode::Generic,
                prog_id: prog_id(&verdict),
                link_id: id
            }]
        );
        // Pinned, reopened by its pin, swapped in place.
        let pin = fs.join("xdp_link");
        tcbpf::sys::obj::pin(&link, &pin).unwrap();
        let (again, info) = xdp::open_pinned(&pin).unwrap();
        assert_eq!(info.id, id);
        xdp::update(&again, pass.main_program().fd.as_fd()).unwrap();
        let q = xdp::query(&sock, ifindex).unwrap();
        assert_eq!((q[0].prog_id, q[0].link_id), (prog_id(&pass), id));
        // Netlink cannot replace a link's program; detach goes through it.
        let over = attach(
            &AttachTarget {
                mode: Mode::Replace,
                ..target(ifindex, XdpMode::Generic, false)
            },
            verdict.main_program().fd.as_fd().into(),
            "",
        );
        assert!(matches!(over, Err(AttachError::Attach(_))), "{over:?}");
        let gone = xdp::detach(&sock, ifindex, XdpMode::Generic).unwrap();
        assert_eq!(gone[0].link_id, id);
        assert!(xdp::query(&sock, ifindex).unwrap().is_empty());
        assert_eq!(link::link_info(&link).unwrap().ifindex, 0, "defunct link");
        std::fs::remove_file(&pin).unwrap();
        // A pin that is no XDP link is refused by name.
        let e = xdp::open_pinned(&fs.join("nothing")).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
    });
}

#[test]
fn a_classic_program_is_refused_on_the_xdp_hook() {
    tcbpf_testkit::require_root!();
    let insns = tcbpf::tc::classic::parse_bytecode("1,6 0 0 0").unwrap();
    let got = attach(
        &target(1, XdpMode::Auto, false),
        tcbpf::attach::cls_bpf::FilterProg::Classic(&insns),
        "",
    );
    assert!(matches!(got, Err(AttachError::ClassicOnTcx)), "{got:?}");
}

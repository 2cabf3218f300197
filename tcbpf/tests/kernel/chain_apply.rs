//! `attach::chain::apply` as an agent calls it, on a real veth's tcx hook
//! with the chain's pins in a private bpffs: a chain goes on in order, a
//! second apply of it keeps every link, a program listed twice is refused
//! (bad input) before the hook is touched, and an empty chain detaches
//! what the chain attached, pins included.

use tcbpf::attach::chain::{self, ApplyError, ChainEntry, ChainHook};
use tcbpf::attach::tcx::{self, Direction};
use tcbpf::sys::{info, obj};
use tcbpf::tc::{bpffs, device, Socket};
use tcbpf_testkit::*;

#[test]
fn a_chain_goes_on_in_order_stays_when_reapplied_and_a_repeated_program_changes_nothing() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let fs = Bpffs::new();
    // The chain's links are pinned under the bpffs root: this test's own
    // mount (the only test of this binary, so no other reads the variable).
    std::env::set_var(bpffs::ENV_MNT, fs.as_str());
    let (a, b) = (constant_prog(PASS), constant_prog(PASS));
    let ids = [
        info::prog_info(&a).unwrap().id,
        info::prog_info(&b).unwrap().id,
    ];
    obj::pin(&a, &fs.join("a")).unwrap();
    obj::pin(&b, &fs.join("b")).unwrap();
    let entry = |name: &str| ChainEntry::Pinned(fs.join(name));

    pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        let hook = ChainHook {
            dev: "v1",
            ifindex,
            direction: Direction::Ingress,
        };
        let on_hook = || -> Vec<u32> {
            tcx::list(ifindex, Direction::Ingress)
                .unwrap()
                .iter()
                .map(|p| p.prog_id)
                .collect()
        };
        let pins = || std::fs::read_dir(hook.dir()).unwrap().count();
        let mut retries = 0;
        let mut count = |_: &ApplyError| retries += 1;

        let first = chain::apply(&hook, &[entry("a"), entry("b")], &mut count).unwrap();
        assert_eq!(on_hook(), ids, "in the chain's order");
        let attached: Vec<u32> = first.attached.iter().map(|l| l.prog_id).collect();
        assert_eq!((attached, first.kept.len(), pins()), (ids.to_vec(), 0, 2));

        let again = chain::apply(&hook, &[entry("a"), entry("b")], &mut count).unwrap();
        let links: Vec<u32> = first.attached.iter().map(|l| l.link_id).collect();
        assert_eq!(again.kept, links, "both links stay");
        assert!(again.attached.is_empty() && again.detached.is_empty());

        let twice = chain::apply(&hook, &[entry("a"), entry("a")], &mut count).unwrap_err();
        assert!(
            matches!(twice, ApplyError::Duplicate { entry: 2 }),
            "{twice:?}"
        );
        assert_eq!(twice.kind(), tcbpf::ErrorKind::BadInput);
        assert_eq!(on_hook(), ids, "untouched");

        let emptied = chain::apply(&hook, &[], &mut count).unwrap();
        let mut detached = emptied.detached.clone();
        detached.sort_unstable();
        let mut want = links.clone();
        want.sort_unstable();
        assert_eq!(detached, want);
        assert!(on_hook().is_empty(), "nothing left on the hook");
        assert_eq!(pins(), 0, "no pin left");
        assert_eq!(retries, 0, "nobody else changed the hook");
    });
}

//! `filter add … bpf obj FILE` failing end to end: each bad input gets one
//! clear error and a non-zero exit, and nothing half-made by tcbpf remains:
//! no clsact qdisc it created for the failed filter, no pins it made in the
//! test's bpffs. An export nobody receives is the one failure that leaves
//! the filter attached, as tc does.

use crate::e2e_support;

use e2e_support::*;

/// A namespace with a veth pair (v0, v1) and no qdisc yet, and a bpffs.
struct World {
    ns: Netns,
    fs: Bpffs,
}

impl World {
    fn new() -> World {
        let ns = Netns::new();
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["link", "set", "v0", "up"]);
        World {
            ns,
            fs: Bpffs::new(),
        }
    }

    /// `tcbpf -n NS filter REST`.
    fn filter(&self, rest: &str) -> std::process::Command {
        tcbpf(&format!("-n {} filter {rest}", self.ns.name), &self.fs.path)
    }

    fn has_clsact(&self) -> bool {
        tc(&self.ns, "qdisc show dev v0").contains("clsact")
    }

    /// Neither a clsact qdisc nor a pin was left behind.
    fn assert_untouched(&self, what: &str) {
        assert!(!self.has_clsact(), "{what}: clsact qdisc left behind");
        assert_eq!(
            pins(&self.fs.path),
            Vec::<String>::new(),
            "{what}: pins left behind"
        );
        assert_eq!(
            tc(&self.ns, "filter show dev v0 ingress"),
            "",
            "{what}: a filter"
        );
    }
}

#[test]
fn export_to_a_socket_nobody_listens_on_fails_but_the_filter_stays() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let dir = TempDir::new("e2e");
    let uds = dir.join("nobody.sock");
    let obj = object("verdict_legacy.o");
    let (code, err) = fails(w.filter(&format!(
        "add dev v0 ingress bpf da obj {obj} sec classifier export {}",
        uds.display()
    )));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nobody is listening"), "{err}");
    assert!(err.contains(&uds.display().to_string()), "{err}");
    assert!(
        err.contains("filter 'verdict_legacy.o:[classifier]' is attached"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let shown = tc(&w.ns, "filter show dev v0 ingress");
    assert!(
        shown.contains("verdict_legacy.o:[classifier] direct-action"),
        "{shown}"
    );
    // The same through TC_BPF_UDS, as tc takes it.
    let mut cmd = w.filter(&format!(
        "add dev v0 egress bpf da obj {obj} sec classifier"
    ));
    cmd.env("TC_BPF_UDS", &uds);
    let (_, err) = fails(cmd);
    assert!(err.contains("nobody is listening"), "{err}");
    assert!(tc(&w.ns, "filter show dev v0 egress").contains("verdict_legacy.o"));

    // A socket file whose importer has gone (bound, then closed).
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    let (code, err) = fails(w.filter(&format!(
        "add dev v0 ingress pref 9 bpf da obj {obj} sec classifier export {}",
        stale.display()
    )));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nobody is listening"), "{err}");
    assert!(tc(&w.ns, "filter show dev v0 ingress pref 9").contains("verdict_legacy.o"));
}

#[test]
fn unknown_device_fails_and_leaves_nothing() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let obj = object("verdict_legacy.o");
    let (code, err) = fails(w.filter(&format!(
        "add dev nosuch0 ingress bpf da obj {obj} sec classifier"
    )));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nosuch0"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    w.assert_untouched("unknown device");
}

#[test]
fn missing_section_fails_and_leaves_nothing() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let obj = object("verdict_legacy.o");
    let (code, err) = fails(w.filter(&format!(
        "add dev v0 ingress bpf da obj {obj} sec nosuchsec"
    )));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nosuchsec"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    w.assert_untouched("missing section");
}

#[test]
fn verifier_rejection_names_the_section_with_the_log_tail_and_leaves_nothing() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let obj = object("reject.o");
    let (code, err) = fails(w.filter(&format!(
        "add dev v0 ingress bpf da obj {obj} sec classifier"
    )));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("section 'classifier'"), "{err}");
    assert!(err.contains("rejected"), "{err}");
    assert!(err.contains("verifier log"), "{err}");
    assert!(err.contains("invalid access to packet"), "log tail: {err}");
    w.assert_untouched("verifier rejection");
}

#[test]
fn namespace_that_does_not_exist_fails_clearly() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let ns = unique("tcbpf-nosuch-");
    let obj = object("verdict_legacy.o");
    let (code, err) = fails(tcbpf(
        &format!("-n {ns} filter add dev v0 ingress bpf da obj {obj} sec classifier"),
        &fs.path,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&ns), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(pins(&fs.path), Vec::<String>::new());
}

#[test]
fn busy_handle_fails_and_keeps_the_first_filter_its_qdisc_and_its_pins() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let obj = object("verdict_legacy.o");
    let add = format!("add dev v0 ingress pref 5 handle 1 bpf da obj {obj} sec classifier");
    ok(w.filter(&add));
    let before_pins = pins(&w.fs.path);
    assert_eq!(before_pins, ["tc/globals/stats"]);
    let before = tc(&w.ns, "filter show dev v0 ingress");
    let (code, err) = fails(w.filter(&add));
    assert_ne!(code, 0);
    assert!(err.contains("v0"), "{err}");
    assert!(err.to_lowercase().contains("exist"), "{err}");
    assert_eq!(tc(&w.ns, "filter show dev v0 ingress"), before);
    assert!(w.has_clsact());
    assert_eq!(pins(&w.fs.path), before_pins);
}

#[test]
fn failed_attach_removes_the_pins_its_load_created() {
    tcbpf_testkit::require_root!();
    // The first load pins `stats`; a second object with a new pin would
    // leave an orphan if its attach failed. Here: the clsact qdisc exists
    // with a filter on the handle, so the second attach fails after load.
    let w = World::new();
    let legacy = object("verdict_legacy.o");
    ok(w.filter(&format!(
        "add dev v0 ingress pref 5 handle 1 bpf da obj {legacy} sec classifier"
    )));
    // Remove the first pin: the failing load must create it anew and then
    // take it away again.
    std::fs::remove_file(w.fs.join("tc/globals/stats")).unwrap();
    let (_, err) = fails(w.filter(&format!(
        "add dev v0 ingress pref 5 handle 1 bpf da obj {legacy} sec classifier"
    )));
    assert!(err.to_lowercase().contains("exist"), "{err}");
    assert_eq!(pins(&w.fs.path), Vec::<String>::new(), "orphan pin left");
}

#[test]
fn attach_failing_after_load_removes_the_qdisc_and_pins_it_made() {
    tcbpf_testkit::require_root!();
    // The kernel here has no act_bpf: the filter fails after tcbpf loaded
    // the object (pinning `stats`) and created the clsact qdisc for it.
    let w = World::new();
    let action = constant_prog(PASS);
    let action_pin = w.fs.join("action");
    tcbpf::sys::obj::pin(&action, &action_pin).unwrap();
    let obj = object("verdict_legacy.o");
    let (code, err) = fails(w.filter(&format!(
        "add dev v0 ingress bpf da obj {obj} sec classifier action bpf pinned {}",
        s(&action_pin)
    )));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("act_bpf is not supported by this kernel"),
        "{err}"
    );
    assert!(!w.has_clsact(), "clsact qdisc left behind");
    assert_eq!(pins(&w.fs.path), ["action"], "only the test's own pin");
    let left: Vec<String> = tree(&w.fs.path)
        .into_iter()
        .filter(|p| p != "maps.debug" && p != "progs.debug")
        .collect();
    assert_eq!(
        left,
        ["action"],
        "no directory the load made (tc/globals) stays"
    );
}

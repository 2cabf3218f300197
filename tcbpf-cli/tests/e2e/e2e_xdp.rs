//! XDP end to end, on a veth pair between two namespaces with real UDP:
//! `tcbpf link set dev v1 { xdpdrv | xdpgeneric | xdp } …` loads a legacy
//! or a BTF object with the same loader as `filter … obj`, exports its maps
//! into `tcbpf exec bpf import` and iproute2's `tc exec bpf import`, whose
//! scripts block a port; the far side's socket and the `xdp_stats` map
//! count exactly what passed and what was dropped. `ip -j link show` must
//! agree with `tcbpf net show`; the pinned-link form must swap its program
//! in place (same link id); `off` must leave no program, link or pin.

use crate::e2e_support;

use e2e_support::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const BLOCKED: u16 = 7101;
const OPEN: u16 = 7102;
const TO_BLOCKED: usize = 20;
const TO_OPEN: usize = 30;

/// Two namespaces joined by veth (v1 in `b` receives), a bpffs and a
/// private directory; dropped in reverse order, so the namespaces (and with
/// them any netlink-attached XDP program) go.
struct World {
    net: VethPair,
    fs: Bpffs,
    dir: TempDir,
}

impl World {
    fn new() -> World {
        World {
            net: VethPair::new(),
            fs: Bpffs::new(),
            dir: TempDir::new("xdp"),
        }
    }

    fn uds(&self) -> PathBuf {
        self.dir.join("maps.sock")
    }

    /// `tcbpf -n B WORDS…`: its output (panics on failure).
    fn tcbpf_b(&self, line: &str) -> String {
        ok(tcbpf(
            &format!("-n {} {line}", self.net.b.name),
            &self.fs.path,
        ))
    }

    /// `tcbpf -j -n B WORDS…` as JSON.
    fn json_b(&self, line: &str) -> Value {
        let out = self.tcbpf_b(&format!("-j {line}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: {e}: {out}"))
    }

    /// `ip -j link show dev v1`'s `xdp` object (`None`: no program).
    fn ip_link_xdp(&self) -> Option<Value> {
        let out = self.net.b.ip(&["-j", "link", "show", "dev", "v1"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0].get("xdp").cloned()
    }

    /// `net show dev v1`'s XDP entries.
    fn net_xdp(&self) -> Vec<Value> {
        self.json_b("net show dev v1")[0]["xdp"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits for the importer's script, sends the traffic, and returns how
    /// many datagrams arrived (blocked, open).
    fn traffic(&self) -> (usize, usize) {
        assert!(
            wait_for(&self.dir.join("ready"), Duration::from_secs(10)),
            "the importer's script never became ready"
        );
        let blocked = self.net.send_udp(BLOCKED, TO_BLOCKED);
        let open = self.net.send_udp(OPEN, TO_OPEN);
        std::fs::write(self.dir.join("done"), b"").unwrap();
        (blocked, open)
    }

    /// The importer's script: record the environment, block BLOCKED
    /// through `blocked` (a MAP's words after `env`), hold the maps until
    /// the traffic is through, then dump `stats`.
    fn script(&self, blocked: &str, stats: &str) -> String {
        format!(
            "env > {env}; \
             \"$TCBPF\" map update env {blocked} key be16 {BLOCKED} value u32 1 || exit 9; \
             {hold}; \
             \"$TCBPF\" map dump env {stats} key u32 value u64",
            env = self.dir.join("env").display(),
            hold = hold_until_done(&self.dir.0),
        )
    }

    /// Checks that v1 runs program `id` in `mode` by both `ip` and tcbpf
    /// (`ip`'s attach mode: 1 driver, 2 generic), then sets it off and
    /// checks that both see nothing.
    fn agree_then_off(&self, word: &str, ip_mode: u64, mode: &str) -> u64 {
        let ip = self.ip_link_xdp().expect("ip link shows an XDP program");
        let ours = self.net_xdp();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(ip["mode"], ip_mode, "{ip}");
        assert_eq!(ours[0]["mode"], mode);
        assert_eq!(ours[0]["id"], ip["prog"]["id"], "ip: {ip}, tcbpf: {ours:?}");
        assert_eq!(ours[0]["prog_name"], "xdp_verdict");
        assert_eq!(ours[0]["map_ids"].as_array().unwrap().len(), 2);
        let id = ours[0]["id"].as_u64().unwrap();
        self.tcbpf_b(&format!("link set dev v1 {word} off"));
        assert_eq!(self.ip_link_xdp(), None);
        assert!(self.net_xdp().is_empty());
        id
    }
}

fn importer_out(mut importer: Importer) -> String {
    let out = importer.finish();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "importer failed ({:?}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn native_xdp_with_a_legacy_object_exported_into_tcbpf_import_drops_real_traffic() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let mut cmd = tcbpf("exec bpf import", &w.fs.path);
    cmd.arg(w.uds())
        .args(["run", "sh", "-c", &w.script("XDP_BLOCKED", "XDP_STATS")])
        .env("TCBPF", TCBPF);
    let importer = Importer::start(cmd, &w.uds());
    w.tcbpf_b(&format!(
        "link set dev v1 xdpdrv obj {} export {}",
        object("xdp_legacy.o"),
        w.uds().display()
    ));
    assert_eq!(
        w.traffic(),
        (0, TO_OPEN),
        "datagrams received (blocked, open)"
    );
    assert_eq!(
        importer_out(importer).trim(),
        format!("key: 0  value: {TO_OPEN}\nkey: 1  value: {TO_BLOCKED}")
    );
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert_eq!(
        env["BPF_MAP7"], env["BPF_MAP_XDP_BLOCKED"],
        "legacy ids kept"
    );
    assert_eq!(env["BPF_MAP3"], env["BPF_MAP_XDP_STATS"]);
    w.agree_then_off("xdpdrv", 1, "driver");
}

#[test]
fn generic_xdp_with_a_btf_object_exported_into_iproute2_tc_import_drops_real_traffic() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    // tc sets only BPF_NUM_MAPS and BPF_MAP<id>; BTF maps are numbered in
    // object order: xdp_blocked 0, xdp_stats 1.
    let mut cmd = std::process::Command::new("tc");
    cmd.args(["exec", "bpf", "import"])
        .arg(w.uds())
        .args(["run", "sh", "-c", &w.script("0", "1")])
        .env("TCBPF", TCBPF)
        .env("TC_BPF_MNT", &w.fs.path);
    let importer = Importer::start(cmd, &w.uds());
    w.tcbpf_b(&format!(
        "link set dev v1 xdpgeneric obj {} sec xdp export {}",
        object("xdp_btf.o"),
        w.uds().display()
    ));
    assert_eq!(
        w.traffic(),
        (0, TO_OPEN),
        "datagrams received (blocked, open)"
    );
    assert_eq!(
        importer_out(importer).trim(),
        format!("key: 0  value: {TO_OPEN}\nkey: 1  value: {TO_BLOCKED}")
    );
    let env = env_vars(&std::fs::read_to_string(w.dir.join("env")).unwrap());
    assert_eq!(env["BPF_NUM_MAPS"], "2");
    assert!(!env.contains_key("BPF_MAP_XDP_STATS"), "tc sets no names");
    w.agree_then_off("xdpgeneric", 2, "generic");
}

/// The map among `map_ids` whose kernel name is `name`.
fn map_named(w: &World, map_ids: &Value, name: &str) -> u64 {
    for id in map_ids.as_array().unwrap() {
        let id = id.as_u64().unwrap();
        if w.json_b(&format!("map show id {id}"))["name"] == name {
            return id;
        }
    }
    panic!("no map '{name}' among {map_ids}");
}

#[test]
fn pinned_xdp_link_swaps_its_program_in_place_and_off_leaves_nothing() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let pin = w.fs.join("xdp_link");
    let obj = object("xdp_btf.o");
    // Run statistics on while this descriptor lives (BPF_ENABLE_STATS).
    let _stats = tcbpf::sys::prog::enable_stats().expect("BPF_ENABLE_STATS");
    w.tcbpf_b(&format!(
        "link set dev v1 xdp obj {obj} pin {}",
        pin.display()
    ));
    let first = w.net_xdp();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["mode"], "driver", "veth runs XDP natively");
    let link_id = first[0]["link_id"].as_u64().expect("held by a link");
    let prog_id = first[0]["id"].as_u64().unwrap();
    let blocked = map_named(&w, &first[0]["map_ids"], "xdp_blocked");
    w.tcbpf_b(&format!(
        "map update id {blocked} key be16 {BLOCKED} value u32 1"
    ));
    assert_eq!(w.net.send_udp(BLOCKED, TO_BLOCKED), 0, "the verdict drops");

    // `prog show` names the program, its maps, BTF, runs and attach point.
    let p = w.json_b(&format!("prog show id {prog_id}"));
    assert_eq!(p["type"], "xdp");
    assert_eq!(p["name"], "xdp_verdict");
    assert_eq!(p["tag"].as_str().unwrap().len(), 16);
    assert_eq!(p["gpl_compatible"], true);
    assert_ne!(p["btf_id"].as_u64().unwrap_or(0), 0, "{p}");
    assert_eq!(p["map_ids"], first[0]["map_ids"]);
    assert!(
        p["run_cnt"].as_u64().unwrap_or(0) >= TO_BLOCKED as u64,
        "{p}"
    );
    assert_eq!(
        p["attached"],
        serde_json::json!([{"devname": "v1", "ifindex": first[0]["ifindex"], "kind": "xdp/driver", "link_id": link_id}])
    );

    // Again with the same pin: the link keeps its id, the program changes.
    w.tcbpf_b(&format!(
        "link set dev v1 xdp obj {obj} sec xdp/pass pin {}",
        pin.display()
    ));
    let second = w.net_xdp();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["link_id"], link_id, "updated in place");
    assert_ne!(second[0]["id"], prog_id);
    assert_eq!(second[0]["prog_name"], "xdp_pass_all");
    assert_eq!(second[0]["id"], w.ip_link_xdp().unwrap()["prog"]["id"]);
    assert_eq!(
        w.net.send_udp(BLOCKED, TO_BLOCKED),
        TO_BLOCKED,
        "all pass now"
    );

    // A plain `off` could not remove a pinned link's pin; `off pin` does.
    w.tcbpf_b(&format!("link set dev v1 xdp off pin {}", pin.display()));
    assert!(pin.symlink_metadata().is_err(), "the pin is removed");
    assert_eq!(w.ip_link_xdp(), None);
    assert!(w.net_xdp().is_empty());
    let links: Value =
        serde_json::from_str(&tcbpf_testkit::run("bpftool", &["-j", "link", "show"])).unwrap();
    assert!(
        !links.as_array().unwrap().iter().any(|l| l["id"] == link_id),
        "link {link_id} still exists: {links}"
    );
}

#[test]
fn bad_xdp_requests_exit_with_their_code_and_change_nothing() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let b = &w.net.b.name;
    let run = |line: &str| tcbpf_testkit::output(tcbpf(&format!("-n {b} {line}"), &w.fs.path));
    let obj = object("xdp_legacy.o");
    let r = run("link set dev v1 xdpfast off");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown xdp mode 'xdpfast'"),
        "{}",
        r.stderr
    );
    let r = run("link set dev nosuch0 xdp off");
    assert!(
        r.stderr.contains("no such device 'nosuch0'"),
        "{}",
        r.stderr
    );
    let r = run(&format!(
        "link set dev v1 xdp obj {}",
        w.dir.join("missing.o").display()
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = run(&format!("link set dev v1 xdp obj {obj} sec nosuch"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("section 'nosuch'"), "{}", r.stderr);
    // A veth offloads nothing; tcbpf loads for the host: said, not EINVAL alone.
    let r = run(&format!("link set dev v1 xdpoffload obj {obj}"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("offload needs a NIC that runs XDP itself"),
        "{}",
        r.stderr
    );
    assert_eq!(w.ip_link_xdp(), None, "nothing attached by the failures");

    // A second netlink attach is refused; the first program stays.
    w.tcbpf_b(&format!("link set dev v1 xdpdrv obj {obj}"));
    let id = w.ip_link_xdp().unwrap()["prog"]["id"].clone();
    let r = run(&format!("link set dev v1 xdpdrv obj {obj}"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("already attached"), "{}", r.stderr);
    assert_eq!(w.ip_link_xdp().unwrap()["prog"]["id"], id);
    // So is a link over it, and a pin that is not an XDP link.
    let pin = w.fs.join("l");
    let r = run(&format!(
        "link set dev v1 xdp obj {obj} pin {}",
        pin.display()
    ));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("already attached"), "{}", r.stderr);
    assert!(pin.symlink_metadata().is_err(), "no pin left");
    let r = run(&format!(
        "link set dev v1 xdp off pin {}",
        w.fs.join("none").display()
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(w.ip_link_xdp().unwrap()["prog"]["id"], id, "still attached");
    w.tcbpf_b("link set dev v1 xdp off");
    assert_eq!(w.ip_link_xdp(), None);

    // A link set off without its pin: a note, and the pin stays; it cannot
    // take a program any more, and `off pin` removes it.
    w.tcbpf_b(&format!(
        "link set dev v1 xdp obj {obj} pin {}",
        pin.display()
    ));
    let r = run("link set dev v1 xdp off");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("a pin of it stays until removed"),
        "{}",
        r.stderr
    );
    assert_eq!(w.ip_link_xdp(), None);
    let r = run(&format!(
        "link set dev v1 xdp obj {obj} pin {}",
        pin.display()
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is detached"), "{}", r.stderr);
    assert_eq!(w.ip_link_xdp(), None, "nothing attached by the refusal");
    w.tcbpf_b(&format!("link set dev v1 xdp off pin {}", pin.display()));
    assert!(pin.symlink_metadata().is_err(), "the pin is removed");
}

/// `o` with only the keys `like` has.
fn only_keys_of(o: &Value, like: &Value) -> Value {
    let keys = like.as_object().unwrap();
    Value::Object(
        o.as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| keys.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

#[test]
fn net_show_lists_xdp_clsact_and_tcx_with_bpftools_fields_and_more() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    w.tcbpf_b(&format!(
        "filter add dev v1 ingress pref 5 bpf da obj {} sec classifier",
        object("verdict_legacy.o")
    ));
    let tcx_pin = w.fs.join("tcx_link");
    w.tcbpf_b(&format!(
        "filter add dev v1 tcx egress bpf obj {} link {}",
        object("verdict_btf.o"),
        tcx_pin.display()
    ));
    w.tcbpf_b(&format!(
        "link set dev v1 xdpgeneric obj {}",
        object("xdp_legacy.o")
    ));
    let ours = w.json_b("net show");
    let theirs: Value = serde_json::from_str(&tcbpf_testkit::run(
        "ip",
        &[
            "netns",
            "exec",
            &w.net.b.name,
            "bpftool",
            "-j",
            "net",
            "show",
        ],
    ))
    .unwrap();
    // Every entry bpftool lists is ours, field for field.
    for hook in ["xdp", "tc"] {
        let t = theirs[0][hook].as_array().unwrap();
        assert!(!t.is_empty(), "bpftool lists no {hook}: {theirs}");
        for (i, entry) in t.iter().enumerate() {
            assert_eq!(&only_keys_of(&ours[0][hook][i], entry), entry, "{ours}");
        }
    }
    let xdp = &ours[0]["xdp"][0];
    assert_eq!(
        (xdp["mode"].as_str(), xdp["prog_name"].as_str()),
        (Some("generic"), Some("xdp_verdict"))
    );
    let tc = ours[0]["tc"].as_array().unwrap();
    assert_eq!(tc.len(), 2, "{ours}");
    assert_eq!(tc[0]["kind"], "clsact/ingress");
    assert_eq!(
        (tc[0]["pref"].as_u64(), tc[0]["prog_name"].as_str()),
        (Some(5), Some("verdict"))
    );
    // bpftool 7.1 does not know tcx; tcbpf lists it with its link.
    assert_eq!(tc[1]["kind"], "tcx/egress");
    assert_eq!(tc[1]["prog_name"], "verdict");
    assert_ne!(tc[1]["link_id"].as_u64().unwrap_or(0), 0, "{ours}");
    assert_eq!(tc[1]["map_ids"].as_array().unwrap().len(), 2);
    // The text form: one line per attachment, under its hook.
    let text = w.tcbpf_b("net show dev v1");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "xdp:");
    assert!(
        lines[1].starts_with(&format!(
            "v1({}) generic id {} name xdp_verdict maps ",
            xdp["ifindex"], xdp["id"]
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
        "clsact/ingress verdict_legacy.o:[classifier] pref 5 handle 0x1 id {} name verdict maps",
        tc[0]["id"]
    )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            " tcx/egress id {} name verdict maps ",
            tc[1]["id"]
        )),
        "{text}"
    );
    // A device that is not there is "not found".
    let r = tcbpf_testkit::output(tcbpf(
        &format!("-n {} net show dev nosuch0", w.net.b.name),
        &w.fs.path,
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    w.tcbpf_b(&format!(
        "filter del dev v1 tcx egress link {}",
        tcx_pin.display()
    ));
}

#[test]
fn a_pinned_xdp_program_from_obj_load_type_xdp_goes_on_with_pinned_path() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let prog_pin = w.fs.join("xdp_pass");
    let loaded = w.json_b(&format!(
        "obj load {} type xdp sec xdp/pass pin {}",
        object("xdp_btf.o"),
        prog_pin.display()
    ));
    let id = &loaded["program"]["id"];
    assert_ne!(id.as_u64().unwrap_or(0), 0, "{loaded}");
    let p = w.json_b(&format!("prog show pinned {}", prog_pin.display()));
    assert_eq!((&p["id"], p["type"].as_str()), (id, Some("xdp")));
    assert_eq!(p["attached"], serde_json::json!([]));
    w.tcbpf_b(&format!(
        "link set dev v1 xdpgeneric pinned {}",
        prog_pin.display()
    ));
    assert_eq!(&w.ip_link_xdp().unwrap()["prog"]["id"], id);
    let p = w.json_b(&format!("prog show pinned {}", prog_pin.display()));
    assert_eq!(p["attached"][0]["kind"], "xdp/generic");
    // bpftool's own JSON has every field of ours, with the same value and
    // type (run counts aside: statistics may be on and counting).
    let theirs: Value = serde_json::from_str(&tcbpf_testkit::run(
        "bpftool",
        &["-j", "prog", "show", "id", &id.to_string()],
    ))
    .unwrap();
    // And ours every field of bpftool's (`loaded_at` and `bytes_memlock`
    // among them): the same names, types and values; `loaded_at` is the
    // same second, or the next when the two reads straddle one.
    let counts = ["attached", "run_time_ns", "run_cnt", "loaded_at"];
    for (k, v) in p.as_object().unwrap() {
        if !counts.contains(&k.as_str()) {
            assert_eq!(Some(v), theirs.get(k), "{k}: ours {p}, bpftool's {theirs}");
        }
    }
    for (k, v) in theirs.as_object().unwrap() {
        if !counts.contains(&k.as_str()) {
            assert_eq!(Some(v), p.get(k), "{k}: ours {p}, bpftool's {theirs}");
        }
    }
    assert_ne!(p["bytes_memlock"].as_u64().unwrap_or(0), 0, "{p}");
    let (ours_at, theirs_at) = (p["loaded_at"].as_u64(), theirs["loaded_at"].as_u64());
    assert!(
        ours_at
            .zip(theirs_at)
            .is_some_and(|(a, b)| a.abs_diff(b) <= 1),
        "loaded_at: ours {p}, bpftool's {theirs}"
    );
    // `pids`: no process holds it (tcbpf's own descriptors aside); while
    // this test holds one, it is listed with its comm, as bpftool lists it.
    assert_eq!(p.get("pids"), None, "{p}");
    let held = tcbpf::sys::obj::get_pinned_prog(&prog_pin).unwrap();
    let p = w.json_b(&format!("prog show pinned {}", prog_pin.display()));
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(
        p["pids"],
        serde_json::json!([{"pid": std::process::id(), "comm": comm.trim_end()}]),
        "{p}"
    );
    drop(held);
    // Without a program: every one, this one among them, as in text.
    let all = w.json_b("prog show");
    let listed = all.as_array().unwrap().iter().find(|q| &q["id"] == id);
    // (run_cnt may move: another test may have statistics on.)
    let listed = listed.expect("prog show lists it");
    for field in ["name", "tag", "type", "map_ids", "btf_id", "attached"] {
        assert_eq!(listed[field], p[field], "{field}");
    }
    let text = w.tcbpf_b(&format!("prog show id {id}"));
    assert!(
        text.starts_with(&format!(
            "{id}: xdp  name xdp_pass_all  tag {}  gpl",
            p["tag"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n\tattached v1({}) xdp/generic\n",
            p["attached"][0]["ifindex"]
        )),
        "{text}"
    );
    // `xdpdrv off` leaves the generic program; `xdpgeneric off` takes it.
    w.tcbpf_b("link set dev v1 xdpdrv off");
    assert_eq!(&w.ip_link_xdp().unwrap()["prog"]["id"], id);
    w.tcbpf_b("link set dev v1 xdpgeneric off");
    assert_eq!(w.ip_link_xdp(), None);
}

#[test]
fn link_prog_and_net_help_say_their_docs_pages_words() {
    let (code, top, _) = run_bin(TCBPF, &["help"]);
    assert_eq!(code, 0);
    for (object, page) in [
        ("link", "docs/link-xdp.md"),
        ("prog", "docs/prog-net.md"),
        ("net", "docs/prog-net.md"),
    ] {
        let text = std::fs::read_to_string(repo().join(page)).unwrap();
        assert!(top.contains(&format!("tcbpf {object} help")), "{top}");
        let (code, help, _) = run_bin(TCBPF, &[object, "help"]);
        assert_eq!(code, 0, "{object} help");
        let grammar: Vec<&str> = help
            .lines()
            .map(|l| l.trim_start_matches("Usage:").trim())
            .filter(|l| (l.starts_with("tcbpf ") && !l.ends_with(" help")) || l.starts_with('{'))
            .collect();
        assert!(!grammar.is_empty(), "{help}");
        for line in grammar {
            assert!(text.contains(line), "{page} lacks: {line}");
        }
    }
}

//! Every `-j` output of the CLI against its schema in docs/json.md: the
//! commands run on a real map, real programs and real hooks (a veth pair in
//! namespaces of the test's own, a private bpffs), and each output is
//! validated with Python's `jsonschema` (Debian's python3-jsonschema,
//! installed by scripts/setup.sh). Also the rules the page states: `map
//! add -j` writes its key as `lookup -j` does, `map show -j` has
//! bpftool's fields with bpftool's values and types, and `map dump -j` of a
//! map with BTF is bpftool's and loads back with `map load … json`.

use std::io::Write;
use std::process::{Command, Stdio};
use tcbpf_testkit::*;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");

/// Runs tcbpf with the test's bpffs; its stdout, which must be a success.
fn tcbpf(fs: &Bpffs, args: &[&str]) -> String {
    ok(tcbpf_testkit::tcbpf(TCBPF, args, Some(&fs.path)))
}

/// A `map events` reader, killed on drop if it has not ended.
struct EventReader(Option<std::process::Child>);

impl EventReader {
    /// Starts tcbpf with `args` (with `-v`) and waits until it says it is
    /// reading (from then on no event is missed).
    fn start(args: &[&str]) -> EventReader {
        let mut child = Command::new(TCBPF)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader = EventReader(Some(child));
        let mut line = String::new();
        let mut lines = std::io::BufReader::new(stderr);
        use std::io::BufRead;
        while lines.read_line(&mut line).unwrap() > 0 && !line.contains("reading") {
            line.clear();
        }
        assert!(line.contains("reading"), "the reader never started: {line}");
        // Keep draining stderr so the reader never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        reader
    }

    /// Its standard output once it has ended (count or timeout).
    fn finish(mut self) -> String {
        let out = self.0.take().unwrap().wait_with_output().unwrap();
        assert!(out.status.success(), "map events: {:?}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A keeper process, killed on drop.
struct Keeper(std::process::Child);

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_cli_json_output_matches_its_schema_in_docs_json_md() {
    tcbpf_testkit::require_root!();
    let docs = json_schemas();
    assert!(docs.len() >= 12, "{} schemas", docs.len());
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("jsonschema");
    let ns = net.b.name.as_str();
    let pin = fs.path.join("h");
    let p = s(&pin);
    let mut outputs: Vec<(&str, String)> = Vec::new();
    fn run(fs: &Bpffs, outputs: &mut Vec<(&str, String)>, schema: &'static str, args: &[&str]) {
        let out = tcbpf(fs, args);
        outputs.push((schema, out));
    }

    run(
        &fs,
        &mut outputs,
        "map show",
        &[
            "-j", "map", "create", "type", "hash", "key", "4", "value", "8", "entries", "16",
            "name", "js_h", "pin", p,
        ],
    );
    tcbpf(
        &fs,
        &[
            "map", "update", "pinned", p, "key", "1", "0", "0", "0", "value", "5", "0", "0", "0",
            "0", "0", "0", "0",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map show",
        &["-j", "map", "show", "pinned", p],
    );
    run(&fs, &mut outputs, "map show", &["-j", "map", "show"]);
    run(
        &fs,
        &mut outputs,
        "map entry",
        &[
            "-j", "map", "lookup", "pinned", p, "key", "1", "0", "0", "0",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &[
            "-j", "map", "lookup", "pinned", p, "key", "u32", "1", "value", "u64",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &["-j", "map", "dump", "pinned", p],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &[
            "-j", "map", "dump", "pinned", p, "key", "u32", "value", "u64",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map next",
        &["-j", "map", "next", "pinned", p],
    );
    run(
        &fs,
        &mut outputs,
        "map add",
        &[
            "-j", "map", "add", "pinned", p, "key", "1", "0", "0", "0", "value", "3",
        ],
    );
    let percpu = fs.path.join("pc");
    run(
        &fs,
        &mut outputs,
        "map show",
        &[
            "-j",
            "map",
            "create",
            "type",
            "percpu_array",
            "key",
            "4",
            "value",
            "8",
            "entries",
            "2",
            "name",
            "js_pc",
            "pin",
            s(&percpu),
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &[
            "-j",
            "map",
            "lookup",
            "pinned",
            s(&percpu),
            "key",
            "u32",
            "0",
            "value",
            "u64",
        ],
    );
    let queue = fs.path.join("q");
    tcbpf(
        &fs,
        &[
            "map",
            "create",
            "type",
            "queue",
            "key",
            "0",
            "value",
            "4",
            "entries",
            "4",
            "name",
            "js_q",
            "pin",
            s(&queue),
        ],
    );
    tcbpf(
        &fs,
        &["map", "push", "pinned", s(&queue), "value", "u32", "7"],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &["-j", "map", "peek", "pinned", s(&queue), "value", "u32"],
    );

    // batch: one line per command, an entry or an error.
    let mut cmd = Command::new(TCBPF);
    cmd.args(["-j", "map", "batch"])
        .env("TC_BPF_MNT", &fs.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            format!("lookup pinned {p} key 1 0 0 0\nlookup pinned {p} key 9 0 0 0\n").as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let batch = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(batch.lines().count(), 2, "{batch}");
    outputs.push(("map entry", batch));
    // A map with BTF: bpftool's shape, hex sides and `formatted`.
    let (flows, cpus) = btf_maps(&fs);
    tcbpf(
        &fs,
        &[
            "map",
            "update",
            "pinned",
            s(&flows),
            "key",
            "proto",
            "17",
            "port",
            "53",
            "value",
            "packets",
            "5",
            "bytes",
            "300",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &["-j", "map", "dump", "pinned", s(&flows)],
    );
    run(
        &fs,
        &mut outputs,
        "map entry",
        &["-j", "map", "dump", "pinned", s(&cpus)],
    );

    let obj = fixture("btf_maps.o");
    let chain_o = fixture("chain.o");
    run(
        &fs,
        &mut outputs,
        "obj show",
        &["-j", "obj", "show", s(&obj)],
    );
    run(
        &fs,
        &mut outputs,
        "obj show",
        &["-j", "obj", "show", s(&fixture("legacy.o"))],
    );
    run(
        &fs,
        &mut outputs,
        "obj load",
        &[
            "-j",
            "obj",
            "load",
            s(&obj),
            "pin",
            s(&fs.path.join("prog")),
        ],
    );
    run(&fs, &mut outputs, "prog show", &["-j", "prog", "show"]);
    run(
        &fs,
        &mut outputs,
        "prog show",
        &["-j", "prog", "show", "pinned", s(&fs.path.join("prog"))],
    );

    tcbpf(&fs, &["-n", ns, "qdisc", "add", "dev", "v1", "clsact"]);
    tcbpf(
        &fs,
        &[
            "-n",
            ns,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "bpf",
            "da",
            "obj",
            s(&obj),
        ],
    );
    run(
        &fs,
        &mut outputs,
        "filter show",
        &["-j", "-n", ns, "filter", "show", "dev", "v1", "ingress"],
    );
    run(
        &fs,
        &mut outputs,
        "filter add tcx",
        &[
            "-j",
            "-n",
            ns,
            "filter",
            "add",
            "dev",
            "v1",
            "tcx",
            "ingress",
            "bpf",
            "obj",
            s(&chain_o),
            "sec",
            "tc",
            "program",
            "tc1",
        ],
    );
    run(
        &fs,
        &mut outputs,
        "filter show tcx",
        &[
            "-j", "-n", ns, "filter", "show", "dev", "v1", "tcx", "ingress",
        ],
    );
    let chain = dir.join("hook.chain");
    std::fs::write(&chain, format!("obj {} sec tc program tc2\n", s(&chain_o))).unwrap();
    run(
        &fs,
        &mut outputs,
        "chain apply",
        &[
            "-j",
            "-n",
            ns,
            "chain",
            "apply",
            "dev",
            "v1",
            "tcx",
            "egress",
            s(&chain),
        ],
    );
    // map events: events.o sends one event per datagram to port 7777 to
    // its ring buffer and its perf event array; a reader on each.
    tcbpf(
        &fs,
        &[
            "-n",
            ns,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "9",
            "bpf",
            "da",
            "obj",
            s(&fixture("events.o")),
            "sec",
            "classifier",
        ],
    );
    let shown: serde_json::Value =
        serde_json::from_str(&tcbpf(&fs, &["-j", "-n", ns, "net", "show", "dev", "v1"])).unwrap();
    let events_prog = shown[0]["tc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["prog_name"] == "events_cls")
        .expect("events_cls on v1")
        .clone();
    let map_of_type = |t: &str| -> String {
        events_prog["map_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap().to_string())
            .find(|id| {
                let v: serde_json::Value =
                    serde_json::from_str(&tcbpf(&fs, &["-j", "map", "show", "id", id])).unwrap();
                v["type"] == t
            })
            .unwrap_or_else(|| panic!("no {t} map"))
    };
    let readers: Vec<EventReader> = [map_of_type("ringbuf"), map_of_type("perf_event_array")]
        .iter()
        .map(|id| {
            EventReader::start(&[
                "-v", "-j", "map", "events", "id", id, "type", "event", "count", "2", "timeout",
                "20",
            ])
        })
        .collect();
    assert_eq!(net.send_udp(7777, 2), 2);
    for r in readers {
        outputs.push(("map events", r.finish()));
    }

    // map commit: a policy generation through policy_gen.o's map-in-map.
    tcbpf(
        &fs,
        &[
            "-n",
            ns,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "7",
            "bpf",
            "da",
            "obj",
            s(&fixture("policy_gen.o")),
            "sec",
            "classifier",
        ],
    );
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, "1000 1\n1001 1\n").unwrap();
    let outer = fs.path.join("tc/globals/policy");
    for last in [Some("plan"), None, Some("plan")] {
        let mut args = vec![
            "-j",
            "map",
            "commit",
            "pinned",
            s(&outer),
            "key",
            "u32",
            "value",
            "u32",
            "from",
            s(&policy),
        ];
        args.extend(last);
        run(&fs, &mut outputs, "map commit", &args);
    }
    run(
        &fs,
        &mut outputs,
        "map show",
        &["-j", "map", "show", "pinned", s(&outer)],
    );
    run(
        &fs,
        &mut outputs,
        "net show",
        &["-j", "-n", ns, "net", "show"],
    );
    run(
        &fs,
        &mut outputs,
        "net show",
        &["-j", "-n", ns, "net", "show", "dev", "v1"],
    );

    // exec bpf import -j: what a `map export` sent.
    let uds = SockPath::new("jsonschema");
    let mut imp = Importer::start(
        {
            let mut c = Command::new(TCBPF);
            c.args(["-j", "exec", "bpf", "import", s(&uds.0), "timeout", "10"]);
            c
        },
        &uds.0,
    );
    run(
        &fs,
        &mut outputs,
        "map export",
        &["-j", "map", "export", s(&uds.0), "pinned", p],
    );
    let out = imp.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    outputs.push((
        "exec import",
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ));

    // A keeper holding that map: list, status, and an import from it.
    let sock = dir.join("keeper.sock");
    let keeper_uds = dir.join("keeper-import.sock");
    let keeper = Keeper(
        Command::new(TCBPF)
            .args(["keeper", s(&sock), "import", s(&keeper_uds)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(&keeper_uds, std::time::Duration::from_secs(10)));
    tcbpf(&fs, &["map", "export", s(&keeper_uds), "pinned", p]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !tcbpf(&fs, &["keeper", "list", s(&sock)]).contains("js_h") {
        assert!(
            std::time::Instant::now() < deadline,
            "the keeper never listed the set"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run(
        &fs,
        &mut outputs,
        "keeper list",
        &["-j", "keeper", "list", s(&sock)],
    );
    run(
        &fs,
        &mut outputs,
        "keeper list",
        &["-j", "keeper", "status", s(&sock)],
    );
    run(
        &fs,
        &mut outputs,
        "exec import",
        &["-j", "exec", "bpf", "import", "keeper", s(&sock)],
    );
    // keeper send: the set, to an importer.
    let sent_to = SockPath::new("jsonsend");
    let mut imp = Importer::start(
        {
            let mut c = Command::new(TCBPF);
            c.args(["exec", "bpf", "import", s(&sent_to.0), "timeout", "10"]);
            c
        },
        &sent_to.0,
    );
    run(
        &fs,
        &mut outputs,
        "keeper send",
        &["-j", "keeper", "send", s(&sock), s(&sent_to.0)],
    );
    let out = imp.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(keeper);

    // filter upgrade: a plan, an upgrade, and one with nothing to do.
    tcbpf(
        &fs,
        &[
            "-n",
            ns,
            "filter",
            "add",
            "dev",
            "v1",
            "egress",
            "pref",
            "7",
            "handle",
            "1",
            "bpf",
            "da",
            "obj",
            s(&fixture("upgrade_v1.o")),
        ],
    );
    let v2 = fixture("upgrade_v2.o");
    let upgrade = [
        "-j",
        "-n",
        ns,
        "filter",
        "upgrade",
        "dev",
        "v1",
        "egress",
        "pref",
        "7",
        "handle",
        "1",
        "bpf",
        "obj",
        s(&v2),
    ];
    run(
        &fs,
        &mut outputs,
        "filter upgrade",
        &[&upgrade[..], &["plan"]].concat(),
    );
    run(&fs, &mut outputs, "filter upgrade", &upgrade);
    let again = tcbpf(&fs, &upgrade);
    assert!(again.contains("\"nothing_to_do\":true"), "{again}");
    outputs.push(("filter upgrade", again));

    let failures = schema_failures(&dir.join(""), &outputs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    tcbpf(
        &fs,
        &["-n", ns, "filter", "del", "dev", "v1", "tcx", "ingress"],
    );
    tcbpf(
        &fs,
        &["-n", ns, "filter", "del", "dev", "v1", "tcx", "egress"],
    );
}

/// stats_kinds.o's maps `flows` (a hash, struct key and value) and
/// `cpu_packets` (a per-CPU array) loaded into `fs` and pinned there.
fn btf_maps(fs: &Bpffs) -> (std::path::PathBuf, std::path::PathBuf) {
    let obj = tcbpf::load::load_file(&fixture("stats_kinds.o"), &fs.options()).unwrap();
    let (flows, cpus) = (fs.path.join("flows"), fs.path.join("cpu_packets"));
    tcbpf::sys::obj::pin(&obj.map("flows").unwrap().fd, &flows).unwrap();
    tcbpf::sys::obj::pin(&obj.map("cpu_packets").unwrap().fd, &cpus).unwrap();
    (flows, cpus)
}

#[test]
fn map_dump_json_of_a_btf_map_is_bpftools_and_loads_back_as_it_was() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let dir = TempDir::new("dumpjson");
    let (flows, cpus) = btf_maps(&fs);
    let (flows, cpus) = (s(&flows), s(&cpus));
    for (proto, port, packets, bytes) in [("17", "53", "5", "300"), ("6", "80", "7", "900")] {
        tcbpf(
            &fs,
            &[
                "map", "update", "pinned", flows, "key", "proto", proto, "port", port, "value",
                "packets", packets, "bytes", bytes,
            ],
        );
    }
    {
        use tcbpf::sys::map;
        let fd = tcbpf::sys::obj::get_pinned_map(std::path::Path::new(cpus), 0).unwrap();
        let sizes = map::ElemSizes::of(&fd).unwrap();
        let mut value = vec![0u8; sizes.value()];
        for cpu in 0..sizes.cpus() {
            let at = cpu * sizes.cpu_stride();
            value[at..at + 8].copy_from_slice(&(cpu as u64 + 40).to_ne_bytes());
        }
        map::update(&fd, &0u32.to_ne_bytes(), &value, 0).unwrap();
    }
    let dump = |p: &str| tcbpf(&fs, &["-j", "map", "dump", "pinned", p]);
    for p in [flows, cpus] {
        let ours = dump(p);
        let theirs = ok({
            let mut c = Command::new("bpftool");
            c.args(["-j", "map", "dump", "pinned", p]);
            c
        });
        let parse = |t: &str| -> serde_json::Value { serde_json::from_str(t).unwrap() };
        assert_eq!(
            parse(&ours),
            parse(&theirs),
            "ours {ours}\nbpftool {theirs}"
        );
        assert!(ours.contains("\"formatted\":"), "{ours}");
    }
    let flows_before = dump(flows);
    let cpus_before = dump(cpus);
    let saved = dir.join("flows.json");
    std::fs::write(&saved, &flows_before).unwrap();
    let saved_cpus = dir.join("cpus.json");
    std::fs::write(&saved_cpus, &cpus_before).unwrap();

    // Change the maps, then load the dumps back: as they were.
    tcbpf(
        &fs,
        &[
            "map", "delete", "pinned", flows, "key", "proto", "6", "port", "80",
        ],
    );
    tcbpf(
        &fs,
        &[
            "map", "update", "pinned", flows, "key", "proto", "17", "port", "53", "value",
            "packets", "99", "bytes", "1",
        ],
    );
    tcbpf(
        &fs,
        &[
            "map", "update", "pinned", flows, "key", "proto", "1", "port", "0", "value", "packets",
            "1", "bytes", "1",
        ],
    );
    tcbpf(
        &fs,
        &["map", "update", "pinned", cpus, "key", "0", "value", "7"],
    );
    assert_ne!(dump(flows), flows_before);
    assert_ne!(dump(cpus), cpus_before);
    tcbpf(
        &fs,
        &[
            "map",
            "load",
            "pinned",
            flows,
            "json",
            "from",
            s(&saved),
            "replace",
        ],
    );
    tcbpf(
        &fs,
        &[
            "map",
            "load",
            "pinned",
            cpus,
            "json",
            "from",
            s(&saved_cpus),
        ],
    );
    assert_eq!(dump(flows), flows_before);
    assert_eq!(dump(cpus), cpus_before);

    // The typed part edited and the hex not: refused, nothing written.
    let edited = dir.join("edited.json");
    assert!(flows_before.contains("\"packets\":5,"), "{flows_before}");
    std::fs::write(
        &edited,
        flows_before.replace("\"packets\":5,", "\"packets\":6,"),
    )
    .unwrap();
    let (code, err) = fails({
        let mut c = Command::new(TCBPF);
        c.args(["map", "load", "pinned", flows, "json", "from", s(&edited)]);
        c
    });
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("value: its bytes differ from formatted.value"),
        "{err}"
    );
    assert_eq!(dump(flows), flows_before);
    // Without the hex sides, the typed entry alone is loaded.
    let typed: serde_json::Value = serde_json::from_str(&flows_before).unwrap();
    let typed: Vec<serde_json::Value> = typed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["formatted"].clone())
        .collect();
    let typed_file = dir.join("typed.json");
    std::fs::write(&typed_file, serde_json::to_string(&typed).unwrap()).unwrap();
    tcbpf(
        &fs,
        &[
            "map", "delete", "pinned", flows, "key", "proto", "6", "port", "80",
        ],
    );
    tcbpf(
        &fs,
        &[
            "map",
            "load",
            "pinned",
            flows,
            "json",
            "from",
            s(&typed_file),
            "replace",
        ],
    );
    assert_eq!(dump(flows), flows_before);
}

#[test]
fn a_key_is_written_alike_by_add_lookup_dump_and_next() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.path.join("h");
    let p = s(&pin);
    tcbpf(
        &fs,
        &[
            "map", "create", "type", "hash", "key", "4", "value", "8", "entries", "4", "pin", p,
        ],
    );
    tcbpf(
        &fs,
        &[
            "map", "update", "pinned", p, "key", "7", "0", "0", "0", "value", "1", "0", "0", "0",
            "0", "0", "0", "0",
        ],
    );
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&tcbpf(&fs, args)).unwrap() };
    let lookup = json(&[
        "-j", "map", "lookup", "pinned", p, "key", "7", "0", "0", "0",
    ]);
    let add = json(&[
        "-j", "map", "add", "pinned", p, "key", "7", "0", "0", "0", "value", "2",
    ]);
    let dump = json(&["-j", "map", "dump", "pinned", p]);
    let next = json(&["-j", "map", "next", "pinned", p]);
    assert_eq!(
        lookup["key"],
        serde_json::json!(["0x07", "0x00", "0x00", "0x00"])
    );
    assert_eq!(add["key"], lookup["key"], "add -j: {add}");
    assert_eq!(dump[0]["key"], lookup["key"]);
    assert_eq!(next["next_key"], lookup["key"]);
    assert_eq!(
        (add["old"].as_u64(), add["new"].as_u64()),
        (Some(1), Some(3))
    );
}

#[test]
fn map_show_json_has_bpftools_fields_values_and_types() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.path.join("h");
    let p = s(&pin);
    tcbpf(
        &fs,
        &[
            "map", "create", "type", "hash", "key", "4", "value", "8", "entries", "4", "name",
            "js_bt", "pin", p,
        ],
    );
    for frozen in [0, 1] {
        if frozen == 1 {
            tcbpf(&fs, &["map", "freeze", "pinned", p]);
        }
        let ours: serde_json::Value =
            serde_json::from_str(&tcbpf(&fs, &["-j", "map", "show", "pinned", p])).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&ok({
            let mut c = Command::new("bpftool");
            c.args(["-j", "map", "show", "pinned", p]);
            c
        }))
        .unwrap();
        assert_eq!(theirs["frozen"], frozen, "{theirs}");
        for (field, value) in theirs.as_object().unwrap() {
            assert_eq!(
                &ours[field], value,
                "field '{field}': ours {ours}, bpftool {theirs}"
            );
        }
    }
}

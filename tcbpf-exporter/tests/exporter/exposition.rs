//! The exposition is one Prometheus accepts whole, whatever the maps are
//! named: key members named like a device label or like another member's
//! `key_` form, nested members beside flat ones of the same joined name,
//! two maps whose name and field join to the same family, and two filters
//! of one object on a device (two copies of every map, same names). Checked
//! with `promtool check metrics`, by hand (no label name twice in a
//! sample, no series twice) and by a real Prometheus scraping it: the
//! target is up and it stores every series the exporter wrote.
//!
//! Also: `promtool check metrics` has nothing to say about a scrape of the
//! test maps (text format) and Python's OpenMetrics parser accepts the
//! OpenMetrics one (promtool 2.42 parses only the text format); counters
//! end in `_total` in both; and at the series cap the kept keys are the
//! smallest in byte order, the same at every scrape.

use crate::common;

use common::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

const PORT: u16 = 9436;
const PROM_PORT: u16 = 9091;

/// Sample lines of a text exposition (no comments, no blank lines).
fn sample_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A sample's name and its label names, in order.
fn name_and_label_names(line: &str) -> (String, Vec<String>) {
    let head = line.rsplit_once(' ').map_or(line, |(h, _)| h);
    let Some((name, labels)) = head.split_once('{') else {
        return (head.to_string(), vec![]);
    };
    let mut names = Vec::new();
    let mut rest = labels.trim_end_matches('}');
    while let Some((n, after)) = rest.split_once("=\"") {
        names.push(n.trim_start_matches(',').to_string());
        // Skip the quoted value (escapes: \\ \" \n).
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    (name.to_string(), names)
}

/// Every problem Prometheus would have with `body` that promtool's parser
/// does not report: a label name twice in one sample, a series twice.
fn duplicates(body: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut series = HashSet::new();
    for line in sample_lines(body) {
        let (_, names) = name_and_label_names(line);
        let unique: HashSet<&String> = names.iter().collect();
        if unique.len() != names.len() {
            problems.push(format!("label name twice: {line}"));
        }
        let head = line.rsplit_once(' ').map_or(line, |(h, _)| h);
        if !series.insert(head.to_string()) {
            problems.push(format!("series twice: {line}"));
        }
    }
    problems
}

#[test]
fn clashing_member_field_and_map_names_give_an_exposition_prometheus_keeps_whole() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    // No IPv6 chatter: only the datagrams sent here pass the filters.
    for (ns, dev) in [(&pair.a, "v0"), (&pair.b, "v1")] {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns.name,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ],
        );
    }
    // Two filters of one object: two copies of every map, same names.
    tc(&pair.b, "qdisc add dev v1 clsact");
    for pref in [1, 2] {
        tc(
            &pair.b,
            &format!(
                "filter add dev v1 ingress pref {pref} bpf da obj {} sec classifier",
                s(&fixture("name_clash.o"))
            ),
        );
    }
    let _exporter = exporter(&pair.b, PORT, &["dev", "v1", "ingress"]);
    const N: usize = 9;
    assert_eq!(pair.send_udp(5151, N), N);

    let (status, text) = get(&pair.b, PORT, "/metrics", None).expect("scrape");
    assert_eq!(status, 200);
    let (status, om) = get(
        &pair.b,
        PORT,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .expect("OpenMetrics scrape");
    assert_eq!(status, 200);
    for body in [&text, &om] {
        assert_eq!(duplicates(body), Vec::<String>::new(), "{body}");
    }
    // promtool's only remark is on the names this fixture chose (one-letter
    // parts read as units: `b` for bytes); the OpenMetrics parser takes it
    // whole.
    let (code, said) = promtool_check(&text);
    assert_eq!(
        (code, said.as_str()),
        (
            3,
            "tcbpf_map_a_b_c_total metric names should not contain abbreviated units\n"
        ),
        "{text}"
    );
    openmetrics_parse(&om);

    // Every copy, member and field is there, by a label of its own.
    let clash = samples(&text, "tcbpf_map_clash_packets_total", &[]);
    assert_eq!(clash.len(), 2, "one series per map copy: {clash:?}");
    // The copies differ by where they are attached, not by a kernel id.
    let ids: HashSet<String> = clash
        .iter()
        .map(|l| {
            let at = l.find("attach=\"").expect("attach label") + 8;
            l[at..].split('"').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["pref 1 handle 0x1".into(), "pref 2 handle 0x1".into()]),
        "{clash:?}"
    );
    assert!(!text.contains("map_id="), "{text}");
    for id in &ids {
        let key = [
            "key_dev_2=\"1\"",
            "key_dev=\"2\"",
            "key_in_port=\"3\"",
            "in_port=\"4\"",
            "dev=\"v1\"",
        ];
        let mut want: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        let id_label = format!("attach=\"{id}\"");
        want.push(id_label);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        let packets = value(&text, "tcbpf_map_clash_packets_total", &want).expect("packets");
        assert!(packets >= N as f64, "{packets}");
        // in.port counts 2 a packet, in_port 3.
        assert_eq!(
            value(&text, "tcbpf_map_clash_in_port_2_total", &want),
            Some(2.0 * packets)
        );
        assert_eq!(
            value(&text, "tcbpf_map_clash_in_port_total", &want),
            Some(3.0 * packets)
        );
    }
    // Maps a (field b_c) and a_b (field c), two copies each: four series.
    let abc = samples(&text, "tcbpf_map_a_b_c_total", &[]);
    assert_eq!(abc.len(), 4, "{abc:?}");

    // A real Prometheus: the target is up and every series is stored.
    let dir = TempDir::new("prom-clash");
    let _prom = prometheus(&pair.b, &dir, PORT, PROM_PORT);
    let written = sample_lines(&om).len();
    let query = r#"count({job="tcbpf",__name__=~"tcbpf_.+"})"#;
    let start = Instant::now();
    let (mut up, mut stored) = (None, None);
    while start.elapsed() < Duration::from_secs(30) {
        up = prom_query(&pair.b, PROM_PORT, r#"up{job="tcbpf"}"#);
        stored = prom_query(&pair.b, PROM_PORT, query);
        if up.as_deref() == Some("1") && stored == Some(written.to_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(up.as_deref(), Some("1"), "target up");
    assert_eq!(
        stored,
        Some(written.to_string()),
        "series stored by Prometheus vs samples written"
    );
}

/// Python's OpenMetrics parser (Debian's python3-prometheus-client, which
/// scripts/setup.sh installs) takes `body` whole, or the test fails with
/// what it said.
fn openmetrics_parse(body: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        families = list(parse(sys.stdin.read()))\n\
        print(len(families))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "OpenMetrics parser: {said}\n{body}");
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families > 0, "{body}");
}

/// Each `# TYPE` line's family and type, with the names of its samples.
fn families(body: &str) -> Vec<(String, String, HashSet<String>)> {
    let mut out: Vec<(String, String, HashSet<String>)> = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap();
            out.push((name.to_string(), ty.to_string(), HashSet::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, _) = name_and_label_names(line);
            out.last_mut()
                .expect("a sample before any TYPE")
                .2
                .insert(name);
        }
    }
    out
}

/// The exporter's own families (text format names); every other family is
/// a map's, under `tcbpf_map_`.
const OWN: [&str; 7] = [
    "tcbpf_prog_runs_total",
    "tcbpf_prog_run_seconds_total",
    "tcbpf_prog_info",
    "tcbpf_exporter_map_info",
    "tcbpf_exporter_map_entries",
    "tcbpf_exporter_map_dropped_series",
    "tcbpf_exporter_scrape_errors",
];

#[test]
fn scrapes_of_the_test_maps_pass_promtool_and_the_openmetrics_parser_with_counters_in_total() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    tc(&pair.b, "qdisc add dev v1 clsact");
    // demo counts the echo replies.
    for (dir, pref, object) in [("ingress", 2, "stats_kinds.o"), ("egress", 1, "demo.o")] {
        tc(
            &pair.b,
            &format!(
                "filter add dev v1 {dir} pref {pref} bpf da obj {} sec classifier",
                s(&fixture(object))
            ),
        );
    }
    let _exporter = exporter(&pair.b, PORT + 1, &["dev", "v1"]);
    assert_eq!(pair.send_udp(5252, 4), 4);
    send_icmp(&pair, 3);
    let (status, text) = get(&pair.b, PORT + 1, "/metrics", None).expect("scrape");
    assert_eq!(status, 200);
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
    let (status, om) = get(&pair.b, PORT + 1, "/metrics", Some(accept)).expect("scrape");
    assert_eq!(status, 200);

    let (code, said) = promtool_check(&text);
    assert_eq!((code, said.as_str()), (0, ""), "{text}");
    openmetrics_parse(&om);

    let text_families = families(&text);
    let om_families = families(&om);
    for (name, ty, samples) in &text_families {
        if ty == "counter" {
            assert!(name.ends_with("_total"), "text counter {name}");
            assert_eq!(samples, &HashSet::from([name.clone()]), "{name}");
        }
        assert!(
            name.starts_with("tcbpf_map_") || OWN.contains(&name.as_str()),
            "family {name} is neither a map's nor one of the exporter's own"
        );
    }
    for own in OWN.iter().filter(|o| !o.contains("dropped")) {
        assert!(text_families.iter().any(|(n, _, _)| n == own), "no {own}");
    }
    assert!(text_families
        .iter()
        .any(|(n, _, _)| n.starts_with("tcbpf_map_")));
    for (name, ty, samples) in &om_families {
        if ty == "counter" {
            assert!(
                !name.ends_with("_total"),
                "OpenMetrics counter family {name}"
            );
            assert_eq!(samples, &HashSet::from([format!("{name}_total")]), "{name}");
        }
    }
    // The same sample names in both formats.
    let names = |f: &[(String, String, HashSet<String>)]| -> HashSet<String> {
        f.iter().flat_map(|(_, _, s)| s.iter().cloned()).collect()
    };
    assert_eq!(names(&text_families), names(&om_families));

    // Kernel ids only on the _info metrics, and there.
    for line in sample_lines(&text) {
        let (name, labels) = name_and_label_names(line);
        let ids = labels
            .iter()
            .any(|l| l == "id" || l == "map_id" || l == "link_id");
        assert_eq!(ids, name.ends_with("_info"), "{line}");
    }
    // The demo's echo replies, by a name a reload keeps.
    assert_eq!(
        value(
            &text,
            "tcbpf_map_proto_stats_packets_total",
            &[
                "key=\"1\"",
                "direction=\"egress\"",
                "attach=\"pref 1 handle 0x1\""
            ]
        ),
        Some(3.0),
        "{text}"
    );
}

#[test]
fn at_the_series_cap_the_smallest_keys_in_byte_order_are_kept_at_every_scrape() {
    tcbpf_testkit::require_root!();
    use tcbpf::sys::map;
    let fs = Bpffs::new();
    let obj = tcbpf::load::load_file(&fixture("stats_kinds.o"), &fs.options()).unwrap();
    let flows = &obj.map("flows").unwrap().fd;
    let id = tcbpf::sys::info::map_info(flows).unwrap().id.to_string();
    // struct flow_key {u32 proto, port}, struct flow_counter {u64 packets, bytes}.
    let key = |port: u32| [6u32.to_ne_bytes(), port.to_ne_bytes()].concat();
    let put = |port: u32| {
        let value = [(port as u64 * 2 + 1).to_ne_bytes(), 7u64.to_ne_bytes()].concat();
        map::update(flows, &key(port), &value, 0).unwrap();
    };
    let mut ports: Vec<u32> = (0..40).collect();
    ports.iter().for_each(|&p| put(p));
    const CAP: usize = 10;
    // The rule, computed here: the CAP smallest keys in byte order.
    let smallest = |ports: &[u32]| -> HashSet<String> {
        let mut keys: Vec<(Vec<u8>, u32)> = ports.iter().map(|&p| (key(p), p)).collect();
        keys.sort();
        keys[..CAP].iter().map(|(_, p)| p.to_string()).collect()
    };

    let ns = Netns::new();
    let dir = TempDir::new("cap");
    let cfg = dir.join("exporter.conf");
    std::fs::write(&cfg, format!("cap {CAP}\n")).unwrap();
    let _exporter = exporter(&ns, PORT + 2, &["id", &id, "config", s(&cfg)]);
    let scrape = |ports: &[u32]| -> HashSet<String> {
        let (status, text) = get(&ns, PORT + 2, "/metrics", None).expect("scrape");
        assert_eq!(status, 200);
        let rows = samples(&text, "tcbpf_map_flows_packets_total", &["map=\"flows\""]);
        assert_eq!(rows.len(), CAP + 1, "{text}");
        let mut kept = HashSet::new();
        let mut kept_sum = 0.0;
        for row in &rows {
            let at = row.find("port=\"").unwrap() + 6;
            let port = row[at..].split('"').next().unwrap().to_string();
            if port != "other" {
                kept_sum += row.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
                kept.insert(port);
            }
        }
        let total: u64 = ports.iter().map(|&p| p as u64 * 2 + 1).sum();
        let other = value(&text, "tcbpf_map_flows_packets_total", &["port=\"other\""]);
        assert_eq!(other, Some(total as f64 - kept_sum), "{text}");
        let dropped = value(
            &text,
            "tcbpf_exporter_map_dropped_series",
            &["map=\"flows\""],
        );
        assert_eq!(dropped, Some((ports.len() - CAP) as f64));
        kept
    };
    let first = scrape(&ports);
    assert_eq!(first, smallest(&ports));
    // More entries, all after the kept ones in byte order, and fewer.
    for j in 0..300 {
        put(j * 256 + 200);
        ports.push(j * 256 + 200);
    }
    let second = scrape(&ports);
    for p in 20..40 {
        map::delete(flows, &key(p)).unwrap();
    }
    ports.retain(|p| !(20..40).contains(p));
    let third = scrape(&ports);
    assert_eq!(first, second, "kept keys changed as entries were added");
    assert_eq!(first, third, "kept keys changed as entries were deleted");
    assert_eq!(
        first,
        (0..CAP as u32)
            .map(|p| p.to_string())
            .collect::<HashSet<_>>()
    );
}

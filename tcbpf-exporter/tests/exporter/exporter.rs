//! `tcbpf-exporter listen` against the real kernel, the real `tc` and a real
//! Prometheus server: exact counts of real traffic in Prometheus's own query
//! API, metric names and labels for struct, enum and per-CPU maps, an XDP
//! program's maps in generic and native mode, a filter deleted under it, an
//! address in use, and SIGTERM. Each test works in
//! namespaces it creates (the exporter and Prometheus run inside them, so
//! their loopback ports are free by construction) and removes everything.

use crate::common;

use common::*;
use std::time::{Duration, Instant};
use tcbpf_testkit::*;

const PORT: u16 = 9435;

#[test]
fn prometheus_sees_exact_udp_and_icmp_counts_from_the_demo_classifier() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    let _exporter = exporter(&pair.b, PORT, &["dev", "v1", "ingress"]);

    let dir = TempDir::new("prom");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tcbpf\n    static_configs:\n      - targets: ['127.0.0.1:{PORT}']\n"
        ),
    )
    .unwrap();
    let prom_port = 9090;
    let _prom = Proc::in_ns(
        &pair.b,
        "prometheus",
        &[
            &format!("--config.file={}", s(&config)),
            &format!("--storage.tsdb.path={}", s(&dir.join("data"))),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
    );
    wait_http(&pair.b, prom_port, "/-/ready");

    const N: usize = 37;
    const M: u16 = 11;
    assert_eq!(pair.send_udp(6060, N), N);
    send_icmp(&pair, M);

    // Prometheus scrapes every second; wait until it saw the final counts.
    let udp_q = r#"tcbpf_map_proto_stats_packets_total{key="17",dev="v1",direction="ingress",prog="count_proto"}"#;
    let icmp_q = r#"tcbpf_map_proto_stats_packets_total{key="1",dev="v1",direction="ingress",prog="count_proto"}"#;
    let start = Instant::now();
    let (mut udp, mut icmp) = (None, None);
    while start.elapsed() < Duration::from_secs(40) {
        udp = prom_query(&pair.b, prom_port, udp_q);
        icmp = prom_query(&pair.b, prom_port, icmp_q);
        if udp.as_deref() == Some(&N.to_string()) && icmp.as_deref() == Some(&M.to_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        udp.as_deref(),
        Some(N.to_string().as_str()),
        "UDP datagrams in Prometheus"
    );
    assert_eq!(
        icmp.as_deref(),
        Some(M.to_string().as_str()),
        "ICMP echoes in Prometheus"
    );
    // The program's run count went through Prometheus too.
    let runs = prom_query(
        &pair.b,
        prom_port,
        r#"tcbpf_prog_runs_total{prog="count_proto"}"#,
    )
    .expect("run count in Prometheus");
    assert!(
        runs.parse::<u64>().unwrap() >= (N + M as usize) as u64,
        "runs {runs}"
    );
    let up = prom_query(&pair.b, prom_port, r#"up{job="tcbpf"}"#);
    assert_eq!(up.as_deref(), Some("1"));
}

#[test]
fn struct_enum_and_per_cpu_maps_get_their_names_and_labels() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "stats_kinds.o");
    let _exporter = exporter(&pair.b, PORT, &["dev", "v1"]);
    const N: usize = 23;
    assert_eq!(pair.send_udp(5353, N), N);

    let (status, body) = get(&pair.b, PORT, "/metrics", None).expect("scrape");
    assert_eq!(status, 200);
    let at = [
        "dev=\"v1\"",
        "direction=\"ingress\"",
        "prog=\"count_kinds\"",
    ];
    let mut flow = vec!["proto=\"17\"", "port=\"5353\""];
    flow.extend(at);
    assert_eq!(
        value(&body, "tcbpf_map_flows_packets_total", &flow),
        Some(N as f64),
        "{body}"
    );
    let bytes = value(&body, "tcbpf_map_flows_bytes_total", &flow).unwrap();
    assert!(bytes >= (N * (14 + 20 + 8)) as f64, "bytes {bytes}");
    let mut verdict = vec!["key=\"VERDICT_PASS\""];
    verdict.extend(at);
    assert_eq!(
        value(&body, "tcbpf_map_verdicts_total", &verdict),
        Some(N as f64),
        "{body}"
    );
    let mut cpu = vec!["key=\"0\""];
    cpu.extend(at);
    assert_eq!(
        value(&body, "tcbpf_map_cpu_packets_total", &cpu),
        Some(N as f64),
        "per-CPU values summed: {body}"
    );
    let flows_id = body
        .lines()
        .find(|l| l.starts_with("# HELP tcbpf_map_flows_packets_total "))
        .expect("help line");
    assert!(
        flows_id.contains("field 'packets' of map 'flows', per-CPU values summed"),
        "{flows_id}"
    );
    assert!(body.contains("# TYPE tcbpf_map_flows_packets_total counter\n"));
    assert!(body.contains("# TYPE tcbpf_map_cpu_packets_total counter\n"));
    // Kernel ids only on the _info metrics.
    assert!(!flow_lines_have_ids(&body), "{body}");
    assert_eq!(
        samples(
            &body,
            "tcbpf_prog_info",
            &["prog=\"count_kinds\"", "hook=\"filter\""]
        )
        .len(),
        1
    );

    // OpenMetrics when asked: _total samples and # EOF.
    let (status, om) = get(
        &pair.b,
        PORT,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        value(&om, "tcbpf_map_flows_packets_total", &flow),
        Some(N as f64)
    );
    assert!(om.contains("# TYPE tcbpf_map_flows_packets counter\n"));
    assert!(om.contains("# TYPE tcbpf_prog info\n"));
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn config_renames_caps_and_skips() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "stats_kinds.o");
    let dir = TempDir::new("cfg");
    let cfg = dir.join("exporter.conf");
    std::fs::write(
        &cfg,
        "# test rules\nmap flows rename flow field bytes rename octets field packets gauge cap 1 label port hex\nmap verdicts skip\n",
    )
    .unwrap();
    let _exporter = exporter(&pair.b, PORT, &["dev", "v1", "config", s(&cfg)]);
    assert_eq!(pair.send_udp(5353, 5), 5);
    assert_eq!(pair.send_udp(5354, 3), 3);
    let (_, body) = get(&pair.b, PORT, "/metrics", None).unwrap();
    assert!(
        !body.contains("tcbpf_map_verdicts"),
        "skipped map exported: {body}"
    );
    assert!(
        body.contains("# TYPE tcbpf_map_flow_packets gauge\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE tcbpf_map_flow_octets_total counter\n"),
        "{body}"
    );
    // Two flows, cap 1: the smaller key kept, the other summed into "other".
    let kept = samples(&body, "tcbpf_map_flow_packets", &[]);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let other = value(
        &body,
        "tcbpf_map_flow_packets",
        &["proto=\"other\"", "port=\"other\""],
    );
    let first = kept.iter().find(|l| !l.contains("\"other\"")).unwrap();
    assert!(first.contains("port=\"0x14e9\""), "{first}");
    let first_n: f64 = first.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!((first_n, other), (5.0, Some(3.0)));
    assert_eq!(
        value(
            &body,
            "tcbpf_exporter_map_dropped_series",
            &["map=\"flows\""]
        ),
        Some(1.0)
    );
}

#[test]
fn the_policy_generation_in_force_is_exported_per_slot() {
    use tcbpf::maps::generation as gen;
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let fs = Bpffs::new();
    let prog = fs.join("policy_prog");
    let opts = tcbpf::load::LoadOptions {
        pin_program: Some(prog.clone()),
        ..fs.options()
    };
    let obj = tcbpf::load::load_file(&fixture("policy_gen.o"), &opts).unwrap();
    tc(&pair.b, "qdisc add dev v1 clsact");
    tc(
        &pair.b,
        &format!(
            "filter add dev v1 ingress bpf da object-pinned {}",
            s(&prog)
        ),
    );
    let _exporter = exporter(&pair.b, PORT, &["dev", "v1", "ingress"]);
    let generation = |body: &str| {
        value(
            body,
            "tcbpf_exporter_policy_generation",
            &["map=\"policy\"", "slot=\"0\""],
        )
    };
    let (_, body) = get(&pair.b, PORT, "/metrics", None).unwrap();
    assert_eq!(generation(&body), Some(0.0), "{body}");
    assert!(samples(&body, "tcbpf_exporter_policy_generation", &["dev=\"v1\""]).len() == 1);

    // A commit through the library, as an agent would make it.
    let outer = &obj.map("policy").unwrap().fd;
    let current = gen::in_force(outer, 0).unwrap().unwrap();
    let template = gen::InnerTemplate::from_info(&current.info).unwrap();
    let (keys, values): (Vec<u8>, Vec<u8>) =
        (7000u32.to_ne_bytes().to_vec(), 1u32.to_ne_bytes().to_vec());
    let plan = gen::plan_commit(template, 0, current.generation, 0, &keys, &values).unwrap();
    let inner = gen::build(&plan, &keys, &values).unwrap();
    gen::publish(outer, 0, &inner).unwrap();
    assert_eq!(pair.send_udp(7000, 2), 0, "generation 1 drops port 7000");
    let (_, body) = get(&pair.b, PORT, "/metrics", None).unwrap();
    assert_eq!(generation(&body), Some(1.0), "{body}");
    assert_eq!(value(&body, "tcbpf_exporter_scrape_errors", &[]), Some(0.0));
}

#[test]
fn a_deleted_filter_stops_being_exported_without_error() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    let exporter = exporter(&pair.b, PORT, &["dev", "v1"]);
    assert_eq!(pair.send_udp(7070, 3), 3);
    let (_, body) = get(&pair.b, PORT, "/metrics", None).unwrap();
    assert_eq!(
        value(
            &body,
            "tcbpf_map_proto_stats_packets_total",
            &["key=\"17\""]
        ),
        Some(3.0)
    );

    tc(&pair.b, "filter del dev v1 ingress");
    let (status, body) = get(&pair.b, PORT, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(!body.contains("tcbpf_map_proto_stats"), "{body}");
    assert!(!body.contains("tcbpf_prog_runs_total{"), "{body}");
    assert_eq!(value(&body, "tcbpf_exporter_scrape_errors", &[]), Some(0.0));
    let (code, stderr) = exporter.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("map id"), "errors logged: {stderr}");
}

#[test]
fn an_address_in_use_fails_clearly_and_sigterm_stops_cleanly() {
    tcbpf_testkit::require_root!();
    let ns = Netns::new();
    let first = exporter(&ns, PORT, &["dev", "lo"]);
    let second = Proc::in_ns(
        &ns,
        BIN,
        &["listen", &format!("127.0.0.1:{PORT}"), "dev", "lo"],
    );
    let out = second.wait(Duration::from_secs(10));
    assert_eq!(out.0, Some(4));
    assert!(
        out.1.contains(&format!(
            "cannot listen on 127.0.0.1:{PORT}: address already in use"
        )),
        "{}",
        out.1
    );
    let (code, stderr) = first.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0), "SIGTERM: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    // The port is free again.
    let again = exporter(&ns, PORT, &["dev", "lo"]);
    drop(again);
}

#[test]
fn bad_words_are_usage_errors() {
    let (code, _, err) = run_bin(BIN, &["listen", "nonsense"]);
    assert_eq!(code, 2);
    assert!(err.contains("'nonsense' is not ADDR:PORT"), "{err}");
    let (code, _, err) = run_bin(BIN, &["listen", ":9"]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to export"), "{err}");
    let (code, _, err) = run_bin(BIN, &["listen", ":9", "pinned", "/nonexistent/pin"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn an_endless_or_huge_config_file_is_refused_not_read_to_the_end() {
    // /dev/zero never ends: read whole, it grew until killed.
    let mut child = std::process::Command::new(BIN)
        .args(["listen", ":9", "config", "/dev/zero", "dev", "lo"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    assert!(err.contains("config /dev/zero: larger than 1 MiB"), "{err}");
    // A directory is bad input too, not a failure of the exporter.
    let (code, _, err) = run_bin(BIN, &["listen", ":9", "config", "/", "dev", "lo"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("config /: "), "{err}");
}

/// True when a sample outside the `_info` families carries a kernel id
/// label (`id`, `map_id`, `link_id`).
fn flow_lines_have_ids(body: &str) -> bool {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.contains("_info{"))
        .any(|l| {
            l.contains(",id=\"")
                || l.contains("{id=\"")
                || l.contains("map_id=")
                || l.contains("link_id=")
        })
}

#[test]
fn dev_exports_the_xdp_programs_maps_beside_the_classifiers_as_map_watch_finds_them() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    attach_xdp(&pair.b, "v1");
    let both = exporter(&pair.b, PORT, &["dev", "v1"]);
    const N: usize = 13;
    assert_eq!(pair.send_udp(4747, N), N);

    let (status, body) = get(&pair.b, PORT, "/metrics", None).expect("scrape");
    assert_eq!(status, 200);
    // XDP runs on receive: direction ingress, its mode as the place.
    let xdp = [
        "dev=\"v1\"",
        "direction=\"ingress\"",
        "prog=\"xdp_verdict\"",
        "attach=\"xdpgeneric\"",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut w = xdp.to_vec();
        w.extend_from_slice(extra);
        w
    };
    // Every datagram passed XDP (no port blocked: key 0) and reached the
    // classifier behind it.
    assert_eq!(
        value(
            &body,
            "tcbpf_map_xdp_stats_total",
            &with(&["key=\"0\"", "map=\"xdp_stats\""])
        ),
        Some(N as f64),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "tcbpf_map_proto_stats_packets_total",
            &["key=\"17\"", "attach=\"pref "]
        ),
        Some(N as f64),
        "{body}"
    );
    let runs = value(&body, "tcbpf_prog_runs_total", &xdp).expect("XDP run count");
    assert!(runs >= N as f64, "runs {runs}: {body}");
    let info = samples(
        &body,
        "tcbpf_prog_info",
        &with(&["hook=\"xdp\"", "link_id=\"0\""]),
    );
    assert_eq!(info.len(), 1, "{body}");
    for map in ["map=\"xdp_stats\"", "map=\"xdp_blocked\""] {
        let found = samples(&body, "tcbpf_exporter_map_info", &with(&[map]));
        assert_eq!(found.len(), 1, "{map}: {body}");
    }
    assert_eq!(value(&body, "tcbpf_exporter_scrape_errors", &[]), Some(0.0));
    assert_eq!(promtool_check(&body), (0, String::new()), "{body}");

    // Egress alone: XDP is not there (nor the ingress classifier).
    drop(both);
    let _egress = exporter(&pair.b, PORT + 1, &["dev", "v1", "egress"]);
    let (_, body) = get(&pair.b, PORT + 1, "/metrics", None).expect("scrape");
    assert!(!body.contains("xdp"), "{body}");

    // Detached: gone at the next scrape, without error.
    let _all = exporter(&pair.b, PORT + 2, &["dev", "v1"]);
    run(
        "ip",
        &[
            "-n",
            &pair.b.name,
            "link",
            "set",
            "dev",
            "v1",
            "xdpgeneric",
            "off",
        ],
    );
    let (_, body) = get(&pair.b, PORT + 2, "/metrics", None).expect("scrape");
    assert!(!body.contains("xdp"), "{body}");
    assert!(
        body.contains("tcbpf_map_proto_stats_packets_total"),
        "{body}"
    );
    assert_eq!(value(&body, "tcbpf_exporter_scrape_errors", &[]), Some(0.0));

    // Native mode (veth has it): the place is `xdpdrv`, the counts the new
    // program's own.
    run(
        "ip",
        &[
            "-n",
            &pair.b.name,
            "link",
            "set",
            "dev",
            "v1",
            "xdpdrv",
            "obj",
            s(&fixture("xdp_btf.o")),
            "sec",
            "xdp",
        ],
    );
    const M: usize = 5;
    assert_eq!(pair.send_udp(4748, M), M);
    let (_, body) = get(&pair.b, PORT + 2, "/metrics", None).expect("scrape");
    assert_eq!(
        value(
            &body,
            "tcbpf_map_xdp_stats_total",
            &[
                "key=\"0\"",
                "direction=\"ingress\"",
                "prog=\"xdp_verdict\"",
                "attach=\"xdpdrv\""
            ]
        ),
        Some(M as f64),
        "{body}"
    );
    assert!(!body.contains("xdpgeneric"), "{body}");
    assert_eq!(value(&body, "tcbpf_exporter_scrape_errors", &[]), Some(0.0));
}

//! `map watch` as a person uses it: full-screen in a real terminal (tmux,
//! driven with send-keys and read with capture-pane) against the demo
//! classifier counting real UDP sent at a known rate across a veth, and the
//! pipe form with -j. Each test owns its namespaces and its tmux server.

use crate::common;

use common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf::attach::discover;
use tcbpf::attach::tcx::Direction;
use tcbpf::tc::{device, Socket};
use tcbpf_testkit::*;

/// The id of the demo classifier's `proto_stats` map on `v1` in `ns`.
fn proto_stats_id(ns: &Netns) -> u32 {
    ns.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        let a = discover::attachments(&sock, ifindex, &[Direction::Ingress]).unwrap();
        let prog = discover::program(a[0].prog_id).unwrap();
        prog.map_ids[0]
    })
}

/// Sends UDP from `pair.a` to `pair.b` at `per_sec` datagrams a second for
/// `how_long`, on a schedule (not a fixed sleep), from a thread.
fn udp_at_rate(pair: &VethPair, per_sec: u32, how_long: Duration) -> std::thread::JoinHandle<u32> {
    let ns = pair.a.name.clone();
    std::thread::spawn(move || {
        tcbpf::tc::netns::enter(&ns).unwrap();
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        let start = Instant::now();
        let step = Duration::from_secs(1) / per_sec;
        let mut sent = 0u32;
        while start.elapsed() < how_long {
            let _ = s.send_to(b"watch", (ADDR_B, 4444));
            sent += 1;
            let next = start + step * sent;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(cmd: &str) -> Tmux {
        Tmux::sized(cmd, 110, 30)
    }

    /// A session `width` columns by `height` rows running `cmd`.
    fn sized(cmd: &str, width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: unique("tcbpf-watch"),
        };
        let (w, h) = (width.to_string(), height.to_string());
        t.run(&["new-session", "-d", "-s", "w", "-x", &w, "-y", &h, cmd]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        run("tmux", &all)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "w"])
    }

    /// Captures until `pred` holds (up to `limit`); the last screen.
    fn until(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) || start.elapsed() > limit {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

/// The PACKETS/s shown on the row of key 17, when there is one.
fn udp_rate(screen: &str) -> Option<f64> {
    let row = screen.lines().find(|l| l.trim_start().starts_with("17 "))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    // KEY PACKETS PACKETS/s BYTES BYTES/s
    cells.get(2)?.parse().ok()
}

#[test]
fn full_screen_watch_shows_the_udp_rate_and_restores_the_terminal() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    let id = proto_stats_id(&pair.b);
    let cmd = format!(
        "{BIN} watch id {id} interval 1; echo QUIT-BY-Q; read go; {BIN} watch id {id}; echo QUIT-BY-CTRL-C; sleep 60"
    );
    let tmux = Tmux::new(&cmd);
    let header = format!("map proto_stats (id {id}, hash)");
    let first = tmux.until(Duration::from_secs(10), |s| s.contains(&header));
    assert!(first.contains("tcbpf map watch   every 1s"), "{first}");

    const RATE: u32 = 50;
    let sender = udp_at_rate(&pair, RATE, Duration::from_secs(7));
    // After a couple of refreshes the shown rate settles on the send rate.
    let screen = tmux.until(Duration::from_secs(6), |s| {
        udp_rate(s).is_some_and(|r| (RATE as f64 * 0.8..=RATE as f64 * 1.2).contains(&r))
    });
    let rate = udp_rate(&screen).unwrap_or_else(|| panic!("no UDP row:\n{screen}"));
    assert!(
        (RATE as f64 * 0.8..=RATE as f64 * 1.2).contains(&rate),
        "shown {rate}/s for {RATE}/s sent:\n{screen}"
    );
    assert!(
        screen.contains("PACKETS/s") && screen.contains("entries"),
        "{screen}"
    );
    sender.join().unwrap();
    // Once the traffic stopped, the rate falls to zero and the count is exact.
    let screen = tmux.until(Duration::from_secs(5), |s| udp_rate(s) == Some(0.0));
    assert_eq!(udp_rate(&screen), Some(0.0), "{screen}");

    tmux.run(&["send-keys", "-t", "w", "q"]);
    let after = tmux.until(Duration::from_secs(5), |s| s.contains("QUIT-BY-Q"));
    assert!(
        after.contains("QUIT-BY-Q"),
        "q did not end the watch:\n{after}"
    );
    // The second watch (started by Enter) is full-screen again; Ctrl-C ends it.
    tmux.run(&["send-keys", "-t", "w", "Enter"]);
    tmux.until(Duration::from_secs(10), |s| s.contains(&header));
    tmux.run(&["send-keys", "-t", "w", "C-c"]);
    let after = tmux.until(Duration::from_secs(5), |s| s.contains("QUIT-BY-CTRL-C"));
    assert!(after.contains("QUIT-BY-CTRL-C"), "{after}");
    assert!(
        !after.contains("PACKETS/s"),
        "the table stayed on the normal screen:\n{after}"
    );
}

#[test]
fn piped_watch_prints_one_json_object_per_interval_with_rates() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    let id = proto_stats_id(&pair.b);
    let mut child = Proc(
        Command::new(BIN)
            .args([
                "-j",
                "watch",
                "id",
                &id.to_string(),
                "interval",
                "0.5",
                "count",
                "6",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    const N: usize = 30;
    assert_eq!(pair.send_udp(4545, N), N);
    let mut all = vec![first];
    all.extend(lines.map(|l| l.unwrap()));
    assert_eq!(all.len(), 6, "{all:?}");
    // Each snapshot is what docs/json.md's schema says.
    let dir = TempDir::new("watchjson");
    let failures = schema_failures(&dir.join(""), &[("map watch", all.join("\n"))]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let snaps: Vec<serde_json::Value> = all
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row17 = |v: &serde_json::Value| -> Option<serde_json::Value> {
        let m = &v["maps"][0];
        assert_eq!(m["map"], "proto_stats");
        assert_eq!(m["id"], id);
        m["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"]["key"] == 17)
            .cloned()
    };
    assert!(row17(&snaps[0]).is_none(), "UDP before sending: {}", all[0]);
    let appeared = snaps
        .iter()
        .position(|s| row17(s).is_some())
        .expect("UDP row");
    assert_eq!(row17(&snaps[appeared]).unwrap()["state"], "new");
    let last = row17(snaps.last().unwrap()).unwrap();
    assert_eq!(last["values"]["packets"], N as u64);
    assert_eq!(last["state"], "kept");
    // The rates integrate back to the count: Σ rate × Δt = N.
    let mut counted = 0.0;
    for w in snaps.windows(2).skip(appeared) {
        let dt =
            (w[1]["time_ms"].as_u64().unwrap() - w[0]["time_ms"].as_u64().unwrap()) as f64 / 1000.0;
        counted += row17(&w[1]).unwrap()["rates"]["packets"].as_f64().unwrap() * dt;
    }
    let seen_first = row17(&snaps[appeared]).unwrap()["values"]["packets"]
        .as_u64()
        .unwrap() as f64;
    let total = seen_first + counted;
    assert!(
        (total - N as f64).abs() <= N as f64 * 0.1,
        "rates add up to {total}, sent {N}: {all:?}"
    );
    let code = child.0.wait().unwrap().code();
    assert_eq!(code, Some(0));
}

#[test]
fn watch_refuses_bad_words_and_maps_without_counters() {
    tcbpf_testkit::require_root!();
    let (code, _, err) = run_bin(BIN, &["watch"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_bin(BIN, &["watch", "id", "4294967295"]);
    assert_eq!(code, 1, "{err}");
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    let id = proto_stats_id(&pair.b).to_string();
    let (code, _, err) = run_bin(BIN, &["watch", "id", &id, "sort", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no such field (fields: packets, bytes)"),
        "{err}"
    );
}

#[test]
fn a_map_named_by_its_kernel_name_is_watched_and_an_unknown_name_is_not_found() {
    let name = unique("wn");
    let map = hash_map(&name, 4, 8, 8);
    tcbpf::sys::map::update(&map, &7u32.to_ne_bytes(), &40u64.to_ne_bytes(), 0).unwrap();
    let (code, out, err) = run_bin(BIN, &["-j", "watch", "name", &name, "count", "1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["maps"][0]["map"], name.as_str());
    assert_eq!(v["maps"][0]["rows"][0]["key"]["key"], 7);
    assert_eq!(v["maps"][0]["rows"][0]["values"]["value"], 40);
    let (code, _, err) = run_bin(BIN, &["watch", "name", &unique("nope")]);
    assert_eq!(code, 1);
    assert!(err.contains("no map has this name"), "{err}");
}

#[test]
fn key_and_value_types_read_a_map_without_btf() {
    let name = unique("wt");
    let map = hash_map(&name, 4, 16, 8);
    let mut value = 5u64.to_ne_bytes().to_vec();
    value.extend(900u64.to_ne_bytes());
    tcbpf::sys::map::update(&map, &[10, 77, 0, 9], &value, 0).unwrap();
    let (code, out, err) = run_bin(
        BIN,
        &[
            "-j", "watch", "name", &name, "key", "ip4", "value", "u64", "u64", "count", "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let row = &v["maps"][0]["rows"][0];
    assert_eq!(row["key"]["key"], "10.77.0.9", "{out}");
    assert_eq!(row["values"]["v0"], 5);
    assert_eq!(row["values"]["v1"], 900);
    let (code, _, err) = run_bin(BIN, &["watch", "name", &name, "value", "u64", "str"]);
    assert_eq!(code, 2);
    assert!(err.contains("value TYPES must be integer types"), "{err}");
}

/// Peak RSS in KiB of `BIN args…` run to its end under GNU time, and its
/// stdout.
fn peak_rss_kib(args: &[&str]) -> (u64, String) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib %M", BIN])
        .args(args)
        .output()
        .expect("run /usr/bin/time");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let kib = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {err}"));
    (kib, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn watching_a_large_map_with_top_holds_what_is_shown_not_the_map() {
    tcbpf_testkit::require_root!();
    use tcbpf::sys::map;
    // 300,000 u32 -> u64 entries: holding a decoded row per entry took
    // ~1.6 KB each (~480 MB); the raw keys and values are 12 bytes.
    const N: u32 = 300_000;
    let name = unique("watchbig");
    let name = &name[..name.len().min(15)];
    let fd = hash_map(name, 4, 8, N);
    let sizes = map::ElemSizes::of(&fd).unwrap();
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for k in 0..N {
        keys.extend_from_slice(&k.to_ne_bytes());
        values.extend_from_slice(&(k as u64 * 3).to_ne_bytes());
    }
    for at in (0..N as usize).step_by(50_000) {
        let end = (at + 50_000).min(N as usize);
        map::update_batch(
            &fd,
            &sizes,
            &keys[at * 4..end * 4],
            &values[at * 8..end * 8],
            map::update::ANY,
        )
        .map_err(|p| p.error)
        .unwrap();
    }
    drop((keys, values));
    let id = tcbpf::sys::info::map_info(&fd).unwrap().id.to_string();
    let words = [
        "watch", "id", &id, "key", "u32", "value", "u64", "top", "5", "count", "2", "interval",
        "0.05",
    ];
    const BOUND_KIB: u64 = 64 * 1024;
    let (text_kib, text) = peak_rss_kib(&words);
    let mut with_j = vec!["-j"];
    with_j.extend_from_slice(&words);
    let (json_kib, json) = peak_rss_kib(&with_j);
    eprintln!("map watch of {N} entries, top 5: peak RSS {text_kib} KiB, with -j {json_kib} KiB");
    assert!(text_kib < BOUND_KIB, "peak RSS {text_kib} KiB");
    assert!(json_kib < BOUND_KIB, "peak RSS with -j {json_kib} KiB");

    // What is shown is still right: every entry counted, the first five
    // keys by text (no rates move), each value 3 × its key, no rate change.
    let snapshots: Vec<&str> = text.lines().filter(|l| l.starts_with("map ")).collect();
    assert_eq!(snapshots.len(), 2, "{text}");
    assert!(snapshots[1].contains(&format!("entries {N} ")), "{text}");
    let last: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != snapshots[1])
        .skip(1)
        .collect();
    assert_eq!(
        last,
        [
            "  key 0 value 0 rate 0.0",
            "  key 1 value 3 rate 0.0",
            "  key 10 value 30 rate 0.0",
            "  key 100 value 300 rate 0.0",
            "  key 1000 value 3000 rate 0.0",
        ],
        "{text}"
    );
    let snap: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(snap["maps"][0]["entries"], N);
    let rows = snap["maps"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4]["key"]["key"], 1000);
    assert_eq!(rows[4]["values"]["value"], 3000);
}

/// The keys of the table rows on `screen` (rows `KEY VALUE VALUE/s`).
fn keys_shown(screen: &str) -> Vec<u32> {
    screen
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            match cells[..] {
                [k, _, "-"] => k.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn a_table_taller_than_the_screen_scrolls_and_counts_the_hidden_rows() {
    tcbpf_testkit::require_root!();
    const N: u32 = 60;
    let name = unique("wscroll");
    let name = &name[..name.len().min(15)];
    let map = hash_map(name, 4, 8, 100);
    for k in 0..N {
        tcbpf::sys::map::update(&map, &k.to_ne_bytes(), &(k as u64 * 10).to_ne_bytes(), 0).unwrap();
    }
    // One read (interval 60): every redraw below is a scroll of that read.
    let cmd = format!(
        "{BIN} watch name {name} key u32 value u64 interval 60; echo WATCH-ENDED; sleep 60"
    );
    // 15 rows: the header, 13 body lines, the line that counts the hidden
    // ones. The body is a blank line, the map's title, the column heads and
    // 60 rows: 63 lines, 50 hidden.
    let tmux = Tmux::sized(&cmd, 80, 15);
    let key = |k: &str| tmux.run(&["send-keys", "-t", "w", k]);
    let wait = |text: &str| {
        let screen = tmux.until(Duration::from_secs(10), |s| s.contains(text));
        assert!(screen.contains(text), "no '{text}' on:\n{screen}");
        screen
    };
    let first = wait("… 50 rows below   j/↓ PgDn End: scroll");
    assert_eq!(keys_shown(&first).len(), 10, "{first}");
    key("j");
    wait("… 1 row above, 49 rows below");
    key("End");
    let end = wait("… 50 rows above   k/↑ PgUp Home: scroll");
    assert_eq!(keys_shown(&end).len(), 13, "{end}");
    key("k");
    wait("… 49 rows above, 1 row below");
    key("Home");
    wait("… 50 rows below");
    // Page by page, every key is seen once and the count goes down by 13.
    let mut seen = keys_shown(&first);
    for (page, below) in [(1, 37), (2, 24), (3, 11), (4, 0)] {
        key("NPage");
        let screen = if below > 0 {
            wait(&format!("… {} rows above, {below} rows below", page * 13))
        } else {
            wait("… 50 rows above   k/↑")
        };
        seen.extend(keys_shown(&screen));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
    key("PPage");
    wait("… 37 rows above, 13 rows below");
    key("q");
    wait("WATCH-ENDED");
}

/// `BIN ARGS…` run inside `ns` to its end: exit code, stdout, stderr.
fn run_in(ns: &Netns, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, BIN])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_map_id_in_hex_is_watched_as_the_map_helper_takes_it() {
    tcbpf_testkit::require_root!();
    let name = unique("wx");
    let map = hash_map(&name, 4, 8, 8);
    tcbpf::sys::map::update(&map, &3u32.to_ne_bytes(), &9u64.to_ne_bytes(), 0).unwrap();
    let id = tcbpf::sys::info::map_info(&map).unwrap().id;
    let hex = format!("{id:#x}");
    let (code, out, err) = run_bin(BIN, &["-j", "watch", "id", &hex, "count", "1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["maps"][0]["id"], id);
    assert_eq!(v["maps"][0]["rows"][0]["values"]["value"], 9);
}

#[test]
fn a_keeper_socket_with_no_listener_is_not_found_as_in_the_map_helper() {
    let dir = TempDir::new("wk");
    // A socket file nobody listens on any more (a keeper that died).
    let stale = dir.0.join("keeper.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let stale = stale.to_str().unwrap();
    let (code, _, err) = run_bin(BIN, &["watch", "keeper", stale, "set/ctr", "count", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("keeper {stale} set/ctr")), "{err}");
    let (code, _, err) = run_bin(BIN, &["listen", ":1", "keeper", stale, "ctr"]);
    assert_eq!(code, 1, "{err}");
    let gone = dir.0.join("none.sock");
    let (code, _, err) = run_bin(
        BIN,
        &[
            "watch",
            "keeper",
            gone.to_str().unwrap(),
            "ctr",
            "count",
            "1",
        ],
    );
    assert_eq!(code, 1, "{err}");
}

#[test]
fn watch_dev_finds_the_maps_of_the_cls_bpf_and_xdp_programs_on_a_veth() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    attach(&pair.b, "v1", "demo.o");
    attach_xdp(&pair.b, "v1");
    const N: usize = 7;
    assert_eq!(pair.send_udp(4546, N), N);
    let names = |out: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect(out);
        let mut n: Vec<String> = v["maps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["map"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    // Both hooks: the classifier's counters and XDP's (its hash of
    // blocked ports has u32 values too); nothing else runs there.
    let (code, out, err) = run_in(&pair.b, &["-j", "watch", "dev", "v1", "count", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names(&out),
        ["proto_stats", "xdp_blocked", "xdp_stats"],
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let udp = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["map"] == "proto_stats")
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["key"] == 17)
        .cloned()
        .expect("the UDP row");
    assert_eq!(udp["values"]["packets"], N as u64, "{out}");
    // Egress holds no program: nothing to watch there, exit 1.
    let (code, _, err) = run_in(
        &pair.b,
        &["-j", "watch", "dev", "v1", "egress", "count", "1"],
    );
    assert_eq!(code, 1, "{err}");
    // A device that is not there is not found.
    let (code, _, err) = run_in(&pair.b, &["watch", "dev", "nope0", "count", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nope0"), "{err}");
    // Ingress alone: the same maps (XDP runs on receive).
    let (code, out, err) = run_in(&pair.b, &["-j", "watch", "dev", "v1", "in", "count", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names(&out),
        ["proto_stats", "xdp_blocked", "xdp_stats"],
        "{out}"
    );
}

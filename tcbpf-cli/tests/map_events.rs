//! `tcbpf map events` end to end: `filter add … obj bpf/events.o export
//! UDS` hands the ring buffer `rb` and the perf event array `pa` to `exec
//! bpf import … run` a script whose readers print the events real UDP
//! datagrams cause across a veth pair, typed by TYPES and by BTF type
//! name; exact event counts; Ctrl-C (SIGINT) and a closed pipe end them
//! cleanly.

mod e2e_support;

use e2e_support::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const PORT: u16 = 7777;

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
            dir: TempDir::new("events"),
        }
    }

    fn uds(&self) -> std::path::PathBuf {
        self.dir.join("maps.sock")
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn importer(&self, script: &str) -> Importer {
        let mut cmd = tcbpf("exec bpf import", &self.fs.path);
        cmd.arg(self.uds())
            .args(["run", "bash", "-c", script])
            .env("TCBPF", TCBPF);
        Importer::start(cmd, &self.uds())
    }

    fn attach_and_export(&self) {
        ok(tcbpf(
            &format!(
                "-n {} filter add dev v1 ingress bpf da obj {} sec classifier export {}",
                self.net.b.name,
                object("events.o"),
                self.uds().display()
            ),
            &self.fs.path,
        ));
    }

    fn wait_ready(&self) {
        assert!(
            wait_for(&self.dir.join("ready"), Duration::from_secs(15)),
            "readers never became ready: {}",
            self.read("errors")
        );
    }
}

/// Script lines: wait (5 s at most) until each of `files` is non-empty.
fn wait_nonempty(files: &[String]) -> String {
    files
        .iter()
        .map(|f| {
            format!("i=0; while [ ! -s {f} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ")
        })
        .collect()
}

#[test]
fn both_map_kinds_print_exactly_the_events_of_the_datagrams_sent() {
    let w = World::new();
    let (rb_out, rb_err, rb_rc) = (w.file("rb.out"), w.file("rb.err"), w.file("rb.rc"));
    let (pa_out, pa_err, pa_rc) = (w.file("pa.out"), w.file("pa.err"), w.file("pa.rc"));
    let script = format!(
        "(\"$TCBPF\" -v map events env RB value u32 u16 u16 u32 u8 bytes count 20 timeout 30 \
            > {rb_out} 2> {rb_err}; echo $? > {rb_rc}) & \
         (\"$TCBPF\" -v -j map events env PA type event timeout 60 > {pa_out} 2> {pa_err}; \
            echo $? > {pa_rc}) & \
         pa=$!; {wait} touch {ready}; \
         i=0; while [ ! -e {done} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         pkill -INT -P $pa -x tcbpf; wait",
        wait = wait_nonempty(&[rb_err.clone(), pa_err.clone()]),
        ready = w.file("ready"),
        done = w.file("done"),
    );
    let mut importer = w.importer(&script);
    w.attach_and_export();
    w.wait_ready();
    assert_eq!(w.net.send_udp(PORT, 20), 20);
    assert_eq!(w.net.send_udp(PORT + 1, 5), 5, "other ports make no event");
    // The perf reader runs until SIGINT: give the last events time to land.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(w.dir.join("done"), b"").unwrap();
    let out = importer.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Ring buffer, typed by TYPES: 20 lines in order, then exit 0 (count).
    assert_eq!(w.read("rb.rc").trim(), "0", "{}", w.read("rb.err"));
    assert!(w.read("rb.err").contains("reading ringbuf events (1 ring)"));
    let lines: Vec<Vec<String>> = w
        .read("rb.out")
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(lines.len(), 20, "{}", w.read("rb.out"));
    for (i, f) in lines.iter().enumerate() {
        assert_eq!(f[0], i.to_string(), "seq, in order");
        assert_eq!(f[2], PORT.to_string(), "dport");
        // skb->len: 14 + 20 + 8 + "packet N" (8 bytes, 9 from N = 10).
        assert_eq!(f[3], (50 + usize::from(i >= 10)).to_string(), "len");
        assert_eq!(f[4], "17", "UDP");
    }

    // Perf array, typed by the BTF type of the program using it, -j:
    // exactly 20 events over the CPUs, ended cleanly by SIGINT.
    assert_eq!(w.read("pa.rc").trim(), "0", "{}", w.read("pa.err"));
    let mut seqs: Vec<u64> = w
        .read("pa.out")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert!(v["cpu"].is_u64(), "{l}");
            assert_eq!(v["value"]["dport"], PORT, "{l}");
            assert_eq!(v["value"]["proto"], 17, "{l}");
            v["value"]["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, (0..20).collect::<Vec<u64>>(), "{}", w.read("pa.out"));
}

#[test]
fn a_closed_output_pipe_ends_the_reader_and_btf_file_types_the_events() {
    let w = World::new();
    let (rc, out) = (w.file("rc"), w.file("out"));
    let script = format!(
        "(\"$TCBPF\" -v -j map events env RB type event btf {obj} timeout 60 2> {err}; \
            echo $? > {rc}) | head -n 3 > {out} & \
         {wait} touch {ready}; wait",
        obj = object("events.o"),
        err = w.file("errors"),
        wait = wait_nonempty(&[w.file("errors")]),
        ready = w.file("ready"),
    );
    let mut importer = w.importer(&script);
    w.attach_and_export();
    w.wait_ready();
    let start = Instant::now();
    assert_eq!(w.net.send_udp(PORT, 6), 6);
    assert!(
        wait_for(Path::new(&rc), Duration::from_secs(10)),
        "the reader did not end when head closed the pipe"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "ended by the pipe, not the timeout"
    );
    let status = importer.finish();
    assert!(status.status.success());
    assert_eq!(w.read("rc").trim(), "0", "{}", w.read("errors"));
    let lines: Vec<Value> = w
        .read("out")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["value"]["seq"], i as u64);
        assert_eq!(v["value"]["len"], 50);
    }
}

#[test]
fn events_on_a_map_without_a_stream_is_a_usage_error() {
    let w = World::new();
    let pin = w.fs.join("h");
    let m = hash_map("evh", 4, 8, 4);
    tcbpf::sys::obj::pin(&m, &pin).unwrap();
    let (code, err) = fails(tcbpf(
        &format!("map events pinned {} timeout 1", pin.display()),
        &w.fs.path,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds no event stream"), "{err}");
}

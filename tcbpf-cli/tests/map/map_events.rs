//! `tcbpf map events` end to end: `filter add … obj bpf/events.o export
//! UDS` hands the ring buffer `rb` and the perf event array `pa` to `exec
//! bpf import … run` a script whose readers print the events real UDP
//! datagrams cause across a veth pair, typed by TYPES and by BTF type
//! name; exact event counts; Ctrl-C (SIGINT) and a closed pipe end them
//! cleanly.

use crate::e2e_support;

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
    tcbpf_testkit::require_root!();
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
fn a_closed_output_pipe_ends_the_reader_and_btf_file_types_the_events_in_the_dump_text_form() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let (rc, out) = (w.file("rc"), w.file("out"));
    let script = format!(
        "(\"$TCBPF\" -v map events env RB type event btf {obj} timeout 60 2> {err}; \
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
    // Text as dumps and lookups print a typed value (`{seq: 0, …}`), not
    // C's designated initialisers (`{.seq = 0, …}`).
    let out = w.read("out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("{{seq: {i}, ")), "{l}");
        assert!(l.contains(", len: 50, "), "{l}");
        assert!(!l.contains(" = "), "{l}");
    }
}

#[test]
fn events_on_a_map_without_a_stream_is_a_usage_error() {
    tcbpf_testkit::require_root!();
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

/// Pins the calling thread (and the threads it starts later, which
/// inherit it) to CPU 0, with the real `taskset`.
fn pin_this_thread_to_cpu0() {
    let tid = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = tid.file_name().unwrap().to_string_lossy().into_owned();
    run("taskset", &["-p", "-c", "0", &tid]);
}

#[test]
fn overflow_is_reported_as_lost_samples_and_a_full_ring_buffer() {
    tcbpf_testkit::require_root!();
    const SENT: usize = 800;
    const MORE: usize = 5;
    let w = World::new();
    let (rb_out, pa_out) = (w.file("rb.out"), w.file("pa.out"));
    let (rb_err, pa_err) = (w.file("rb.err"), w.file("pa.err"));
    // Both readers are stopped (SIGSTOP) while the datagrams flow, so the
    // 16 KiB ring buffer and the one-page perf ring of CPU 0 overflow.
    // The kernel writes a perf ring's lost record with its next sample:
    // MORE datagrams after the readers resume bring it out.
    let script = format!(
        "\"$TCBPF\" -v -j map events env RB timeout 60 > {rb_out} 2> {rb_err} & rb=$!; \
         \"$TCBPF\" -v -j map events env PA pages 1 timeout 60 > {pa_out} 2> {pa_err} & pa=$!; \
         {wait} kill -STOP $rb $pa; touch {ready}; \
         i=0; while [ ! -e {sent} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         kill -CONT $rb $pa; sleep 0.5; touch {resumed}; \
         i=0; while [ ! -e {done} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         sleep 0.5; kill -INT $rb $pa; wait; \
         \"$TCBPF\" map lookup env _BSS key u32 0 value u64 u64 u64 > {bss}",
        wait = wait_nonempty(&[rb_err.clone(), pa_err.clone()]),
        ready = w.file("ready"),
        sent = w.file("sent"),
        resumed = w.file("resumed"),
        done = w.file("done"),
        bss = w.file("bss"),
    );
    let mut importer = w.importer(&script);
    w.attach_and_export();
    w.wait_ready();
    pin_this_thread_to_cpu0();
    // The receiving socket's buffer overflows (it reads only afterwards);
    // the classifier at ingress sees every datagram, which .bss counts.
    w.net.send_udp(PORT, SENT);
    std::fs::write(w.dir.join("sent"), b"").unwrap();
    assert!(wait_for(&w.dir.join("resumed"), Duration::from_secs(40)));
    w.net.send_udp(PORT, MORE);
    std::fs::write(w.dir.join("done"), b"").unwrap();
    let out = importer.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = (SENT + MORE) as u64;

    // Ring buffer: what the program could not write it counted in .bss;
    // what it wrote, the reader printed; the reader saw the ring full.
    let bss = w.read("bss");
    let fields: Vec<u64> = bss
        .split("value:")
        .nth(1)
        .unwrap_or_else(|| panic!("{bss}"))
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields[0], total, "datagrams the program saw");
    let rb_lines = w.read("rb.out");
    let events = rb_lines
        .lines()
        .filter(|l| !l.starts_with("{\"ring_full\":"))
        .count() as u64;
    assert!(fields[1] > 0, "the ring overflowed: {bss}");
    assert_eq!(events + fields[1], total, "printed + refused = sent");
    assert!(
        rb_lines
            .lines()
            .any(|l| l.starts_with("{\"ring_full\":{\"pending\":")),
        "full ring reported"
    );
    assert!(
        w.read("rb.err").contains("ring buffer found full"),
        "{}",
        w.read("rb.err")
    );

    // Perf: every sample is either printed or counted in a lost record.
    let (mut samples, mut lost) = (0u64, 0u64);
    for l in w.read("pa.out").lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        match v["lost"].as_u64() {
            Some(n) => {
                assert_eq!(v["cpu"], 0, "{l}");
                lost += n
            }
            None => samples += 1,
        }
    }
    assert!(lost > 0, "CPU 0's page overflowed: {}", w.read("pa.err"));
    assert_eq!(samples + lost, total, "printed + lost = sent");
    assert!(
        w.read("pa.err").contains(&format!("{lost} lost samples")),
        "{}",
        w.read("pa.err")
    );
    // Both outputs, `lost` and `ring_full` lines with the events, are
    // what docs/json.md's schema says.
    let failures = schema_failures(
        &w.dir.join(""),
        &[
            ("map events", w.read("rb.out")),
            ("map events", w.read("pa.out")),
        ],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_idle_reader_sleeps_until_its_timeout_and_exits_0() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let pin = w.fs.join("idle_rb");
    ok(tcbpf(
        &format!(
            "map create type ringbuf key 0 value 0 entries 4096 pin {}",
            pin.display()
        ),
        &w.fs.path,
    ));
    // bash's `time` gives the reader's own CPU time: a reader that spun
    // would use about as much CPU as wall time.
    let mut cmd = std::process::Command::new("bash");
    cmd.args([
        "-c",
        &format!(
            "TIMEFORMAT='%R %U %S'; time \"{TCBPF}\" -v map events pinned {} timeout 1.5",
            pin.display()
        ),
    ]);
    let r = output(cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no events: {}", r.stdout);
    assert!(
        r.stderr.contains("stopped (timeout) after 0 events"),
        "{}",
        r.stderr
    );
    let t: Vec<f64> = r
        .stderr
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(t[0] >= 1.5 && t[0] < 5.0, "wall {} s", t[0]);
    assert!(t[1] + t[2] < 0.3, "CPU {} s while idle", t[1] + t[2]);
}

/// A FIFO at `path` with a one-page buffer, held open (read and write) by
/// the test and never read: a reader's output pipe that is full at once.
fn full_fifo(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    e2e_support::run("mkfifo", &[path.to_str().unwrap()]);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    // SAFETY: fcntl on a descriptor this test owns; no memory is passed.
    let size = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    f
}

#[test]
fn sigterm_ends_readers_whose_output_pipe_is_full() {
    tcbpf_testkit::require_root!();
    let w = World::new();
    let fifos: Vec<std::fs::File> = ["rb.fifo", "pa.fifo"]
        .iter()
        .map(|f| full_fifo(&w.dir.join(f)))
        .collect();
    // Each reader writes to a FIFO nobody reads; its pid and, when it
    // ends, its exit status go to files. 'timeout 100' bounds a reader
    // that would never see its signal.
    let reader = |map: &str, name: &str| {
        format!(
            "\"$TCBPF\" -v map events env {map} timeout 100 > {fifo} 2> {err} & \
             echo $! > {pid}.tmp; mv {pid}.tmp {pid}; ",
            fifo = w.file(&format!("{name}.fifo")),
            err = w.file(&format!("{name}.err")),
            pid = w.file(&format!("{name}.pid")),
        )
    };
    let script = format!(
        "{rb}{pa}{wait} touch {ready}; \
         wait $(cat {rb_pid}); echo $? > {rb_rc}; wait $(cat {pa_pid}); echo $? > {pa_rc}",
        rb = reader("RB", "rb"),
        pa = reader("PA", "pa"),
        wait = wait_nonempty(&[w.file("rb.err"), w.file("pa.err")]),
        ready = w.file("ready"),
        rb_pid = w.file("rb.pid"),
        pa_pid = w.file("pa.pid"),
        rb_rc = w.file("rb.rc"),
        pa_rc = w.file("pa.rc"),
    );
    let mut importer = w.importer(&script);
    w.attach_and_export();
    w.wait_ready();
    // 200 events of some 70 bytes each: far more than the one-page pipes
    // take, so both readers end up waiting to write.
    assert_eq!(w.net.send_udp(PORT, 200), 200);
    std::thread::sleep(Duration::from_millis(300));
    let pid = |name: &str| -> i32 { w.read(name).trim().parse().unwrap() };
    for name in ["rb.pid", "pa.pid"] {
        let wchan = std::fs::read_to_string(format!("/proc/{}/wchan", pid(name))).unwrap();
        assert!(
            !wchan.contains("pipe_write"),
            "{name}: blocked in a write that SIGTERM cannot end ({wchan})"
        );
    }
    let start = Instant::now();
    for name in ["rb.pid", "pa.pid"] {
        // SAFETY: kill with a pid the script reported; no memory involved.
        assert_eq!(unsafe { libc::kill(pid(name), libc::SIGTERM) }, 0);
    }
    for rc in ["rb.rc", "pa.rc"] {
        assert!(
            wait_for(&w.dir.join(rc), Duration::from_secs(3)),
            "{rc}: the reader did not end within 3 s of SIGTERM: {}",
            w.read(&rc.replace(".rc", ".err"))
        );
    }
    let took = start.elapsed();
    drop(fifos);
    let out = importer.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["rb", "pa"] {
        assert_eq!(
            w.read(&format!("{name}.rc")).trim(),
            "0",
            "{}",
            w.read(&format!("{name}.err"))
        );
        assert!(
            w.read(&format!("{name}.err"))
                .contains("stopped (interrupted)"),
            "{}",
            w.read(&format!("{name}.err"))
        );
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
}

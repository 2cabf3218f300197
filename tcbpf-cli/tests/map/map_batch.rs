//! `tcbpf map batch` (run as root against the typed_maps fixture): a
//! bash `coproc` asks a lookup and reads its answer before sending the
//! next command; errors are one line each and the batch goes on; runs of
//! updates and deletes are written with batch calls (counted with strace)
//! and end exactly as the same commands one by one would; `-j` answers
//! one JSON value per line.

use crate::typed_support;

use serde_json::json;
use std::os::fd::AsRawFd;
use tcbpf_testkit::TempDir;
use typed_support::*;

/// `tcbpf ARGS` holding the map `fd`, fed `input`.
fn batch(fd: i32, args: &str, input: &str) -> (i32, String, String) {
    let words: Vec<String> = args.split_whitespace().map(String::from).collect();
    run_with_stdin(tcbpf(&[fd], &words), input)
}

#[test]
fn a_bash_coproc_asks_and_reads_each_answer_before_the_next_command() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let fd = f.fd("counters").as_raw_fd();
    let mut bash = std::process::Command::new("bash");
    bash.arg("-c")
        .arg(coproc_script(fd))
        .env("TCBPF", env!("CARGO_BIN_EXE_tcbpf"));
    tcbpf_testkit::inherit_fds(&mut bash, &[fd]);
    let out = bash.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        format!(
            "A1 key: 17  value: {{packets: 5, bytes: 6}}\nA2 key: 17  value: {{packets: 7, bytes: 8}}\nA3 error: LINE 5: fd {fd}: key 99 not found\nrc=1\n"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.raw("counters", &k32(17)), Some(u64s(&[7, 8])));
}

/// Each `read` waits (5 s at most) for the answer to the lookup just sent:
/// it comes only if tcbpf flushed it without waiting for more input.
fn coproc_script(fd: i32) -> String {
    format!(
        r#"coproc T {{ "$TCBPF" map batch; }}
        pid=$T_PID
        echo "update fd {fd} key 17 value packets 5 bytes 6" >&"${{T[1]}}"
        echo "lookup fd {fd} key 17" >&"${{T[1]}}"
        read -t 5 -r a <&"${{T[0]}}" || {{ echo "no answer 1"; exit 9; }}
        echo "A1 $a"
        echo "update fd {fd} key 17 value json '{{\"packets\": 7, \"bytes\": 8}}'" >&"${{T[1]}}"
        echo "lookup fd {fd} key 17" >&"${{T[1]}}"
        read -t 5 -r a <&"${{T[0]}}" || {{ echo "no answer 2"; exit 9; }}
        echo "A2 $a"
        echo "lookup fd {fd} key 99" >&"${{T[1]}}"
        read -t 5 -r a <&"${{T[0]}}" || {{ echo "no answer 3"; exit 9; }}
        echo "A3 $a"
        exec {{T[1]}}>&-
        wait $pid
        echo "rc=$?""#
    )
}

#[test]
fn errors_are_one_line_each_the_batch_goes_on_and_the_status_says_so() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let input = "\
update @counters key 1 value packets 1 bytes 1
# a comment, then a blank line

lookup @counters key 1
update @counters key 2 value packets x bytes 1
bogus
lookup @counters key 2
dump @counters
update @counters key 2 value packets 2 bytes 2
lookup @counters key 'unterminated
next @counters
";
    let fd = f.fd("counters").as_raw_fd();
    let (code, out, err) = batch(
        fd,
        "map batch",
        &input.replace("@counters", &format!("fd {fd}")),
    );
    assert_eq!(code, 2, "{err}\n{out}");
    assert_eq!(err, "tcbpf: batch: 4 of 11 lines failed\n", "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "key: 1  value: {packets: 1, bytes: 1}");
    assert_eq!(
        lines[1],
        "error: LINE 5: value.packets: expected an integer for unsigned long long, got a string"
    );
    assert!(
        lines[2].starts_with("error: LINE 6: unknown map command 'bogus'"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], format!("error: LINE 7: fd {fd}: key 2 not found"));
    assert_eq!(lines[4], "key: 1  value: {packets: 1, bytes: 1}");
    assert_eq!(lines[5], "error: LINE 10: unterminated ' quote");
    assert!(lines[6].starts_with("next key: "), "{}", lines[6]);
    assert_eq!(f.raw("counters", &k32(2)), Some(u64s(&[2, 2])));
    let (code, out, _) = batch(
        fd,
        "-j map batch",
        &format!("lookup fd {fd} key 2\nlookup fd {fd} key 3\n"),
    );
    assert_eq!(code, 1);
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        answers,
        vec![
            json!({"key": 2, "value": {"packets": 2, "bytes": 2}}),
            json!({"error": format!("fd {fd}: key 3 not found"), "line": 2})
        ]
    );
}

#[test]
fn runs_of_updates_and_deletes_become_batch_calls_and_end_as_one_by_one() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let fd = f.fd("counters").as_raw_fd();
    let mut input = String::new();
    for k in 0..500u32 {
        input.push_str(&format!(
            "update fd {fd} key {k} value packets {k} bytes 1\n"
        ));
    }
    // A key given twice keeps its last value; a delete of a missing key in
    // the middle of a run fails alone.
    input.push_str(&format!("update fd {fd} key 7 value packets 70 bytes 7\n"));
    for k in 100..200u32 {
        input.push_str(&format!("delete fd {fd} key {k}\n"));
    }
    input.push_str(&format!("delete fd {fd} key 150\n"));
    for k in 200..210u32 {
        input.push_str(&format!("delete fd {fd} key {k}\n"));
    }
    input.push_str(&format!("lookup fd {fd} key 7\n"));
    let dir = TempDir::new("batch");
    let file = dir.join("cmds");
    std::fs::write(&file, &input).unwrap();
    let trace = dir.join("trace");
    let mut words = vec![
        "-f".to_string(),
        "-e".into(),
        "trace=bpf".into(),
        "-o".into(),
        trace.display().to_string(),
        env!("CARGO_BIN_EXE_tcbpf").into(),
        "map".into(),
        "batch".into(),
        "from".into(),
        file.display().to_string(),
    ];
    let mut strace = std::process::Command::new("strace");
    strace.args(words.drain(..));
    tcbpf_testkit::inherit_fds(&mut strace, &[fd]);
    let out = strace.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout,
        format!("error: LINE 602: fd {fd}: key 150 not found\nkey: 7  value: {{packets: 70, bytes: 7}}\n")
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let count = |cmd: &str| trace.lines().filter(|l| l.contains(cmd)).count();
    assert!(count("BPF_MAP_UPDATE_BATCH") >= 1, "{trace}");
    assert!(count("BPF_MAP_DELETE_BATCH") >= 1);
    assert!(
        count("BPF_MAP_UPDATE_ELEM") < 10,
        "{} single updates",
        count("BPF_MAP_UPDATE_ELEM")
    );
    // The map ends as the commands one by one would leave it.
    for k in 0..500u32 {
        let want = match k {
            7 => Some(u64s(&[70, 7])),
            100..=209 => None,
            _ => Some(u64s(&[k as u64, 1])),
        };
        assert_eq!(f.raw("counters", &k32(k)), want, "key {k}");
    }
}

/// A batch kept running: lines go in, answer lines come out, and its
/// /proc entry can be read between them.
struct LiveBatch {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    answers: std::io::BufReader<std::process::ChildStdout>,
}

impl LiveBatch {
    fn start(fds: &[i32]) -> LiveBatch {
        use std::process::Stdio;
        let mut child = tcbpf(fds, &["map".into(), "batch".into()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        LiveBatch {
            input: child.stdin.take(),
            answers: std::io::BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.input.as_mut().unwrap().write_all(bytes).unwrap();
    }

    fn answer(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        line
    }

    fn status_field(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = text.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn finish(mut self) -> i32 {
        drop(self.input.take());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for LiveBatch {
    fn drop(&mut self) {
        if self.input.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_line_past_one_mib_fails_alone_and_is_never_held_in_memory() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let fd = f.fd("counters").as_raw_fd();
    f.put("counters", &k32(17), &u64s(&[5, 6]));
    let mut b = LiveBatch::start(&[fd]);
    // 64 MiB without a newline, written while the batch reads it.
    let writer = {
        let mut input = b.input.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..64 {
                input.write_all(&chunk).unwrap();
            }
            input
                .write_all(format!("\nlookup fd {fd} key 17\n").as_bytes())
                .unwrap();
            input
        })
    };
    assert_eq!(
        b.answer(),
        "error: LINE 1: the line is longer than 1048576 bytes: skipped to its end\n"
    );
    assert_eq!(b.answer(), "key: 17  value: {packets: 5, bytes: 6}\n");
    b.input = Some(writer.join().unwrap());
    let peak_kib = b.status_field("VmHWM:");
    assert!(
        peak_kib < 24 << 10,
        "peak RSS {peak_kib} KiB for a 64 MiB line"
    );
    assert_eq!(b.finish(), 2);
}

#[test]
fn one_descriptor_per_map_however_many_ways_its_pin_is_spelt() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    f.put("counters", &k32(17), &u64s(&[5, 6]));
    let fs = tcbpf_testkit::Bpffs::new();
    let pin = fs.join("counters");
    tcbpf::sys::obj::pin(f.fd("counters"), &pin).unwrap();
    let mut b = LiveBatch::start(&[]);
    let spellings = 300;
    for i in 1..=spellings {
        // /fs/counters, /fs//counters, /fs///counters…
        let path = format!("{}{}counters", fs.as_str(), "/".repeat(i));
        b.send(format!("lookup pinned {path} key 17\n").as_bytes());
        assert_eq!(b.answer(), "key: 17  value: {packets: 5, bytes: 6}\n");
    }
    let fds = b.open_fds();
    assert!(fds < 16, "{fds} descriptors open for one map");
    assert_eq!(b.finish(), 0);
}

#[test]
fn watch_and_load_from_standard_input_are_refused_inside_a_batch_and_it_goes_on() {
    tcbpf_testkit::require_root!();
    let f = Fixture::load();
    let fd = f.fd("counters").as_raw_fd();
    let input = format!(
        "\
update fd {fd} key 1 value packets 1 bytes 1
watch fd {fd} count 1
load fd {fd} json from -
load fd {fd} key u32 value u64 u64
update fd {fd} key 2 value packets 2 bytes 2
lookup fd {fd} key 2
"
    );
    let (code, out, err) = batch(fd, "map batch", &input);
    assert_eq!(code, 2, "{err}\n{out}");
    assert_eq!(
        out,
        "\
error: LINE 2: batch: 'watch' cannot run inside a batch (it would replace the batch and drop the lines after it); run it on its own
error: LINE 3: load: standard input holds the batch's own commands: inside a batch, load reads only 'from FILE'
error: LINE 4: load: standard input holds the batch's own commands: inside a batch, load reads only 'from FILE'
key: 2  value: {packets: 2, bytes: 2}
",
        "{err}"
    );
    assert_eq!(f.raw("counters", &k32(1)), Some(u64s(&[1, 1])));
    // A load from a file still works inside a batch.
    let dir = TempDir::new("batch-load");
    let data = dir.join("entries");
    std::fs::write(&data, "3 30 31\n").unwrap();
    let (code, out, err) = batch(
        fd,
        "map batch",
        &format!(
            "load fd {fd} key u32 value u64 u64 from {}\n",
            data.display()
        ),
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert_eq!(f.raw("counters", &k32(3)), Some(u64s(&[30, 31])));
}

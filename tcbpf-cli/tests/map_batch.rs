//! `tcbpf map batch` (run as root against the typed_maps fixture): a
//! bash `coproc` asks a lookup and reads its answer before sending the
//! next command; errors are one line each and the batch goes on; runs of
//! updates and deletes are written with batch calls (counted with strace)
//! and end exactly as the same commands one by one would; `-j` answers
//! one JSON value per line.

mod typed_support;

use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
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
    // SAFETY: fcntl is async-signal-safe; the child only clears FD_CLOEXEC.
    unsafe {
        bash.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
    // SAFETY: fcntl is async-signal-safe; the child only clears FD_CLOEXEC.
    unsafe {
        strace.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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

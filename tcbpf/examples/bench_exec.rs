//! Benchmark driver for `scripts/bench-exec.sh`: the time from the start of
//! an export until the imported command is running, for `tcbpf exec bpf
//! import` and `tc exec bpf import` receiving from the same exporter
//! (`tcbpf map export`), runs interleaved, medians side by side.
//!
//! ```text
//! bench_exec --tcbpf PATH [--tc PATH] [--maps N] [--runs R]
//! ```
//!
//! One run: start the importer with `run /bin/echo ready` and wait until its
//! socket exists (not timed); then take t0, spawn the exporter, and take t1
//! when "ready" arrives on the importer's stdout (the command has been
//! exec'd and is running). The exporter and the command are the same
//! programs for both importers, so the difference is the importer's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf::sys::{info::map_info, map, MapFd};

struct Args {
    tcbpf: PathBuf,
    tc: PathBuf,
    maps: usize,
    runs: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        tcbpf: PathBuf::new(),
        tc: PathBuf::from("/usr/sbin/tc"),
        maps: 3,
        runs: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(w) = it.next() {
        let v = it.next().ok_or(format!("{w} needs a value"))?;
        match w.as_str() {
            "--tcbpf" => a.tcbpf = PathBuf::from(v),
            "--tc" => a.tc = PathBuf::from(v),
            "--maps" => a.maps = v.parse().map_err(|_| "--maps: not a number")?,
            "--runs" => a.runs = v.parse().map_err(|_| "--runs: not a number")?,
            _ => return Err(format!("unknown argument {w}")),
        }
    }
    if a.tcbpf.as_os_str().is_empty() {
        return Err("--tcbpf PATH is required".into());
    }
    if a.maps == 0 || a.maps > 64 {
        return Err("--maps must be 1..=64 (tc's importer takes at most 64)".into());
    }
    Ok(a)
}

/// One timed hand-off; returns the elapsed time.
fn one_run(
    importer: &[&str],
    exporter: &Path,
    export_args: &[String],
    sock: &Path,
) -> Result<Duration, String> {
    let _ = std::fs::remove_file(sock);
    let mut child = Command::new(importer[0])
        .args(&importer[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", importer[0]))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::symlink_metadata(sock).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{} never bound {}", importer[0], sock.display()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut out = child.stdout.take().unwrap();
    let t0 = Instant::now();
    let mut export = Command::new(exporter)
        .args(export_args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("exporter: {e}"))?;
    let mut byte = [0u8; 1];
    let got = out.read(&mut byte);
    let elapsed = t0.elapsed();
    let status = export.wait().map_err(|e| e.to_string())?;
    let _ = child.wait();
    let _ = std::fs::remove_file(sock);
    match got {
        Ok(1) if status.success() => Ok(elapsed),
        _ => Err(format!(
            "run through {} failed (export {status})",
            importer[0]
        )),
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_exec: {e}");
            std::process::exit(2);
        }
    };
    let maps: Vec<MapFd> = (0..a.maps)
        .map(|i| {
            map::create(&map::MapCreate {
                map_type: tcbpf::abi::MapType::Hash as u32,
                key_size: 4,
                value_size: 8,
                max_entries: 64,
                name: &format!("bench_exec{i}"),
                ..Default::default()
            })
            .expect("create map (run as root)")
        })
        .collect();
    let sock = std::env::temp_dir().join(format!("tcbpf-bench-exec-{}", std::process::id()));
    let sock_s = sock.to_str().unwrap().to_string();
    let mut export_args: Vec<String> = vec!["map".into(), "export".into(), sock_s.clone()];
    for (i, m) in maps.iter().enumerate() {
        export_args.extend([
            "id".into(),
            map_info(m).unwrap().id.to_string(),
            "id".into(),
            i.to_string(),
        ]);
    }
    let tcbpf = a.tcbpf.to_str().unwrap();
    let tc = a.tc.to_str().unwrap();
    let ours = [
        tcbpf,
        "exec",
        "bpf",
        "import",
        &sock_s,
        "run",
        "/bin/echo",
        "ready",
    ];
    let theirs = [
        tc,
        "exec",
        "bpf",
        "import",
        &sock_s,
        "run",
        "/bin/echo",
        "ready",
    ];
    let (mut t_ours, mut t_tc) = (Vec::new(), Vec::new());
    // Warm-up (page cache, dynamic linking), then interleaved timed runs.
    for _ in 0..3 {
        for imp in [&ours[..], &theirs[..]] {
            if let Err(e) = one_run(imp, &a.tcbpf, &export_args, &sock) {
                eprintln!("bench_exec: {e}");
                std::process::exit(1);
            }
        }
    }
    for _ in 0..a.runs {
        for (imp, times) in [(&ours[..], &mut t_ours), (&theirs[..], &mut t_tc)] {
            match one_run(imp, &a.tcbpf, &export_args, &sock) {
                Ok(d) => times.push(d),
                Err(e) => {
                    eprintln!("bench_exec: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    let (m_ours, m_tc) = (median(&mut t_ours), median(&mut t_tc));
    let p90 = |v: &[Duration]| v[v.len() * 9 / 10];
    println!(
        "export start -> imported command running, {} maps, {} runs each (median, p90)",
        a.maps, a.runs
    );
    println!("  {:<28} {:>12} {:>12}", "importer", "median", "p90");
    println!(
        "  {:<28} {:>12} {:>12}",
        "tcbpf exec bpf import",
        ms(m_ours),
        ms(p90(&t_ours))
    );
    println!(
        "  {:<28} {:>12} {:>12}",
        "tc exec bpf import",
        ms(m_tc),
        ms(p90(&t_tc))
    );
    println!(
        "  tcbpf/tc median ratio: {:.2} (target: <= 1.00, and tcbpf <= 5 ms)",
        m_ours.as_secs_f64() / m_tc.as_secs_f64()
    );
}

//! Load for a keeper, through the library's client (no process per
//! request), for `scripts/soak-keeper.sh` and `scripts/bench-keeper.sh`:
//!
//! ```text
//! keeper_load get SOCK SET THREADS REQUESTS [reconnect]
//!     THREADS clients at once, each sending REQUESTS gets of SET (on one
//!     connection, or a new one per request with `reconnect`); prints the
//!     rate and the latency of a get (median, p90, p99).
//! keeper_load garbage SOCK N [FIRST]
//!     N hostile clients (kinds in turn, starting at kind FIRST mod 6), each on its own connection: garbage, a huge
//!     request, a request with descriptors attached, a truncated header, an
//!     unknown operation, or a valid get abandoned before the reply. Every
//!     one that gets an answer must get "bad request"; exits 1 otherwise.
//! keeper_load handoff TCBPF TC SOCK SET RUNS MAP…
//!     the time from a request until the command runs with the maps, RUNS
//!     times each, interleaved: `tcbpf exec bpf import keeper SOCK set SET
//!     run /bin/echo ready`, vs `tcbpf exec bpf import UDS` and vs `tc exec
//!     bpf import UDS` (both bound beforehand, not timed) fed by `tcbpf map
//!     export UDS MAP…` (MAP: words of a MAP reference, e.g. pinned:PATH).
//! keeper_load hold SOCK N SECS
//!     opens N connections (one after the other) and holds them, without a
//!     word, until SECS seconds passed since it started; prints how many
//!     connects succeeded and failed (an attack on the keeper's limits).
//! keeper_load unread SOCK SET N SECS
//!     N connections, each sending `get SET` requests in a loop and never
//!     reading a reply, for SECS seconds (a slow reader).
//! ```

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tcbpf::keeper::proto::{self, Op, Request, Status};
use tcbpf::keeper::{Access, Client};

fn usage() -> ! {
    eprintln!(
        "usage: keeper_load get SOCK SET THREADS REQUESTS [reconnect] | garbage SOCK N [FIRST] | hold SOCK N SECS | unread SOCK SET N SECS"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("get") if args.len() >= 5 => {
            let sock = PathBuf::from(&args[1]);
            let set = args[2].clone();
            let threads: usize = args[3].parse().unwrap_or_else(|_| usage());
            let requests: usize = args[4].parse().unwrap_or_else(|_| usage());
            let reconnect = args.get(5).map(String::as_str) == Some("reconnect");
            get(sock, set, threads, requests, reconnect);
        }
        Some("garbage") if args.len() == 3 || args.len() == 4 => {
            let n: usize = args[2].parse().unwrap_or_else(|_| usage());
            let first: usize = args
                .get(3)
                .map_or(0, |a| a.parse().unwrap_or_else(|_| usage()));
            garbage(&PathBuf::from(&args[1]), n, first);
        }
        Some("handoff") if args.len() >= 7 => {
            let runs: usize = args[5].parse().unwrap_or_else(|_| usage());
            let maps: Vec<String> = args[6..]
                .iter()
                .flat_map(|m| m.splitn(2, ':').map(String::from).collect::<Vec<_>>())
                .collect();
            handoff(&args[1], &args[2], &args[3], &args[4], runs, &maps);
        }
        Some("hold") if args.len() == 4 => {
            let n: usize = args[2].parse().unwrap_or_else(|_| usage());
            let secs: f64 = args[3].parse().unwrap_or_else(|_| usage());
            hold(&PathBuf::from(&args[1]), n, Duration::from_secs_f64(secs));
        }
        Some("unread") if args.len() == 5 => {
            let n: usize = args[3].parse().unwrap_or_else(|_| usage());
            let secs: f64 = args[4].parse().unwrap_or_else(|_| usage());
            unread(
                &PathBuf::from(&args[1]),
                &args[2],
                n,
                Duration::from_secs_f64(secs),
            );
        }
        _ => usage(),
    }
}

/// Ends the process when `after` has passed (a connect or a send may
/// block for good when the keeper stops taking them: the attack is bounded
/// by time, not by the keeper's goodwill).
fn exit_after(after: Duration, line: impl Fn() -> String + Send + 'static) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // Not println!: with nobody reading stdout any more it would
        // panic this thread and the process would never end.
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{}", line());
        std::process::exit(0);
    });
}

fn hold(sock: &std::path::Path, n: usize, secs: Duration) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static CONNECTED: AtomicUsize = AtomicUsize::new(0);
    static FAILED: AtomicUsize = AtomicUsize::new(0);
    exit_after(secs, || {
        format!(
            "hold connected {} failed {}",
            CONNECTED.load(Relaxed),
            FAILED.load(Relaxed)
        )
    });
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        match Client::connect(sock) {
            Ok(c) => {
                held.push(c);
                CONNECTED.fetch_add(1, Relaxed);
            }
            Err(_) => {
                FAILED.fetch_add(1, Relaxed);
            }
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn unread(sock: &std::path::Path, set: &str, n: usize, secs: Duration) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static SENT: AtomicUsize = AtomicUsize::new(0);
    exit_after(secs, || format!("unread sent {}", SENT.load(Relaxed)));
    let req = proto::encode_request(&Request::new(Op::Get, set, &[], Access::ReadOnly)).unwrap();
    for _ in 0..n {
        let (sock, req) = (sock.to_path_buf(), req.clone());
        std::thread::spawn(move || {
            let Ok(c) = Client::connect(&sock) else {
                return;
            };
            while c.send_raw(&req, &[]).is_ok() {
                SENT.fetch_add(1, Relaxed);
            }
            // Refused or dropped: keep the socket (unread) until the end.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Reads the child's stdout until "ready": the command is running.
fn wait_ready(child: &mut std::process::Child) -> Result<(), String> {
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.windows(5).any(|w| w == b"ready") {
        let n = out.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("no 'ready' ({:?})", child.wait()));
        }
        got.extend_from_slice(&buf[..n]);
    }
    child.wait().map_err(|e| e.to_string())?;
    Ok(())
}

fn spawn(argv: &[&str]) -> std::process::Child {
    std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]))
}

/// One socket hand-off: importer bound first (not timed), then the export
/// timed until the command runs.
fn socket_run(importer: &[&str], tcbpf: &str, uds: &str, maps: &[String]) -> Duration {
    let _ = std::fs::remove_file(uds);
    let mut child = spawn(importer);
    while std::fs::symlink_metadata(uds).is_err() {
        std::thread::sleep(Duration::from_micros(200));
    }
    let t0 = Instant::now();
    let mut export: Vec<&str> = vec![tcbpf, "map", "export", uds];
    export.extend(maps.iter().map(String::as_str));
    let mut exporter = spawn(&export);
    wait_ready(&mut child).expect("importer");
    let took = t0.elapsed();
    let _ = exporter.wait();
    took
}

fn handoff(tcbpf: &str, tc: &str, sock: &str, set: &str, runs: usize, maps: &[String]) {
    let uds = format!("{sock}.bench-uds");
    let keeper_argv = [
        tcbpf,
        "exec",
        "bpf",
        "import",
        "keeper",
        sock,
        "set",
        set,
        "run",
        "/bin/echo",
        "ready",
    ];
    let tcbpf_imp = [
        tcbpf,
        "exec",
        "bpf",
        "import",
        &uds,
        "run",
        "/bin/echo",
        "ready",
    ];
    let tc_imp = [
        tc,
        "exec",
        "bpf",
        "import",
        &uds,
        "run",
        "/bin/echo",
        "ready",
    ];
    let (mut k, mut u, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut c = spawn(&keeper_argv);
        wait_ready(&mut c).expect("keeper client");
        k.push(t0.elapsed());
        u.push(socket_run(&tcbpf_imp, tcbpf, &uds, maps));
        t.push(socket_run(&tc_imp, tcbpf, &uds, maps));
    }
    let _ = std::fs::remove_file(&uds);
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
        (at(0.5), at(0.9))
    };
    let (km, kp) = stats(&mut k);
    let (um, up) = stats(&mut u);
    let (tm, tp) = stats(&mut t);
    println!(
        "request -> command running, {runs} runs each, {} map(s), interleaved:",
        maps.len() / 2
    );
    println!("  exec bpf import keeper ... run      median {km:.2} ms  p90 {kp:.2} ms");
    println!("  exec bpf import UDS + map export     median {um:.2} ms  p90 {up:.2} ms  (keeper/this {:.2})", km / um);
    println!("  tc exec bpf import UDS + map export  median {tm:.2} ms  p90 {tp:.2} ms  (keeper/this {:.2})", km / tm);
}

fn get(sock: PathBuf, set: String, threads: usize, requests: usize, reconnect: bool) {
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (sock, set) = (sock.clone(), set.clone());
            std::thread::spawn(move || {
                let mut times = Vec::with_capacity(requests);
                let mut client = None;
                for _ in 0..requests {
                    let t = Instant::now();
                    if reconnect || client.is_none() {
                        client = Some(Client::connect(&sock).expect("connect"));
                    }
                    let got = client
                        .as_ref()
                        .unwrap()
                        .get(&set, &[], Access::Best, false)
                        .expect("get");
                    drop(got);
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    let mut all: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let wall = start.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "gets {} threads {threads} {} seconds {:.3} rate {:.0}/s median {:.1} us p90 {:.1} us p99 {:.1} us",
        all.len(),
        if reconnect { "connection-per-get" } else { "one-connection-each" },
        wall.as_secs_f64(),
        all.len() as f64 / wall.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.9).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}

fn garbage(sock: &std::path::Path, n: usize, first: usize) {
    let good = proto::encode_request(&Request::new(Op::Get, "", &[], Access::Best)).unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    let (mut refused, mut abandoned, mut wrong) = (0, 0, 0);
    for i in first..first + n {
        let c = Client::connect(sock).expect("connect");
        let reply = match i % 6 {
            0 => c.raw_request(b"\x00garbage\xff", &[]),
            1 => c.raw_request(&vec![0x41; 64 * 1024], &[]),
            2 => c.raw_request(&good, &[file.as_fd(), file.as_fd()]),
            3 => c.raw_request(b"TCB", &[]),
            4 => c.raw_request(b"TCBK\x01\x63\x00\x00\x00", &[]),
            _ => {
                // Ask and hang up before the reply: the keeper's send
                // fails or lands in a closed socket; nothing must stay.
                c.send_raw(&good, &[]).expect("send");
                drop(c);
                abandoned += 1;
                continue;
            }
        };
        match reply {
            Ok((Status::BadRequest, _)) => refused += 1,
            other => {
                wrong += 1;
                eprintln!("hostile request {i}: unexpected answer {other:?}");
            }
        }
    }
    println!("garbage {n} refused {refused} abandoned {abandoned} wrong {wrong}");
    if wrong > 0 {
        std::process::exit(1);
    }
}

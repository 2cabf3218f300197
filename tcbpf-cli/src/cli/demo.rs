//! `tcbpf demo`: the whole exec-proxy flow on a built-in example, with
//! nothing else needed.
//!
//! Two network namespaces joined by a veth pair; the example classifier
//! (counting packets and bytes per IP protocol) is attached on one end with
//! `filter add … export UDS`; its maps go to `exec bpf import UDS run` a
//! shell loop that prints the counters with `tcbpf map dump`; UDP and ICMP
//! traffic crosses the pair for a few seconds. Everything the demo made is
//! removed when it ends, fails or is interrupted. The steps run this very
//! binary's subcommands, so the demo shows what an operator would type.

use super::error::CliError;
use super::output::Global;
use super::words::{keywords, Words};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tcbpf::sys;
use tcbpf::sys::frontend::interrupted;

/// The example classifier, compiled from `bpf/demo.c`.
const DEMO_OBJECT: &[u8] = include_bytes!("../../../bpf/demo.o");

pub const USAGE: &str = "\
Usage: tcbpf demo [ watch ] [ seconds N ]

Creates two network namespaces joined by a veth pair, attaches the built-in
classifier (packets and bytes per IP protocol) on the receiving end, exports
its maps to `tcbpf exec bpf import … run` a loop that prints them with
`tcbpf map dump`, and sends UDP and ICMP traffic for N seconds (default 5).
With 'watch' the shell runs `tcbpf map watch` instead: the counters and
their rates in the live view; 'q' or Ctrl-C there ends the view and the
demo, which then prints the final counters. 'watch' needs tcbpf-exporter
beside tcbpf or on PATH (checked before anything is set up).
Removes everything it created when it ends or is interrupted. Needs root.
";

/// Runs `tcbpf demo …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let mut seconds = 5u64;
    let mut watch = false;
    while let Some(word) = w.next() {
        match DemoOption::choose(&word)? {
            DemoOption::Watch => watch = true,
            DemoOption::Seconds => seconds = w.number("seconds")?,
        }
    }
    if !(1..=3600).contains(&seconds) {
        return Err(CliError::usage("seconds must be between 1 and 3600"));
    }
    // The live view is tcbpf-exporter's: without it there is nothing to
    // show, so say so before any namespace exists.
    if watch && super::external::find_exporter().is_none() {
        return Err(CliError::not_found(format!(
            "demo watch needs {0}, found neither beside tcbpf nor on PATH: build it \
             (cargo build --release -p {0}, beside target/release/tcbpf) or install \
             all three binaries (scripts/install.sh)",
            super::external::EXPORTER
        )));
    }
    sys::frontend::catch_interrupts();
    let mut lab = Lab::create()?;
    let result = lab.run(g, seconds, watch);
    drop(lab);
    if interrupted() {
        return Err(CliError::failure(
            "interrupted; everything the demo created is removed",
        ));
    }
    result
}

keywords! {
    /// The options of `tcbpf demo`.
    pub(crate) enum DemoOption("demo option") { Seconds = "seconds", Watch = "watch" }
}

/// Everything the demo creates; dropping it removes all of it.
struct Lab {
    dir: PathBuf,
    ns_tx: String,
    ns_rx: String,
    importer: Option<Child>,
}

const DEV_TX: &str = "demo-tx";
const DEV_RX: &str = "demo-rx";
const ADDR_TX: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const ADDR_RX: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

impl Lab {
    fn create() -> Result<Lab, CliError> {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("tcbpf-demo-{pid}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::from(e).context(format!("creating {}", dir.display())))?;
        let lab = Lab {
            dir,
            ns_tx: format!("tcbpf-demo-tx-{pid}"),
            ns_rx: format!("tcbpf-demo-rx-{pid}"),
            importer: None,
        };
        std::fs::write(lab.object(), DEMO_OBJECT)
            .map_err(|e| CliError::from(e).context("writing the example object"))?;
        ip(&["netns", "add", &lab.ns_tx])?;
        ip(&["netns", "add", &lab.ns_rx])?;
        ip(&[
            "link", "add", DEV_TX, "netns", &lab.ns_tx, "type", "veth", "peer", "name", DEV_RX,
            "netns", &lab.ns_rx,
        ])?;
        for (ns, dev, addr) in [(&lab.ns_tx, DEV_TX, ADDR_TX), (&lab.ns_rx, DEV_RX, ADDR_RX)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    fn object(&self) -> PathBuf {
        self.dir.join("demo.o")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("maps.sock")
    }

    fn run(&mut self, g: &Global, seconds: u64, watch: bool) -> Result<(), CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::from(e).context("finding the tcbpf binary"))?;
        say(&format!(
            "namespaces {} ({ADDR_TX}) and {} ({ADDR_RX}) joined by veth {DEV_TX}/{DEV_RX}",
            self.ns_tx, self.ns_rx
        ));

        // The importer: its shell owns the maps and prints them every second.
        // In watch mode it shows the live view, then marks its end (q,
        // Ctrl-C or the last round) with a file, waits for the demo to stop
        // the traffic (its stdin closes), and prints the final counters on
        // the normal screen.
        let rounds = seconds + 1;
        let view_ended = self.dir.join("view-ended");
        let script = if watch {
            format!(
                "\"$TCBPF\" map watch env PROTO_STATS interval 1 count {rounds} </dev/null; st=$?; \
                 : > \"$VIEW_ENDED\"; read _ || true; \
                 echo \"--- final counters: protocol (1 ICMP, 6 TCP, 17 UDP, 255 not IPv4) -> packets bytes\"; \
                 \"$TCBPF\" map dump env PROTO_STATS key u32 value u64 u64 || exit 1; exit $st"
            )
        } else {
            format!(
            "echo \"shell holds BPF_NUM_MAPS=$BPF_NUM_MAPS, proto_stats at fd $BPF_MAP_PROTO_STATS\"; \
             i=0; while [ $i -lt {rounds} ]; do sleep 1; i=$((i+1)); \
             echo \"--- after ${{i}}s: protocol (1 ICMP, 6 TCP, 17 UDP, 255 not IPv4) -> packets bytes\"; \
             \"$TCBPF\" map dump env PROTO_STATS key u32 value u64 u64 || exit 1; done"
            )
        };
        let uds = self.socket();
        say(&format!(
            "tcbpf exec bpf import {} run sh -c '{}'",
            uds.display(),
            if watch {
                "…map watch…"
            } else {
                "…map dump…"
            }
        ));
        let importer = Command::new(&exe)
            .args(["exec", "bpf", "import"])
            .arg(&uds)
            .args(["run", "sh", "-c", &script])
            .env("TCBPF", &exe)
            .env("VIEW_ENDED", &view_ended)
            .stdin(if watch { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .map_err(|e| CliError::from(e).context("starting the importer"))?;
        self.importer = Some(importer);
        wait_for(&uds, Duration::from_secs(5))?;

        // Attach and export: the maps go to the waiting importer.
        let object = self.object();
        say(&format!(
            "tcbpf -n {} filter add dev {DEV_RX} ingress bpf da obj {} sec classifier export {}",
            self.ns_rx,
            object.display(),
            uds.display()
        ));
        let mut attach = Command::new(&exe);
        if g.verbose {
            attach.arg("-v");
        }
        let status = attach
            .args([
                "-n",
                &self.ns_rx,
                "filter",
                "add",
                "dev",
                DEV_RX,
                "ingress",
                "bpf",
                "da",
                "obj",
            ])
            .arg(&object)
            .args(["sec", "classifier", "export"])
            .arg(&uds)
            .status()
            .map_err(|e| CliError::from(e).context("running filter add"))?;
        if !status.success() {
            return Err(CliError::failure("filter add failed (see above)"));
        }
        let show = Command::new(&exe)
            .args([
                "-n",
                &self.ns_rx,
                "filter",
                "show",
                "dev",
                DEV_RX,
                "ingress",
            ])
            .output()
            .map_err(|e| CliError::from(e).context("running filter show"))?;
        print!("{}", String::from_utf8_lossy(&show.stdout));

        // The live view owns the screen while it runs: report afterwards.
        if !watch {
            say(&format!(
                "sending UDP and ICMP from {} to {ADDR_RX} for {seconds}s",
                self.ns_tx
            ));
        }
        // In watch mode the traffic stops as soon as the view ends.
        let view_open = || !(watch && view_ended.exists());
        let sent = send_traffic(&self.ns_tx, Duration::from_secs(seconds), view_open)?;
        let sent = format!(
            "sent {} UDP datagrams and {} ICMP echo requests",
            sent.0, sent.1
        );
        if watch {
            // The view runs one round past the traffic: wait for its end
            // before writing to the terminal (bounded by that round).
            let limit = Instant::now() + Duration::from_secs(5);
            while view_open() && !interrupted() && Instant::now() < limit {
                if self.importer_exited() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        say(&sent);
        if watch {
            // Let the last packets reach the counters, then close the
            // shell's stdin: it prints the final counters.
            std::thread::sleep(Duration::from_millis(200));
            drop(self.importer.as_mut().and_then(|c| c.stdin.take()));
        }

        // Wait for the shell's last round, unless interrupted: then Drop
        // kills it at once instead of letting its loop run out.
        let importer = self.importer.as_mut().expect("importer started above");
        let status = loop {
            if interrupted() {
                return Ok(());
            }
            match importer.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    return Err(CliError::from(e).context("waiting for the importer"));
                }
            }
        };
        self.importer = None;
        if !status.success() {
            return Err(CliError::failure(format!(
                "the importing shell failed: {status}"
            )));
        }
        say("done; removing the namespaces, veth pair, filter and socket");
        Ok(())
    }
}

impl Lab {
    /// True once the importing shell has ended (or cannot be waited for).
    fn importer_exited(&mut self) -> bool {
        self.importer
            .as_mut()
            .map_or(true, |c| !matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.importer.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.ns_tx, &self.ns_rx] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn say(line: &str) {
    println!("demo: {line}");
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), CliError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| CliError::from(e).context("running ip (iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Waits until the importer has bound its socket.
fn wait_for(path: &Path, limit: Duration) -> Result<(), CliError> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit || interrupted() {
            return Err(CliError::failure(format!(
                "the importer did not bind {} in time",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Sends UDP datagrams and ICMP echo requests from inside `ns` for `how_long`
/// (or until `go_on` turns false), from a thread that switched only its
/// network namespace.
fn send_traffic(
    ns: &str,
    how_long: Duration,
    go_on: impl Fn() -> bool,
) -> Result<(u64, u64), CliError> {
    let ns = ns.to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_sender = stop.clone();
    let sender = std::thread::spawn(move || -> Result<(u64, u64), CliError> {
        tcbpf::tc::netns::enter(&ns)
            .map_err(|e| CliError::from(e).context("entering the sender namespace"))?;
        let udp = UdpSocket::bind(SocketAddrV4::new(ADDR_TX, 0))?;
        let icmp = IcmpSocket::open()?;
        let start = Instant::now();
        let (mut udp_sent, mut icmp_sent) = (0u64, 0u64);
        let mut seq = 0u16;
        while start.elapsed() < how_long
            && !interrupted()
            && !stop_sender.load(std::sync::atomic::Ordering::Relaxed)
        {
            for _ in 0..10 {
                udp.send_to(b"tcbpf demo", SocketAddrV4::new(ADDR_RX, 9))?;
                udp_sent += 1;
            }
            seq = seq.wrapping_add(1);
            icmp.echo(ADDR_RX, seq)?;
            icmp_sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok((udp_sent, icmp_sent))
    });
    while !sender.is_finished() {
        if !go_on() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sender
        .join()
        .map_err(|_| CliError::failure("the traffic thread panicked"))?
}

/// A raw ICMP socket for echo requests (root only).
struct IcmpSocket(std::os::fd::OwnedFd);

impl IcmpSocket {
    fn open() -> std::io::Result<IcmpSocket> {
        sys::frontend::icmp_raw_socket().map(IcmpSocket)
    }

    fn echo(&self, to: Ipv4Addr, seq: u16) -> std::io::Result<()> {
        let mut pkt = [0u8; 16];
        pkt[0] = 8; // echo request
        pkt[4..6].copy_from_slice(&(std::process::id() as u16).to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..].copy_from_slice(b"tcbpfdmo");
        let sum = inet_checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        sys::frontend::send_to_v4(self.0.as_fd(), &pkt, to)
    }
}

/// The Internet checksum (RFC 1071) of `data`.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_echo_request_verifies_to_zero() {
        let mut pkt = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b'];
        let sum = inet_checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(inet_checksum(&pkt), 0);
    }
}

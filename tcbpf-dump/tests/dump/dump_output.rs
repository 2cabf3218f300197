//! `tcbpf dump`'s read loop and pcapng output on records the kernel
//! wrote, on any kernel: dump.c's programs run on tracepoints
//! (`testkit::tracepoints`, since this project's VMs refuse the
//! trampolines the real dump uses), the filter compiled by this crate with
//! libpcap, the records read by `read_loop` until `count`, and the file
//! read back by tshark.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use tcbpf::sys::info;
use tcbpf::tc::{device, Socket};
use tcbpf::trace::Target;
use tcbpf_dump::args::Args;
use tcbpf_dump::output::{Out, Sink};
use tcbpf_dump::{filter, read_loop, read_loop_into};
use tcbpf_testkit::tracepoints::TracepointDump;
use tcbpf_testkit::*;

#[test]
fn records_of_the_kernel_become_pcapng_tshark_reads_and_count_stops_the_loop() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    let port = 20000 + (std::process::id() % 20000) as u16 + 1;
    let body = filter::compile(&format!("udp dst port {port}")).unwrap();
    let traced = TracepointDump::attach(ifindex, 128, Some(body), None);
    let info = info::prog_info(&traced.objects[0].main_program().fd).unwrap();
    let targets = vec![Target {
        info,
        places: Vec::new(),
        classid_verdict: false,
    }];
    pair.a.run(|| {
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        for (to_port, n) in [(port, 20), (port + 1, 5), (port, 3)] {
            let to: SocketAddr = format!("{ADDR_B}:{to_port}").parse().unwrap();
            for i in 0..n {
                s.send_to(format!("dump test {i:02}").as_bytes(), to)
                    .unwrap();
            }
        }
    });
    let dir = TempDir::new("dump-out");
    let file = dir.join("out.pcapng");
    let words = ["dev", "v0", "count", "20", "w", s(&file)];
    let args = Args::parse(words.iter().map(|w| w.to_string()).collect())
        .unwrap()
        .unwrap();
    // 23 records wait in the ring; the loop takes 20 and stops.
    pair.a.run(|| {
        let sock = Socket::open().unwrap();
        read_loop(&args, &sock, traced.ring(), &targets).unwrap();
    });
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "udp.dstport",
            "-e",
            "frame.len",
            "-e",
            "frame.comment",
        ])
        .output()
        .expect("tshark (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20, "{text}");
    let id = targets[0].info.id;
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f[0], "v0 egress", "{l}");
        assert_eq!(f[1], port.to_string(), "{l}");
        assert_eq!(f[2], "54", "{l}");
        assert!(
            f[3].starts_with(&format!("prog={id} name=dump_entry tag=")),
            "{l}"
        );
        assert!(
            f[3].ends_with("position=- dev=v0 direction=egress verdict=TC_ACT_OK mark=0x0->0x0 priority=0->0 redirect=-"),
            "{l}"
        );
    }
}

/// `-j`: the JSON lines of records the kernel wrote are what docs/json.md's
/// `dump` schema says (the dump's own trampolines cannot attach on this
/// project's VMs, so dump.c runs on tracepoints, as above, and the read
/// loop writes its `-j` lines to a file instead of stdout).
#[test]
fn json_lines_of_real_records_match_the_dump_schema_in_docs_json_md() {
    tcbpf_testkit::require_root!();
    let pair = VethPair::new();
    let ifindex = pair
        .a
        .run(|| device::ifindex(&Socket::open().unwrap(), "v0").unwrap());
    let port = 20000 + (std::process::id() % 20000) as u16 + 2;
    let body = filter::compile(&format!("udp dst port {port}")).unwrap();
    let traced = TracepointDump::attach(ifindex, 128, Some(body), None);
    let info = info::prog_info(&traced.objects[0].main_program().fd).unwrap();
    let targets = vec![Target {
        info,
        places: Vec::new(),
        classid_verdict: false,
    }];
    pair.a.run(|| {
        let s = UdpSocket::bind((ADDR_A, 0)).unwrap();
        let to: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
        for i in 0..5 {
            s.send_to(format!("dump json {i}").as_bytes(), to).unwrap();
        }
    });
    let dir = TempDir::new("dump-json");
    let file = dir.join("out.json");
    let words = ["dev", "v0", "count", "5", "-j"];
    let args = Args::parse(words.iter().map(|w| w.to_string()).collect())
        .unwrap()
        .unwrap();
    pair.a.run(|| {
        let sock = Socket::open().unwrap();
        read_loop_into(&args, &sock, traced.ring(), &targets, || {
            let f = std::fs::File::create(&file)?;
            Ok(Sink::Json(Out::File(std::io::BufWriter::new(f))))
        })
        .unwrap();
    });
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("\"dev\":\"v0\""), "{text}");
    let failures = schema_failures(&dir.join(""), &[("dump", text)]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

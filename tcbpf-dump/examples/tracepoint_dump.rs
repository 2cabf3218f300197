//! Test scaffolding, not part of `tcbpf dump`: runs dump's read loop
//! (`tcbpf_dump::read_loop`, with its signalfd, epoll on the ring and the
//! output, and the report) on `bpf/dump.o` attached to the egress
//! tracepoints of a device (`testkit::tracepoints`), so the tests of how a
//! dump ends run on kernels that refuse the trampolines the real dump
//! uses. Prints the same "tracing" line as dump, then the tracing link
//! ids, on stderr. Run it in the device's network namespace. PORT keeps
//! `udp dst port PORT`; a pcap expression instead of a number is the filter.
//!   tracepoint_dump DEV { PORT | EXPR } [ DUMP WORDS… ]

use tcbpf::sys::{info, link};
use tcbpf::tc::{device, Socket};
use tcbpf::trace::{Counts, Target};
use tcbpf_dump::args::Args;
use tcbpf_dump::{filter, read_loop, report};
use tcbpf_testkit::tracepoints::TracepointDump;

fn main() {
    let mut argv = std::env::args().skip(1);
    let (Some(dev), Some(port)) = (argv.next(), argv.next()) else {
        eprintln!("usage: tracepoint_dump DEV {{ PORT | EXPR }} [ DUMP WORDS… ]");
        std::process::exit(2);
    };
    let sock = Socket::open().unwrap();
    let ifindex = device::ifindex(&sock, &dev).unwrap();
    let expr = match port.parse::<u16>() {
        Ok(p) => format!("udp dst port {p}"),
        Err(_) => port,
    };
    let body = filter::compile(&expr).unwrap();
    let traced = TracepointDump::attach(ifindex, 128, Some(body), None);
    let info = info::prog_info(&traced.objects[0].main_program().fd).unwrap();
    let targets = vec![Target {
        info,
        places: Vec::new(),
        classid_verdict: false,
    }];
    let mut words = vec!["dev".to_string(), dev];
    words.extend(argv);
    let args = Args::parse(words).unwrap().unwrap();
    let ids: Vec<String> = traced
        .links
        .iter()
        .map(|l| link::link_info(l).unwrap().id.to_string())
        .collect();
    eprintln!("tcbpf dump: tracing 1 program; stop with Ctrl-C");
    eprintln!("links: {}", ids.join(" "));
    let result = read_loop(&args, &sock, traced.ring(), &targets);
    let c = traced.counts();
    let counts = Counts {
        seen: c[0],
        filtered: c[1],
        skipped: c[2],
        written: c[3],
        lost: c[4],
    };
    report(&targets, &[counts]);
    drop(traced);
    match result {
        Ok(()) => {}
        Err(f) => {
            eprintln!("tcbpf dump: {}", f.message);
            std::process::exit(f.code);
        }
    }
}

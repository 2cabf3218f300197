//! `tcbpf-dump`: `tcbpf dump …`. A binary of its own because the filter
//! is compiled with libpcap, which must stay out of the `tcbpf` library
//! and out of the start-up of `tcbpf map`; users type `tcbpf dump …` and
//! `tcbpf` runs this (found beside itself, else on PATH), as git runs
//! `git-*`. The work is in the crate's library (`tcbpf_dump`).
#![forbid(unsafe_code)] // unsafe lives in the library's `sys`, behind safe calls

use tcbpf::tc::{device, Socket};
use tcbpf::trace::{TraceOptions, Tracer};
use tcbpf_dump::args::{self, Args, Fail};
use tcbpf_dump::{filter, read_loop, report, select_targets, DUMP_OBJECT};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(args) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("tcbpf dump: {}", f.message);
            f.code
        }
    };
    std::process::exit(code);
}

fn run(words: Vec<String>) -> Result<(), Fail> {
    let Some(a) = Args::parse(words)? else {
        print!("{}", args::USAGE);
        return Ok(());
    };
    // A bad expression is refused before anything touches the kernel.
    let filter = match &a.filter {
        Some(expr) => Some(filter::compile(expr)?),
        None => None,
    };
    let sock = Socket::open().map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let ifindex = match &a.dev {
        Some(dev) => device::ifindex(&sock, dev)
            .map_err(|e| Fail::from_kind(e.kind(), format!("dev {dev}: {e}")))?,
        None => 0,
    };
    let targets = select_targets(&sock, &a, ifindex)?;
    let opts = TraceOptions {
        ifindex,
        direction: match a.directions.as_slice() {
            [d] => Some(*d),
            _ => None,
        },
        snaplen: a.snaplen,
        filter,
        verdict: a.verdict,
        ring_bytes: a.buffer_kib.map(|k| k.saturating_mul(1024)),
    };
    let tracer = Tracer::attach(DUMP_OBJECT, targets, &opts)
        .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let names: Vec<String> = tracer
        .targets()
        .iter()
        .map(|t| format!("{} {}", t.info.id, t.info.name))
        .collect();
    eprintln!(
        "tcbpf dump: tracing {} program{} ({}); stop with Ctrl-C",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    let result = read_loop(&a, &sock, tracer.ring(), tracer.targets());
    if let Ok(counts) = tracer.counts() {
        report(tracer.targets(), &counts);
    }
    let detached = tracer
        .detach()
        .map_err(|e| Fail::from_kind(e.kind(), e.to_string()));
    result.and(detached)
}

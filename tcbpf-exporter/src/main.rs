//! `tcbpf-exporter`: the long-running parts of tcbpf's live statistics, in
//! a binary of their own so that their dependencies (an HTTP server, a
//! terminal crate) stay out of the `tcbpf` library and out of the start-up
//! of `tcbpf map`. Users type `tcbpf exporter …` and `tcbpf map watch …`;
//! `tcbpf` runs this binary (found beside itself, else on PATH), as git
//! runs `git-*`.
//!
//! - `tcbpf-exporter listen …`: a Prometheus exporter ([`server`]);
//! - `tcbpf-exporter [-j] watch …`: the live table of `map watch` ([`watch`]).
#![forbid(unsafe_code)] // unsafe lives in the library's `sys`, behind safe calls

mod args;
mod collect;
mod config;
mod http;
mod keys;
mod metrics;
mod names;
mod read;
mod server;

mod watch;
mod watch_rows;
mod watch_tui;

use args::{pick, Fail, Words};

const USAGE: &str = "\
Usage: tcbpf exporter listen ADDR:PORT [ dev DEV [ ingress | egress ] ]… [ MAP… ]
                      [ config FILE ] [ connections N ]

MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME | keeper SOCK [SET/]MAP

Serves /metrics (Prometheus text format; OpenMetrics when Accept asks for it)
until SIGINT or SIGTERM. ADDR:PORT as :PORT means 127.0.0.1. With 'dev DEV'
(both hooks unless one is named) every cls_bpf filter and tcx program on the
device is found at each scrape, with the maps it uses; MAP words add maps.
'connections N' bounds open connections (default: 3/4 of the open-files
limit, at most 512); over it, or at the limit, the longest idle one is
closed. Request heads: 8 KiB within 10 s; answers taken within 60 s.

  tcbpf_map_<map>_<field>_total{<key members>,map,dev,direction,prog,attach}
      one counter per integer value field (tcbpf_map_<map>_total for a
      scalar value); per-CPU values summed; a scalar key is the label 'key',
      enums show their enumerator names. Names are unique by construction:
      a name already taken gets key_ before it (labels) or _2, _3… after it.
  tcbpf_prog_runs_total, tcbpf_prog_run_seconds_total, tcbpf_prog_info
      per attached program (run statistics are on while the exporter runs).
  tcbpf_exporter_map_info, tcbpf_exporter_map_entries,
  tcbpf_exporter_map_dropped_series, tcbpf_exporter_scrape_errors,
  tcbpf_exporter_policy_generation
  Kernel ids (id, link_id) are on the _info metrics only.

config FILE, one rule per line (# comments):
  cap N                                 series per map (default 10000): the
                                        N smallest keys in byte order; the
                                        rest are summed into key=\"other\"
  map NAME skip | rename NEW | cap N
  map NAME field FIELD { rename NEW | counter | gauge }
  map NAME label MEMBER { ip | ifname | hex }

Exit status: 0 stopped by a signal, 1 not found, 2 usage or bad input,
3 permission denied, 4 other failure (4 also when ADDR:PORT is in use).
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(args) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("tcbpf: {}", f.message);
            f.code
        }
    };
    std::process::exit(code);
}

fn run(args: Vec<String>) -> Result<(), Fail> {
    let mut w = Words::new(args);
    let mut json = false;
    while let Some(word) = w.peek() {
        match word {
            "-j" | "-json" | "--json" | "-p" | "-pretty" => {
                json = true;
                w.next();
            }
            _ => break,
        }
    }
    let Some(verb) = w.next() else {
        eprint!("{USAGE}");
        return Err(Fail::usage("expected 'listen' or 'watch'"));
    };
    if matches!(verb.as_str(), "help" | "-h" | "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    #[derive(Clone, Copy)]
    enum Command {
        Listen,
        Watch,
    }
    let commands = [("listen", Command::Listen), ("watch", Command::Watch)];
    match pick(&verb, &commands, "command")? {
        Command::Listen => {
            if matches!(w.peek(), Some("help" | "-h" | "--help")) {
                print!("{USAGE}");
                return Ok(());
            }
            listen(&mut w)
        }
        Command::Watch => watch::run(&mut w, json),
    }
}

fn listen(w: &mut Words) -> Result<(), Fail> {
    let l = args::parse_listen(w)?;
    let maps = l
        .maps
        .iter()
        .map(args::open)
        .collect::<Result<Vec<_>, _>>()?;
    tcbpf::sys::frontend::catch_interrupts();
    // Run statistics count only while someone holds this; without the
    // privilege the exporter still serves the maps, with zero run counts.
    let stats = tcbpf::sys::prog::enable_stats();
    if let Err(e) = &stats {
        eprintln!("tcbpf exporter: program run statistics stay off: {e}");
    }
    let server = server::bind(&l.addr).map_err(|e| match e {
        server::BindError::InUse(m) | server::BindError::Other(m) => Fail::other(m),
    })?;
    eprintln!("tcbpf exporter: serving http://{}/metrics", l.addr);
    let connections = l
        .connections
        .unwrap_or_else(server::default_max_connections);
    server::serve(
        server,
        collect::Collector::new(l.targets, maps, l.config),
        connections,
    );
    eprintln!("tcbpf exporter: stopped");
    drop(stats);
    Ok(())
}

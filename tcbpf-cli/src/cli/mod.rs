//! Command-line front end: global options, then the object word (`map`,
//! `exec`, `filter`, `qdisc`, `link`, `prog`, `net`, `obj`, `demo`…) picks
//! the command module.

pub mod error;
pub mod output;
pub mod words;

mod chain;
mod demo;
mod exec;
mod external;
mod filter;
mod filter_obj;
mod gen;
mod graft;
mod keeper;
mod link;
mod map;
mod map_export;
pub mod mapref;
mod net;
mod obj;
mod obj_externs;
mod prog;
mod sync;

use error::CliError;
use output::Global;
use words::{is_help, keywords, Words};

keywords! {
    /// The global options, spelt without their dashes.
    enum GlobalOption("option") {
        Json = "json",
        Pretty = "pretty",
        Netns = "netns",
        Verbose = "verbose",
        Details = "details",
        Help = "help",
        Version = "Version",
    }
}

keywords! {
    /// The objects a command names.
    enum Object("object") {
        Map = "map",
        Exec = "exec",
        Filter = "filter",
        Qdisc = "qdisc",
        Chain = "chain",
        Obj = "obj",
        Keeper = "keeper",
        Sync = "sync",
        Demo = "demo",
        Exporter = "exporter",
        Link = "link",
        Prog = "prog",
        Net = "net",
    }
}

/// Top-level usage, printed by `tcbpf help`.
pub const USAGE: &str = "\
Usage: tcbpf [OPTIONS] OBJECT { COMMAND | help }

OBJECT := { map | exec | filter | qdisc | chain | link | prog | net | obj | keeper | sync | demo | exporter }
OPTIONS := { -j[son] | -p[retty] | -n[etns] NAME | -v[erbose] | -d[etails] | -h[elp] | -V[ersion] | --version }

  tcbpf map help             the map helper: lookup, update, dump, load, export, events…
  tcbpf exec bpf help        the exec proxy: import maps and run a command
  tcbpf filter help          attach bpf classifiers (tc filter … bpf)
  tcbpf qdisc help           add or delete the clsact qdisc
  tcbpf chain help           several programs on one tcx hook, in a file's order
  tcbpf link help            an XDP program on a device (ip link set … xdp)
  tcbpf prog help            show loaded programs (bpftool prog show)
  tcbpf net help             show every cls_bpf, tcx and XDP attachment (bpftool net show)
  tcbpf obj help             inspect or load an eBPF object file
  tcbpf keeper help          a long-lived owner of exported maps, and its clients
  tcbpf sync help            keep maps equal to a policy in etcd (tcbpf-sync)
  tcbpf demo                 run the built-in example end to end
  tcbpf exporter help        serve maps' counters to Prometheus

Exit status: 0 success, 1 not found, 2 usage or bad input,
3 permission denied, 4 any other failure.
";

/// Parses global options and runs the command the words name.
pub fn run(args: Vec<String>) -> Result<(), CliError> {
    let mut w = Words::new(args);
    let mut g = Global::default();
    while let Some(word) = w.peek() {
        if !word.starts_with('-') || word == "-" {
            break;
        }
        let word = w.next().unwrap_or_default();
        // `--version` spelt out (`-v` stays `-verbose`).
        let word = if word == "--version" {
            "-Version".to_string()
        } else {
            word
        };
        let opt = word.trim_start_matches('-');
        match GlobalOption::choose(opt)
            .map_err(|_| CliError::usage(format!("unknown option '{word}' (see 'tcbpf help')")))?
        {
            GlobalOption::Json => g.json = true,
            GlobalOption::Pretty => {
                g.json = true;
                g.pretty = true;
            }
            GlobalOption::Verbose => g.verbose = true,
            GlobalOption::Details => g.details = true,
            GlobalOption::Netns => g.netns = Some(w.expect("a namespace name after -n")?),
            GlobalOption::Help => {
                print!("{USAGE}");
                return Ok(());
            }
            GlobalOption::Version => {
                println!("tcbpf {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
        }
    }
    let Some(object) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected an object (map, exec, filter, qdisc, chain, link, prog, net, obj, keeper, sync, demo, exporter)",
        ));
    };
    if is_help(&object) {
        print!("{USAGE}");
        return Ok(());
    }
    // Hidden: man pages and completions (`tcbpf gen man`, scripts/install.sh).
    if object == "gen" {
        return gen::run(&mut w);
    }
    if let Some(name) = &g.netns {
        tcbpf::tc::netns::enter(name)
            .map_err(|e| CliError::from(e).context(format!("netns '{name}'")))?;
    }
    match Object::choose(&object)? {
        Object::Keeper => keeper::run(&g, &mut w),
        Object::Exporter => external::exec(&g, w.rest()),
        Object::Sync => sync::run(&g, &mut w),
        Object::Map => map::run(&g, &mut w),
        Object::Exec => exec::run(&g, &mut w),
        Object::Filter => filter::run_filter(&g, &mut w),
        Object::Qdisc => filter::run_qdisc(&g, &mut w),
        Object::Chain => chain::run(&g, &mut w),
        Object::Link => link::run(&g, &mut w),
        Object::Prog => prog::run(&g, &mut w),
        Object::Net => net::run(&g, &mut w),
        Object::Obj => obj::run(&g, &mut w),
        Object::Demo => demo::run(&g, &mut w),
    }
}

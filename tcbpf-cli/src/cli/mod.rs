//! Command-line front end: global options, then the object word (`map`,
//! `exec`, `filter`, `qdisc`, `obj`, `demo`) picks the command module.

pub mod error;
pub mod output;
pub mod words;

mod demo;
mod exec;
mod external;
mod filter;
mod filter_obj;
mod graft;
mod map;
mod map_export;
pub mod mapref;
mod obj;

use error::CliError;
use output::Global;
use words::{choose, is_help, Words};

/// Top-level usage, printed by `tcbpf help`.
pub const USAGE: &str = "\
Usage: tcbpf [OPTIONS] OBJECT { COMMAND | help }

OBJECT := { map | exec | filter | qdisc | obj | demo | exporter }
OPTIONS := { -j[son] | -p[retty] | -n[etns] NAME | -v[erbose] | -h[elp] | -V[ersion] | --version }

  tcbpf map help             the map helper: lookup, update, dump, load, export…
  tcbpf exec bpf help        the exec proxy: import maps and run a command
  tcbpf filter help          attach bpf classifiers (tc filter … bpf)
  tcbpf qdisc help           add or delete the clsact qdisc
  tcbpf obj help             inspect or load an eBPF object file
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
        match choose(
            opt,
            &["json", "pretty", "netns", "verbose", "help", "Version"],
            "option",
        )
        .map_err(|_| CliError::usage(format!("unknown option '{word}' (see 'tcbpf help')")))?
        {
            "json" => g.json = true,
            "pretty" => {
                g.json = true;
                g.pretty = true;
            }
            "verbose" => g.verbose = true,
            "netns" => g.netns = Some(w.expect("a namespace name after -n")?),
            "help" => {
                print!("{USAGE}");
                return Ok(());
            }
            _ => {
                println!("tcbpf {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
        }
    }
    let Some(object) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected an object (map, exec, filter, qdisc, obj, demo, exporter)",
        ));
    };
    if is_help(&object) {
        print!("{USAGE}");
        return Ok(());
    }
    if let Some(name) = &g.netns {
        tcbpf::tc::netns::enter(name)
            .map_err(|e| CliError::from(e).context(format!("netns '{name}'")))?;
    }
    match choose(
        &object,
        &["map", "exec", "filter", "qdisc", "obj", "demo", "exporter"],
        "object",
    )? {
        "exporter" => external::exec(&g, w.rest()),
        "map" => map::run(&g, &mut w),
        "exec" => exec::run(&g, &mut w),
        "filter" => filter::run_filter(&g, &mut w),
        "qdisc" => filter::run_qdisc(&g, &mut w),
        "obj" => obj::run(&g, &mut w),
        _ => demo::run(&g, &mut w),
    }
}

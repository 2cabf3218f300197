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
        Dump = "dump",
    }
}

/// Top-level usage, printed by `tcbpf help`.
pub const USAGE: &str = "\
Usage: tcbpf [OPTIONS] OBJECT { COMMAND | help }

OBJECT := { map | exec | filter | qdisc | chain | link | prog | net | obj | keeper | sync | demo | exporter | dump }
OPTIONS := { -j[son] | -p[retty] | -n[etns] { NAME | PATH } | -v[erbose] | -d[etails] | -h[elp] | -V[ersion] | --version }
(also after OBJECT, as in 'tcbpf map -j show'; PATH: /proc/PID/ns/net)

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
  tcbpf dump help            every packet a tc program handles, with its verdict

Exit status: 0 success, 1 not found, 2 usage or bad input,
3 permission denied, 4 any other failure.
";

/// Parses global options and runs the command the words name; a refusal
/// for want of privilege says which capability and how to get it.
pub fn run(args: Vec<String>) -> Result<(), CliError> {
    match run_words(args) {
        // A help request before any object was named: the top usage.
        Err(e) if e.is_help() => {
            print!(
                "{}",
                if e.message.is_empty() {
                    USAGE
                } else {
                    &e.message
                }
            );
            Ok(())
        }
        other => other.map_err(error::with_remedy),
    }
}

fn run_words(args: Vec<String>) -> Result<(), CliError> {
    let mut w = Words::new(args);
    let mut g = Global::default();
    match options(&mut w, &mut g)? {
        Some(GlobalOption::Version) => {
            println!("tcbpf {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Some(_) => {
            print!("{USAGE}");
            return Ok(());
        }
        None => {}
    }
    let Some(object) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected an object (map, exec, filter, qdisc, chain, link, prog, net, obj, keeper, sync, demo, exporter, dump)",
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
    let object = Object::choose(&object)?;
    // Options may also follow the object word, as bpftool takes them
    // (`tcbpf map -j show`); the exporter's, sync's and dump's words are theirs.
    let early = match object {
        Object::Sync | Object::Exporter | Object::Dump => None,
        _ => options(&mut w, &mut g)?,
    };
    if let Some(name) = &g.netns {
        tcbpf::tc::netns::enter(name)
            .map_err(|e| CliError::from(e).context(format!("netns '{name}'")))?;
    }
    let result = match early {
        Some(GlobalOption::Version) => {
            println!("tcbpf {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Some(_) => Err(CliError::help()),
        None => dispatch(object, &g, &mut w),
    };
    match result {
        // `help` at any position: the usage of that position, exit 0.
        Err(e) if e.is_help() => {
            if e.message.is_empty() {
                print!("{}", usage_of(object));
            } else {
                print!("{}", e.message);
            }
            Ok(())
        }
        other => other,
    }
}

/// Reads the global options at the front of `w` into `g`; stops at the
/// first word that is not one. Returns `Help` or `Version` when one was
/// given (the caller prints it), `None` otherwise.
fn options(w: &mut Words, g: &mut Global) -> Result<Option<GlobalOption>, CliError> {
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
        let opt = match GlobalOption::choose(opt) {
            Err(e) if e.help => GlobalOption::Help,
            Err(_) => {
                return Err(CliError::usage(format!(
                    "unknown option '{word}' (see 'tcbpf help')"
                )))
            }
            Ok(opt) => opt,
        };
        match opt {
            GlobalOption::Json => g.json = true,
            GlobalOption::Pretty => {
                g.json = true;
                g.pretty = true;
            }
            GlobalOption::Verbose => g.verbose = true,
            GlobalOption::Details => g.details = true,
            GlobalOption::Netns => match w.expect("a namespace name or path after -n") {
                // `-n help`: the usage, as anywhere else.
                Err(e) if e.help => return Ok(Some(GlobalOption::Help)),
                r => g.netns = Some(r?),
            },
            GlobalOption::Help | GlobalOption::Version => return Ok(Some(opt)),
        }
    }
    Ok(None)
}

/// The usage `tcbpf OBJECT help` prints. The exporter, sync and dump have their
/// own, printed by their binaries (the words reach them unread).
fn usage_of(object: Object) -> &'static str {
    match object {
        Object::Map => map::USAGE,
        Object::Exec => exec::USAGE,
        Object::Filter => filter::FILTER_USAGE,
        Object::Qdisc => filter::QDISC_USAGE,
        Object::Chain => chain::USAGE,
        Object::Obj => obj::USAGE,
        Object::Keeper => keeper::USAGE,
        Object::Demo => demo::USAGE,
        Object::Link => link::USAGE,
        Object::Prog => prog::USAGE,
        Object::Net => net::USAGE,
        Object::Sync | Object::Exporter | Object::Dump => USAGE,
    }
}

/// Runs the command of `object` on the words after it.
fn dispatch(object: Object, g: &Global, w: &mut Words) -> Result<(), CliError> {
    match object {
        Object::Keeper => keeper::run(g, w),
        Object::Exporter => external::exec(g, w.rest()),
        Object::Dump => external::run_helper(external::DUMP, "dump", g, w.rest()),
        Object::Sync => sync::run(g, w),
        Object::Map => map::run(g, w),
        Object::Exec => exec::run(g, w),
        Object::Filter => filter::run_filter(g, w),
        Object::Qdisc => filter::run_qdisc(g, w),
        Object::Chain => chain::run(g, w),
        Object::Link => link::run(g, w),
        Object::Prog => prog::run(g, w),
        Object::Net => net::run(g, w),
        Object::Obj => obj::run(g, w),
        Object::Demo => demo::run(g, w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The words of one `keywords!` position.
    fn words<K>(table: &[(&'static str, K)]) -> Vec<&'static str> {
        table.iter().map(|(w, _)| *w).collect()
    }

    /// Runs the command the words name in a thread and returns its result,
    /// or `None` when it has not returned in 5 s (it took `help` for a
    /// socket and waits, as `exec bpf import help` did).
    fn run_bounded(args: Vec<String>) -> Option<Result<(), CliError>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut w = Words::new(args);
            let object = w.next().expect("an object word");
            let r = match Object::choose(&object) {
                Ok(object) => dispatch(object, &Global::default(), &mut w),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// Every position of every grammar (each `keywords!` enum, behind the
    /// words that lead to it), with `help` as the next word: the command
    /// asks for its usage (exit 0) and acts on nothing: no map opened, no
    /// socket bound (`exec bpf import help`), no file read.
    #[test]
    fn help_at_every_grammar_position_is_the_usage_never_a_value() {
        let nowhere = "/nonexistent-tcbpf-help-test/x";
        let mut positions: Vec<(Vec<&str>, Vec<&str>)> = vec![
            (vec![], words(Object::WORDS)),
            (vec!["map"], words(map::MapVerb::WORDS)),
            (
                vec!["map", "dump", "pinned", nowhere],
                words(map::dump::DumpOption::WORDS),
            ),
            (
                vec!["map", "lookup", "pinned", nowhere],
                words(map::elem::LookupOption::WORDS),
            ),
            (
                vec!["map", "update", "pinned", nowhere, "key", "1", "value", "1"],
                words(map::elem::UpdateFlag::WORDS),
            ),
            (
                vec!["map", "push", "pinned", nowhere, "value", "1"],
                words(map::elem::PushFlag::WORDS),
            ),
            (
                vec!["map", "pop", "pinned", nowhere],
                words(map::elem::PopOption::WORDS),
            ),
            (
                vec!["map", "events", "pinned", nowhere],
                words(map::events::EventsOption::WORDS),
            ),
            (
                vec!["map", "commit", "pinned", nowhere],
                words(map::commit::CommitOption::WORDS),
            ),
            (
                vec!["map", "load", "pinned", nowhere],
                words(map::load::LoadOption::WORDS),
            ),
            (
                vec!["map", "load", "pinned", nowhere, "json"],
                words(map::load_json::JsonOption::WORDS),
            ),
            (
                vec!["map", "create"],
                words(map::admin::CreateOption::WORDS),
            ),
            (vec!["exec"], words(exec::ExecType::WORDS)),
            (vec!["exec", "bpf"], words(exec::ExecVerb::WORDS)),
            (
                vec!["exec", "bpf", "import", nowhere],
                words(exec::ImportOption::WORDS),
            ),
            (
                vec!["exec", "bpf", "graft", nowhere],
                words(graft::GraftOption::WORDS),
            ),
            (vec!["keeper", nowhere], words(keeper::KeeperOption::WORDS)),
            (
                vec!["keeper", "send", nowhere],
                words(keeper::SendOption::WORDS),
            ),
            (vec!["chain"], words(chain::ChainVerb::WORDS)),
            (
                vec!["chain", "apply", nowhere],
                words(chain::ApplyOption::WORDS),
            ),
            (vec!["prog"], words(prog::ProgVerb::WORDS)),
            (vec!["prog", "show"], words(prog::Which::WORDS)),
            (vec!["net"], words(net::NetVerb::WORDS)),
            (vec!["obj"], words(obj::ObjVerb::WORDS)),
            (vec!["obj", "load", nowhere], words(obj::LoadOption::WORDS)),
            (vec!["link"], words(link::LinkVerb::WORDS)),
            (
                vec!["link", "set", "dev", "lo"],
                words(link::LinkOption::WORDS),
            ),
            (
                vec!["link", "set", "dev", "lo", "xdp"],
                words(link::Source::WORDS),
            ),
            (vec!["demo"], words(demo::DemoOption::WORDS)),
            (vec!["filter"], words(filter::keywords::FilterVerb::WORDS)),
            (
                vec!["filter", "add", "dev", "lo", "ingress"],
                words(filter::keywords::FilterOption::WORDS),
            ),
            (vec!["qdisc"], words(filter::keywords::QdiscVerb::WORDS)),
            (
                vec!["qdisc", "add"],
                words(filter::keywords::QdiscOption::WORDS),
            ),
        ];
        // Every MAP form after every map verb that takes one.
        for (verb, v) in map::MapVerb::WORDS {
            if !matches!(
                v,
                map::MapVerb::Create | map::MapVerb::Batch | map::MapVerb::Watch
            ) {
                positions.push((vec!["map", verb], words(mapref::MapForm::WORDS)));
            }
        }
        let mut checked = 0;
        for (lead, words) in &positions {
            let mut lines: Vec<Vec<&str>> = vec![lead.clone()];
            lines.extend(words.iter().map(|w| {
                let mut l = lead.clone();
                l.push(w);
                l
            }));
            for mut line in lines {
                // `sync`, `exporter` and `dump` hand their words to their
                // own binaries, which print their own help.
                if matches!(
                    line.first(),
                    None | Some(&"sync") | Some(&"exporter") | Some(&"dump")
                ) {
                    continue;
                }
                // The words after `run` are the command's own (`run
                // tcpdump -h`), never tcbpf's.
                if line.last() == Some(&"run") {
                    continue;
                }
                // `map watch` runs tcbpf-exporter, which has its own help.
                if line.starts_with(&["map", "watch"]) {
                    continue;
                }
                line.push("help");
                let args: Vec<String> = line.iter().map(|s| s.to_string()).collect();
                match run_bounded(args) {
                    Some(Err(e)) if e.is_help() => checked += 1,
                    Some(Err(e)) => panic!("'{}': {:?} {}", line.join(" "), e.exit, e.message),
                    Some(Ok(())) => panic!("'{}' ran instead of asking for help", line.join(" ")),
                    None => panic!("'{}' took 'help' as a value and waits", line.join(" ")),
                }
            }
        }
        assert!(checked > 200, "only {checked} positions checked");
        assert!(
            !std::path::Path::new("help").exists(),
            "a file named 'help' was made"
        );
    }

    #[test]
    fn help_inside_graft_is_graft_usage_and_each_object_has_its_own() {
        let e = exec::run(
            &Global::default(),
            &mut Words::new(vec!["bpf".into(), "graft".into(), "help".into()]),
        )
        .unwrap_err();
        assert!(e.is_help());
        assert_eq!(e.message, graft::USAGE);
        for (word, object) in Object::WORDS {
            if !matches!(object, Object::Sync | Object::Exporter | Object::Dump) {
                assert!(
                    usage_of(*object).contains(&format!("tcbpf {word}"))
                        || usage_of(*object).contains(&format!("{word} ")),
                    "{word}"
                );
            }
        }
    }
}

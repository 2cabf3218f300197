//! `tcbpf gen …` (hidden): man pages and shell completions made from what
//! the parser itself uses, so they cannot drift from it. A page's synopsis
//! is the command's `help` text, its keyword lists are the `keywords!`
//! tables (`WHAT`, `WORDS`); completion asks this binary (`gen complete
//! WORDS…`), which resolves the words typed so far with the same tables
//! and prefix rule as the parser. `tcbpf-exporter`, `tcbpf-sync` and
//! `tcbpf-dump` pages take their text from those binaries' own `help`.
//!
//!   tcbpf gen man                 the page names, one a line
//!   tcbpf gen man PAGE            PAGE in roff (man(7)) on stdout
//!   tcbpf gen completions SHELL   the script for bash, zsh or fish
//!   tcbpf gen complete WORD…      the words that may follow WORD…
//!
//! Nothing here touches the kernel.

use super::chain::ChainVerb;
use super::demo::DemoOption;
use super::error::CliError;
use super::exec::{ExecType, ExecVerb};
use super::filter::{FilterOption, FilterVerb, QdiscVerb};
use super::link::{LinkVerb, ModeWord, Source};
use super::map::MapVerb;
use super::mapref::MapForm;
use super::net::NetVerb;
use super::obj::ObjVerb;
use super::prog::ProgVerb;
use super::words::Words;
use super::{GlobalOption, Object};
use std::process::Command;

/// The man pages: name, one-line summary.
const PAGES: &[(&str, &str)] = &[
    ("tcbpf", "tc's eBPF front-end and exec proxy"),
    (
        "tcbpf-map",
        "the map helper for shells: lookup, update, dump, load, export, events, watch",
    ),
    (
        "tcbpf-filter",
        "attach bpf classifiers (tc filter ... bpf), the clsact qdisc and tcx chains",
    ),
    (
        "tcbpf-exec",
        "the exec proxy: import maps and run a command holding them",
    ),
    ("tcbpf-obj", "inspect or load an eBPF object file"),
    (
        "tcbpf-link",
        "attach XDP programs (ip link ... xdp words), by netlink or a pinned bpf link",
    ),
    (
        "tcbpf-prog",
        "discovery: loaded programs (prog show) and what runs on each device (net show)",
    ),
    (
        "tcbpf-keeper",
        "a long-lived owner of exported maps, and its clients",
    ),
    ("tcbpf-demo", "the built-in example, end to end"),
    (
        "tcbpf-exporter",
        "Prometheus metrics and a live terminal view of maps (tcbpf-exporter)",
    ),
    (
        "tcbpf-sync",
        "keep maps on many hosts equal to a policy in etcd (tcbpf-sync)",
    ),
    (
        "tcbpf-dump",
        "every packet a tc program handles, with its verdict (tcbpf-dump)",
    ),
];

const USAGE: &str = "\
Usage: tcbpf gen man [ PAGE ]
       tcbpf gen completions { bash | zsh | fish }
       tcbpf gen complete [ WORD... ]

Man pages (roff; without PAGE, the page names) and shell completions, made
from tcbpf's own help texts and keyword tables (scripts/install.sh runs
these). 'complete' prints the words that may follow WORD..., as the
completion scripts ask.
";

/// Runs `tcbpf gen …`.
pub fn run(w: &mut Words) -> Result<(), CliError> {
    let what = w.expect("man, completions or complete after 'gen'")?;
    if super::words::is_help(&what) {
        print!("{USAGE}");
        return Ok(());
    }
    match what.as_str() {
        "man" => {
            let Some(page) = w.next() else {
                for (name, _) in PAGES {
                    println!("{name}");
                }
                return Ok(());
            };
            w.finish()?;
            print!("{}", man_page(&page)?);
            Ok(())
        }
        "completions" => {
            let shell = w.expect("a shell (bash, zsh or fish)")?;
            w.finish()?;
            print!("{}", completion_script(&shell)?);
            Ok(())
        }
        "complete" => {
            for word in next_words(&w.rest()) {
                println!("{word}");
            }
            Ok(())
        }
        other => Err(CliError::usage(format!(
            "unknown gen command '{other}' (expected one of: man, completions, complete)"
        ))),
    }
}

// ---- completion -------------------------------------------------------

/// The words of a `keywords!` table, each once, in grammar order.
fn words_of<K>(table: &[(&'static str, K)]) -> Vec<String> {
    table.iter().map(|(w, _)| w.to_string()).collect()
}

fn with_help(mut words: Vec<String>) -> Vec<String> {
    words.push("help".into());
    words
}

/// The words that may come after `typed` (the words before the cursor,
/// without `tcbpf`), resolved as the parser resolves them (exact word or
/// unique prefix). Empty where a free argument (a path, a number) comes.
pub fn next_words(typed: &[String]) -> Vec<String> {
    let mut i = 0;
    while let Some(word) = typed.get(i) {
        if !word.starts_with('-') || word == "-" {
            break;
        }
        let netns = GlobalOption::choose(word.trim_start_matches('-'))
            .is_ok_and(|o| o == GlobalOption::Netns);
        if netns && typed.len() == i + 1 {
            return Vec::new(); // a namespace name comes next
        }
        i += if netns { 2 } else { 1 };
    }
    let rest = typed.get(i..).unwrap_or_default();
    let Some((object, rest)) = rest.split_first() else {
        let mut words: Vec<String> = GlobalOption::WORDS
            .iter()
            .map(|(w, _)| format!("-{w}"))
            .collect();
        words.push("--version".into());
        words.extend(words_of(Object::WORDS));
        words.push("help".into());
        return words;
    };
    let Ok(object) = Object::choose(object) else {
        return Vec::new();
    };
    match object {
        Object::Map => map_words(rest),
        Object::Exec => match rest {
            [] => with_help(words_of(ExecType::WORDS)),
            [bpf] if ExecType::choose(bpf).is_ok() => {
                let mut words = words_of(ExecVerb::WORDS);
                words.push("dbg".into());
                with_help(words)
            }
            _ => Vec::new(),
        },
        Object::Filter => match rest {
            [] => with_help(words_of(FilterVerb::WORDS)),
            [verb] if FilterVerb::choose(verb).is_ok() => vec!["dev".into()],
            [verb, dev, _] if FilterVerb::choose(verb).is_ok() && dev == "dev" => {
                words_of(FilterOption::WORDS)
                    .into_iter()
                    .filter(|w| w != "dev")
                    .collect()
            }
            _ => Vec::new(),
        },
        Object::Qdisc => match rest {
            [] => with_help(words_of(QdiscVerb::WORDS)),
            [verb] if QdiscVerb::choose(verb).is_ok() => vec!["dev".into()],
            _ => Vec::new(),
        },
        Object::Chain => match rest {
            [] => with_help(words_of(ChainVerb::WORDS)),
            _ => Vec::new(),
        },
        Object::Obj => match rest {
            [] => with_help(words_of(ObjVerb::WORDS)),
            _ => Vec::new(),
        },
        Object::Link => match rest {
            [] => with_help(words_of(LinkVerb::WORDS)),
            [verb] if LinkVerb::choose(verb).is_ok() => vec!["dev".into()],
            [verb, dev, _] if LinkVerb::choose(verb).is_ok() && dev == "dev" => {
                words_of(ModeWord::WORDS)
            }
            [verb, dev, _, mode] if LinkVerb::choose(verb).is_ok() && dev == "dev" => {
                match ModeWord::choose(mode) {
                    Ok(_) => words_of(Source::WORDS),
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        },
        Object::Prog => match rest {
            [] => with_help(words_of(ProgVerb::WORDS)),
            [verb] if ProgVerb::choose(verb).is_ok() => vec!["id".into(), "pinned".into()],
            _ => Vec::new(),
        },
        Object::Net => match rest {
            [] => with_help(words_of(NetVerb::WORDS)),
            [verb] if NetVerb::choose(verb).is_ok() => vec!["dev".into()],
            _ => Vec::new(),
        },
        // The keeper's first word is a verb or the daemon's socket path.
        Object::Keeper => match rest {
            [] => with_help(vec!["list".into(), "status".into(), "send".into()]),
            _ => Vec::new(),
        },
        Object::Demo => match rest.last() {
            None => with_help(words_of(DemoOption::WORDS)),
            Some(last) => match DemoOption::choose(last) {
                Ok(DemoOption::Seconds) => Vec::new(),
                Ok(DemoOption::Watch) => words_of(DemoOption::WORDS),
                // After the number of `seconds N`.
                Err(_) => words_of(DemoOption::WORDS),
            },
        },
        // Their grammar is the helper binaries' own.
        Object::Exporter => match rest {
            [] => vec!["listen".into(), "help".into()],
            _ => Vec::new(),
        },
        Object::Sync => match rest {
            [] => vec!["help".into()],
            _ => Vec::new(),
        },
        // `dev DEV` or the one program `prog ID` / `pinned PATH`.
        Object::Dump => match rest {
            [] => vec!["dev".into(), "prog".into(), "pinned".into(), "help".into()],
            _ => Vec::new(),
        },
    }
}

fn map_words(rest: &[String]) -> Vec<String> {
    let Some((verb, rest)) = rest.split_first() else {
        return with_help(words_of(MapVerb::WORDS));
    };
    let Ok(verb) = MapVerb::choose(verb) else {
        return Vec::new();
    };
    if !rest.is_empty() {
        return Vec::new();
    }
    match verb {
        // A MAP first.
        MapVerb::Show
        | MapVerb::Lookup
        | MapVerb::Update
        | MapVerb::Add
        | MapVerb::Delete
        | MapVerb::Dump
        | MapVerb::Next
        | MapVerb::Push
        | MapVerb::Pop
        | MapVerb::Peek
        | MapVerb::Freeze
        | MapVerb::Pin
        | MapVerb::Load
        | MapVerb::Events
        | MapVerb::Commit => words_of(MapForm::WORDS),
        // `map watch dev DEV`: the maps of the programs at DEV's hooks.
        MapVerb::Watch => {
            let mut words = words_of(MapForm::WORDS);
            words.push("dev".into());
            words
        }
        MapVerb::Batch => vec!["from".into()],
        // `create` takes its own words, `export` a socket path first.
        MapVerb::Create | MapVerb::Export => Vec::new(),
    }
}

/// The completion script for `shell`: it asks `tcbpf gen complete`.
fn completion_script(shell: &str) -> Result<&'static str, CliError> {
    match shell {
        "bash" => Ok(BASH),
        "zsh" => Ok(ZSH),
        "fish" => Ok(FISH),
        other => Err(CliError::usage(format!(
            "unknown shell '{other}' (expected one of: bash, zsh, fish)"
        ))),
    }
}

const BASH: &str = r#"# bash completion for tcbpf (made by `tcbpf gen completions bash`).
# The words come from tcbpf itself (`tcbpf gen complete WORD...`), which
# resolves what was typed with the parser's own keyword tables.
_tcbpf() {
    local cur=${COMP_WORDS[COMP_CWORD]} words
    words=$("${COMP_WORDS[0]}" gen complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null) || return 0
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _tcbpf tcbpf
"#;

const ZSH: &str = r#"#compdef tcbpf
# zsh completion for tcbpf (made by `tcbpf gen completions zsh`).
# The words come from tcbpf itself (`tcbpf gen complete WORD...`).
_tcbpf() {
    local -a next
    next=(${(f)"$(${words[1]} gen complete ${(Q)words[2,CURRENT-1]} 2>/dev/null)"})
    if (( ${#next} )); then
        compadd -a next
    else
        _files
    fi
}
_tcbpf "$@"
"#;

const FISH: &str = r#"# fish completion for tcbpf (made by `tcbpf gen completions fish`).
# The words come from tcbpf itself (`tcbpf gen complete WORD...`); where it
# has none (a path, a number), fish offers files.
function __tcbpf_next
    set -l words (commandline -opc)
    $words[1] gen complete $words[2..-1] 2>/dev/null
end
complete -c tcbpf -f -n 'test -n "$(__tcbpf_next)"' -a '(__tcbpf_next)'
"#;

// ---- man pages --------------------------------------------------------

/// One keyword table as a man page lists it: its name and its words, a
/// keyword's synonyms joined by " | ".
fn table<K: PartialEq + Copy>(what: &str, words: &[(&str, K)]) -> Table {
    let mut groups: Vec<(K, Vec<&str>)> = Vec::new();
    for (w, k) in words {
        match groups.iter_mut().find(|(g, _)| g == k) {
            Some((_, ws)) => ws.push(w),
            None => groups.push((*k, vec![w])),
        }
    }
    let listed: Vec<String> = groups.iter().map(|(_, ws)| ws.join(" | ")).collect();
    (what.to_string(), listed.join(", "))
}

/// The text of `help` for a helper binary (`tcbpf-exporter`, `tcbpf-sync`,
/// `tcbpf-dump`),
/// found as `tcbpf` finds it to run it.
fn helper_help(binary: &str, args: &[&str]) -> Result<String, CliError> {
    let exe = std::env::current_exe().ok();
    let beside = exe
        .as_ref()
        .and_then(|p| p.parent().map(|d| d.join(binary)))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| binary.into());
    let out = Command::new(&program).args(args).output().map_err(|e| {
        CliError::from(e).context(format!(
            "gen man: running {binary} for its help (build it beside tcbpf)"
        ))
    })?;
    if !out.status.success() {
        return Err(CliError::failure(format!(
            "gen man: {binary} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One keyword table on a page: its name, its words.
type Table = (String, String);

/// What a page holds: the help texts shown as its synopsis, and the
/// keyword tables listed after it.
fn page_parts(page: &str) -> Result<(Vec<String>, Vec<Table>), CliError> {
    let t = |s: &str| s.to_string();
    Ok(match page {
        "tcbpf" => (
            vec![t(super::USAGE)],
            vec![
                table(GlobalOption::WHAT, GlobalOption::WORDS),
                table(Object::WHAT, Object::WORDS),
            ],
        ),
        "tcbpf-map" => (
            vec![t(super::map::USAGE)],
            vec![
                table(MapVerb::WHAT, MapVerb::WORDS),
                table(MapForm::WHAT, MapForm::WORDS),
            ],
        ),
        "tcbpf-filter" => (
            vec![
                t(super::filter::FILTER_USAGE),
                t(super::filter::QDISC_USAGE),
                t(super::chain::USAGE),
            ],
            vec![
                table(FilterVerb::WHAT, FilterVerb::WORDS),
                table(FilterOption::WHAT, FilterOption::WORDS),
                table(QdiscVerb::WHAT, QdiscVerb::WORDS),
                table(ChainVerb::WHAT, ChainVerb::WORDS),
            ],
        ),
        "tcbpf-exec" => (
            vec![t(super::exec::USAGE)],
            vec![
                table(ExecType::WHAT, ExecType::WORDS),
                table(ExecVerb::WHAT, ExecVerb::WORDS),
            ],
        ),
        "tcbpf-obj" => (
            vec![t(super::obj::USAGE)],
            vec![table(ObjVerb::WHAT, ObjVerb::WORDS)],
        ),
        "tcbpf-link" => (
            vec![t(super::link::USAGE)],
            vec![
                table(LinkVerb::WHAT, LinkVerb::WORDS),
                table(ModeWord::WHAT, ModeWord::WORDS),
                table(Source::WHAT, Source::WORDS),
            ],
        ),
        "tcbpf-prog" => (
            vec![t(super::prog::USAGE), t(super::net::USAGE)],
            vec![
                table(ProgVerb::WHAT, ProgVerb::WORDS),
                table(NetVerb::WHAT, NetVerb::WORDS),
            ],
        ),
        "tcbpf-keeper" => (vec![t(super::keeper::USAGE)], Vec::new()),
        "tcbpf-demo" => (
            vec![t(super::demo::USAGE)],
            vec![table(DemoOption::WHAT, DemoOption::WORDS)],
        ),
        "tcbpf-exporter" => (
            vec![
                helper_help(super::external::EXPORTER, &["help"])?,
                helper_help(super::external::EXPORTER, &["watch", "help"])?,
            ],
            Vec::new(),
        ),
        "tcbpf-sync" => (
            vec![helper_help(super::sync::HELPER, &["help"])?],
            Vec::new(),
        ),
        "tcbpf-dump" => (
            vec![helper_help(super::external::DUMP, &["help"])?],
            Vec::new(),
        ),
        other => {
            let names: Vec<&str> = PAGES.iter().map(|(n, _)| *n).collect();
            return Err(CliError::not_found(format!(
                "no man page '{other}' (pages: {})",
                names.join(", ")
            )));
        }
    })
}

/// `text` as roff input shown verbatim (inside `.nf`): backslashes and
/// minus signs escaped, control characters at a line start defused.
fn roff_verbatim(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The page `page` in roff.
pub fn man_page(page: &str) -> Result<String, CliError> {
    let (helps, tables) = page_parts(page)?;
    let summary = PAGES
        .iter()
        .find(|(n, _)| *n == page)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    let mut m = String::new();
    m.push_str(&format!(
        ".\\\" Made by `tcbpf gen man {page}` from tcbpf's help and keyword tables.\n"
    ));
    m.push_str(&format!(
        ".TH {} 8 \"\" \"tcbpf {version}\" \"System Administration\"\n",
        page.to_uppercase().replace('-', "\\-")
    ));
    m.push_str(".SH NAME\n");
    m.push_str(&format!(
        "{} \\- {}\n",
        page.replace('-', "\\-"),
        summary.replace('-', "\\-")
    ));
    m.push_str(".SH SYNOPSIS AND DESCRIPTION\n");
    m.push_str("The text below is what\n.B help\nprints at this level.\n");
    for help in &helps {
        m.push_str(".PP\n.nf\n");
        m.push_str(&roff_verbatim(help));
        m.push_str(".fi\n");
    }
    if !tables.is_empty() {
        m.push_str(".SH KEYWORDS\n");
        m.push_str(
            "Any unambiguous prefix of a keyword works, as in tc; synonyms are shown as\n\
             .IR \"a | b\" .\n",
        );
        for (what, words) in &tables {
            m.push_str(&format!(".TP\n.I {what}\n"));
            m.push_str(&roff_verbatim(words));
        }
    }
    m.push_str(".SH EXIT STATUS\n");
    m.push_str(
        "0 success, 1 not found, 2 usage or bad input, 3 permission denied,\n\
         4 any other failure.\n",
    );
    m.push_str(".SH SEE ALSO\n");
    let others: Vec<String> = PAGES
        .iter()
        .filter(|(n, _)| *n != page)
        .map(|(n, _)| format!(".BR {} (8)", n.replace('-', "\\-")))
        .collect();
    m.push_str(&others.join(",\n"));
    m.push_str(",\n.BR tc\\-bpf (8),\n.BR bpftool (8)\n");
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(line: &str) -> Vec<String> {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        next_words(&words)
    }

    #[test]
    fn next_words_follow_the_parsers_prefix_rule() {
        assert!(next("").contains(&"map".to_string()));
        assert!(next("-j").contains(&"filter".to_string()));
        assert!(next("-n").is_empty(), "a namespace name comes after -n");
        assert!(next("-n ns1").contains(&"map".to_string()));
        assert!(next("m").contains(&"dump".to_string()), "m is map");
        assert!(next("map dump").contains(&"pinned".to_string()));
        assert!(next("map dump pinned").is_empty());
        assert_eq!(next("exec b"), next("exec bpf"));
        assert!(next("exec bpf").contains(&"dbg".to_string()));
        assert!(next("nosuch").is_empty());
    }

    #[test]
    fn every_page_but_the_helpers_renders_its_help_verbatim() {
        for (page, _) in PAGES {
            if matches!(*page, "tcbpf-exporter" | "tcbpf-sync" | "tcbpf-dump") {
                continue;
            }
            let m = man_page(page).unwrap();
            assert!(m.contains(&format!(".TH {}", page.to_uppercase().replace('-', "\\-"))));
            assert!(m.contains(".SH EXIT STATUS"), "{page}");
        }
        assert!(man_page("nosuch").is_err());
    }

    #[test]
    fn synonyms_share_one_entry_in_a_table() {
        let (what, words) = table(FilterVerb::WHAT, FilterVerb::WORDS);
        assert_eq!(what, "filter verb");
        assert_eq!(words, "add, replace, del | delete, show | list, upgrade");
    }
}

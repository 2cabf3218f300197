//! `tcbpf-sync`, run as `tcbpf sync …` (as git runs `git-*`): keeps the
//! eBPF maps of many hosts equal to a policy held in etcd, and reads and
//! writes that policy. A binary of its own so that the async runtime and
//! the etcd client stay out of the `tcbpf` library and out of the start-up
//! of `tcbpf map`. The map side (typed JSON, diff-apply) is the library's.
#![forbid(unsafe_code)] // unsafe lives in the library's `sys`, behind safe calls

/// Prints a line on standard output (see [`emit`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(&format!($($arg)*)) };
}

mod args;
mod conn;
mod error;
mod figure;
mod follow;
mod generation;
mod health;
mod kv;
mod layout;
mod log;
mod retry;
mod rollout;
mod snapshot;
mod status;
mod target;
mod types;

use args::{pick, Command, Words, VERBS};
use error::SyncError;

/// `tcbpf sync help`.
pub const USAGE: &str = "\
Usage: tcbpf [ -j ] [ -v ] sync COMMAND ENDPOINTS [ CONN ]… prefix PREFIX …

  tcbpf sync put  ENDPOINTS [CONN]… prefix PREFIX map NAME key JSON value JSON
  tcbpf sync put  ENDPOINTS [CONN]… prefix PREFIX map NAME from { FILE | - }
  tcbpf sync commit ENDPOINTS [CONN]… prefix PREFIX map NAME from { FILE | - } [ stage ]
  tcbpf sync rollout ENDPOINTS [CONN]… prefix PREFIX map NAME gen G
             [ canary N% | nodes NODE[,NODE…] ] [ wait SECS ]
             [ gate FIGURE { rate | value } { '<' | '<=' | '>' | '>=' } N [ window SECS ] ]
  tcbpf sync rollback ENDPOINTS [CONN]… prefix PREFIX map NAME [ gen G ]
  tcbpf sync del  ENDPOINTS [CONN]… prefix PREFIX map NAME key JSON
  tcbpf sync get  ENDPOINTS [CONN]… prefix PREFIX map NAME key JSON
  tcbpf sync list ENDPOINTS [CONN]… prefix PREFIX [ map NAME ]
  tcbpf sync status ENDPOINTS [CONN]… prefix PREFIX
  tcbpf sync etcd ENDPOINTS [CONN]… prefix PREFIX MAP [ as NAME ] [ slot N ] [ MAP … ]…
             [ node NODE ] [ status-ttl SECS ] [ resync SECS ]
             [ health FIGURE { MAP key JSON [ member FIELD ] | prog PROG } ]…
MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME | keeper SOCK [SET/]MAP
PROG := pinned PATH | id N

ENDPOINTS := HOST:PORT[,HOST:PORT…]   (or full http:// / https:// URLs)
CONN := cacert FILE | cert FILE | key FILE | user NAME | password-file FILE
        | timeout SECS
        (timeout: how long put, del and commit retry a write that fails
         for a reason that passes, an etcd leader election or a dead
         member; default 8; the password comes from password-file or TCBPF_SYNC_PASSWORD,
         never from the command line; cacert/cert switch to https)

Layout in etcd: PREFIX/maps/NAME/KEY holds the value's JSON, KEY being the
key's compact JSON text with '%', '/' and non-printable bytes %-escaped.
'from' reads {\"key\":…,\"value\":…} lines, written in transactions of 128.
'commit' writes the whole file as the map's next generation G (entries at
PREFIX/gens/NAME/G/entries/, a record with checksum, count and author at
PREFIX/gens/NAME/G/record) and publishes it last (PREFIX/current/NAME = G);
a follower then makes that map equal to generation G alone, all or nothing
(a map-in-map OUTER, slot N (default 0): a new inner map swapped in), and
acknowledges it in its report.
'rollout' pins the canaries to G; it publishes G once every canary
acknowledged it (within 'wait', default 10) and, with 'gate', once each
canary's health FIGURE, read after it applied G, kept the comparison for
'window' seconds (default 10; 'rate': change per second); else the
canaries go back to the generation published and it exits 4 naming the
node, the figure and its value. 'health FIGURE MAP key JSON [ member
FIELD ]' makes 'etcd' read that integer every second and publish it in
its report; 'health FIGURE prog PROG', the program's run count.
A node reports at PREFIX/nodes/NODE (default: the hostname) under a lease of
status-ttl seconds (default 15). 'etcd' makes each map equal to
PREFIX/maps/NAME/ (NAME: the map's kernel name unless 'as NAME'), then
follows every change; entries it cannot apply (JSON that does not fit the
map, a value over 1 MiB, a key with a bad %-escape) are counted as rejected
in its report and the rest applies; a full re-read and diff-apply repairs drift every
'resync' seconds and on SIGHUP; SIGTERM finishes the apply under way and exits.

-v: more log lines ('etcd' logs one line per event on standard error:
connected, each re-read, drift repaired, generation G applied in N ms,
errors; -v adds each watch response and each retried write).

Exit status: 0 success, 1 not found, 2 usage or bad input,
3 permission denied, 4 any other failure.
";

/// Global options that `tcbpf` passes through.
#[derive(Debug, Default, Clone, Copy)]
pub struct Global {
    pub json: bool,
}

fn run(argv: Vec<String>) -> Result<(), SyncError> {
    let mut w = Words::new(argv);
    let mut g = Global::default();
    while let Some(word) = w.peek() {
        match word {
            "-j" | "-json" | "--json" | "-p" | "-pretty" | "--pretty" => g.json = true,
            "-v" | "-verbose" | "--verbose" => log::set_verbose(true),
            "-h" | "-help" | "--help" => {
                out!("{}", USAGE.trim_end());
                return Ok(());
            }
            w if w.starts_with('-') => {
                return Err(SyncError::usage(format!(
                    "unknown option '{w}' (see 'tcbpf sync help')"
                )))
            }
            _ => break,
        }
        w.next();
    }
    let Some(verb) = w.next() else {
        eprint!("{USAGE}");
        return Err(SyncError::usage(
            "expected a command (put, commit, rollout, rollback, del, get, list, status, etcd)",
        ));
    };
    // The verbs, then `help` (None).
    let mut verbs: Vec<(&str, Option<args::Verb>)> =
        VERBS.iter().map(|(w, v)| (*w, Some(*v))).collect();
    verbs.push(("help", None));
    let (verb, Some(_)) = pick(&verb, &verbs, "command")? else {
        out!("{}", USAGE.trim_end());
        return Ok(());
    };
    // `help` at any later position is the usage too, never an endpoint,
    // a prefix or a file.
    if w.help_ahead() {
        out!("{}", USAGE.trim_end());
        return Ok(());
    }
    let (conn, prefix, cmd) = args::parse(verb, &mut w, |v| std::env::var(v).ok())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SyncError::other(format!("async runtime: {e}")))?;
    rt.block_on(async move {
        if let Command::Etcd(o) = cmd {
            return follow::run(conn, prefix, o).await;
        }
        let mut c = conn::connect(&conn).await?;
        let t = conn.write_timeout();
        match cmd {
            Command::Put { map, key, value } => {
                let one = types::Check {
                    key: &key,
                    value: Some(&value),
                };
                types::check(&c, t, &prefix, &map, &[one]).await?;
                let rev = kv::put(&c, t, &prefix, &map, &key, &value).await?;
                if g.json {
                    out!("{}", serde_json::json!({ "revision": rev }));
                }
            }
            Command::PutFrom { map, file } => {
                let (n, rev) = kv::put_from(&c, t, &prefix, &map, &file).await?;
                if g.json {
                    out!("{}", serde_json::json!({ "entries": n, "revision": rev }));
                } else {
                    out!("{n} entries written, revision {rev}");
                }
            }
            Command::Rollout {
                map,
                generation,
                canary,
                gate,
                wait,
            } => {
                let how = rollout::How {
                    canary: &canary,
                    gate: gate.as_ref(),
                    wait,
                };
                let state = rollout::rollout(&mut c, t, &prefix, &map, generation, how).await?;
                if g.json {
                    out!("{state}");
                } else {
                    out!(
                        "map {map} generation {generation} promoted (canaries {})",
                        status::joined(&state["canaries"])
                    );
                }
            }
            Command::Rollback { map, generation } => {
                let (to, was) = rollout::rollback(&mut c, t, &prefix, &map, generation).await?;
                if g.json {
                    out!(
                        "{}",
                        serde_json::json!({ "map": map, "generation": to, "replaced": was })
                    );
                } else {
                    out!("map {map} generation {to} published (was {was})");
                }
            }
            Command::Commit { map, file, stage } => {
                let done = generation::commit(&mut c, t, &prefix, &map, &file, !stage).await?;
                let r = &done.record;
                if g.json {
                    out!(
                        "{}",
                        serde_json::json!({
                            "map": map,
                            "generation": r.generation,
                            "entries": r.entries,
                            "checksum": r.checksum,
                            "author": r.author,
                            "transactions": done.transactions,
                            "revision": done.revision,
                            "published": !stage,
                        })
                    );
                } else {
                    out!(
                        "map {map} generation {} {}: {} entries, checksum {}, \
                         {} transactions, revision {}",
                        r.generation,
                        if stage { "staged" } else { "published" },
                        r.entries,
                        r.checksum,
                        done.transactions,
                        done.revision
                    );
                }
            }
            Command::Del { map, key } => {
                let rev = kv::del(&c, t, &prefix, &map, &key).await?;
                if g.json {
                    out!("{}", serde_json::json!({ "revision": rev }));
                }
            }
            Command::Get { map, key } => {
                let value = conn::read_live(&conn, &c, t, |mut c| {
                    let (prefix, map, key) = (prefix.clone(), map.clone(), key.clone());
                    async move { kv::get(&mut c, &prefix, &map, &key).await }
                })
                .await?;
                if g.json {
                    let v: serde_json::Value =
                        serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
                    let k: serde_json::Value = serde_json::from_str(&key).unwrap_or_default();
                    out!("{}", serde_json::json!({ "key": k, "value": v }));
                } else {
                    out!("{value}");
                }
            }
            Command::List { map } => {
                let items = conn::read_live(&conn, &c, t, |mut c| {
                    let (prefix, map) = (prefix.clone(), map.clone());
                    async move { kv::list(&mut c, &prefix, map.as_deref()).await }
                })
                .await?;
                kv::print_list(&items, g.json);
            }
            // Prints only once every read is done: retried whole.
            Command::Status => {
                conn::read_live(&conn, &c, t, |mut c| {
                    let prefix = prefix.clone();
                    async move { status::show(&mut c, &prefix, g.json).await }
                })
                .await?
            }
            Command::Etcd(_) => unreachable!("handled above"),
        }
        Ok(())
    })
}

/// Writes `line` and a newline to standard output; a closed pipe
/// (`tcbpf sync status | head -1`) ends the command quietly with status 0,
/// as C tools do, instead of a panic.
pub fn emit(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{line}").and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("tcbpf sync: standard output: {e}");
        std::process::exit(i32::from(error::exit::OTHER));
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(argv) {
        eprintln!("tcbpf sync: {e}");
        std::process::exit(i32::from(e.exit));
    }
}

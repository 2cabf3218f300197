//! The words of `tcbpf sync`, parsed into a [`Command`]; no I/O besides
//! reading the password file named by `password-file`.
//!
//! ```text
//! tcbpf sync COMMAND ENDPOINTS [ CONN ]… prefix PREFIX …
//! CONN := cacert FILE | cert FILE | key FILE | user NAME | password-file FILE
//!         | timeout SECS
//! ```
//!
//! Connection words come between ENDPOINTS and `prefix` (so that `key`
//! there is the client key file and, after `prefix`, the map key). The
//! password never comes from the command line: `password-file FILE` or the
//! environment variable `TCBPF_SYNC_PASSWORD`.

use crate::error::SyncError;
use crate::layout::{canonical_json, check_name, Prefix};
use std::path::PathBuf;
pub use tcbpf::front::{MapForm, MapRef};

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "TCBPF_SYNC_PASSWORD";

pub use tcbpf::front::Words;

/// Bad words or a MAP that did not open, with the exit status `tcbpf`
/// gives its kind (a word of help never gets here: `main` asks
/// `help_ahead` first).
impl From<tcbpf::front::Error> for SyncError {
    fn from(e: tcbpf::front::Error) -> Self {
        let message = if e.help {
            "a word of help here: see 'tcbpf sync help'".to_string()
        } else {
            e.message
        };
        SyncError::of(e.kind, message)
    }
}

/// Picks the keyword `w` names from `table` (the library's
/// `tcbpf::front::words::pick`), with the word that names it. Callers
/// match on the keyword, so a word added to a table without its arm does
/// not compile.
pub fn pick<'a, T: Copy + PartialEq>(
    w: &str,
    table: &[(&'a str, T)],
    what: &str,
) -> Result<(&'a str, T), SyncError> {
    let kw = tcbpf::front::words::pick(w, table, what)?;
    Ok(*table
        .iter()
        .find(|(_, k)| *k == kw)
        .expect("pick returns one of the keywords it was given"))
}

/// The commands of `tcbpf sync` (after the connection words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Put,
    Del,
    Get,
    List,
    Status,
    Etcd,
    Commit,
    Rollout,
    Rollback,
}

/// The command words, in the order usage lists them.
pub const VERBS: [(&str, Verb); 9] = [
    ("put", Verb::Put),
    ("commit", Verb::Commit),
    ("rollout", Verb::Rollout),
    ("rollback", Verb::Rollback),
    ("del", Verb::Del),
    ("get", Verb::Get),
    ("list", Verb::List),
    ("status", Verb::Status),
    ("etcd", Verb::Etcd),
];

/// The connection words (`prefix` ends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnWord {
    Cacert,
    Cert,
    Key,
    User,
    PasswordFile,
    Timeout,
    Prefix,
}

/// The words of `etcd` after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EtcdWord {
    Map(MapForm),
    Node,
    StatusTtl,
    Resync,
    Health,
}

/// How to reach etcd: endpoints, TLS files, user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conn {
    pub endpoints: Vec<String>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub user: Option<(String, String)>,
    /// `timeout SECS`: how long a write is retried (see `retry`).
    pub timeout: Option<u64>,
}

impl Conn {
    /// Parses `ENDPOINTS [ CONN ]…` up to (not including) `prefix`.
    /// `env` gives the environment (the password variable).
    pub fn parse(w: &mut Words, env: impl Fn(&str) -> Option<String>) -> Result<Conn, SyncError> {
        let list = w.expect("ENDPOINTS (host:port[,host:port…])")?;
        let endpoints: Vec<String> = list
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(SyncError::usage(format!("ENDPOINTS '{list}': no endpoint")));
        }
        let mut c = Conn {
            endpoints,
            ..Conn::default()
        };
        let mut user = None;
        let mut password_file = None;
        let words = [
            ("cacert", ConnWord::Cacert),
            ("cert", ConnWord::Cert),
            ("key", ConnWord::Key),
            ("user", ConnWord::User),
            ("password-file", ConnWord::PasswordFile),
            ("timeout", ConnWord::Timeout),
            ("prefix", ConnWord::Prefix),
        ];
        while let Some(word) = w.peek().map(str::to_string) {
            let (word, kw) = pick(&word, &words, "connection option")?;
            if kw == ConnWord::Prefix {
                break;
            }
            w.next();
            let arg = w.expect(&format!("a value after '{word}'"))?;
            match kw {
                ConnWord::Prefix => unreachable!("prefix ends the connection words above"),
                ConnWord::Cacert => c.cacert = Some(arg.into()),
                ConnWord::Cert => c.cert = Some(arg.into()),
                ConnWord::Key => c.key = Some(arg.into()),
                ConnWord::User => {
                    if arg.contains(':') {
                        return Err(SyncError::usage(
                            "user NAME: the password is never taken from the command line \
                             (use password-file FILE or TCBPF_SYNC_PASSWORD)",
                        ));
                    }
                    user = Some(arg);
                }
                ConnWord::PasswordFile => password_file = Some(PathBuf::from(arg)),
                ConnWord::Timeout => {
                    let secs: u64 = arg.parse().map_err(|_| {
                        SyncError::usage(format!("timeout: '{arg}' is not a number of seconds"))
                    })?;
                    if secs == 0 {
                        return Err(SyncError::usage("timeout: at least 1 second"));
                    }
                    c.timeout = Some(secs);
                }
            }
        }
        if c.cert.is_some() != c.key.is_some() {
            return Err(SyncError::usage(
                "cert and key go together (a client certificate and its key)",
            ));
        }
        if let Some(name) = user {
            let password = match password_file {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| {
                        SyncError::usage(format!("password-file {}: {e}", path.display()))
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                None => env(PASSWORD_ENV).ok_or_else(|| {
                    SyncError::usage(format!(
                        "user {name}: no password (give password-file FILE or set {PASSWORD_ENV})"
                    ))
                })?,
            };
            c.user = Some((name, password));
        } else if password_file.is_some() {
            return Err(SyncError::usage("password-file needs user NAME"));
        }
        Ok(c)
    }

    /// How long a write is retried.
    pub fn write_timeout(&self) -> std::time::Duration {
        self.timeout.map_or(
            crate::retry::DEFAULT_TIMEOUT,
            std::time::Duration::from_secs,
        )
    }

    /// True when the endpoints are to be reached over TLS.
    pub fn tls(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some()
    }
}

/// One map to follow: where it is and the NAME its policy lives under
/// (`as NAME`; `None` for the map's kernel name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    pub map: MapRef,
    pub name: Option<String>,
    /// `slot N`: a map-in-map's slot (default 0).
    pub slot: Option<u32>,
}

/// Options of `tcbpf sync etcd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOpts {
    pub maps: Vec<Follow>,
    pub health: Vec<crate::figure::HealthSpec>,
    pub node: Option<String>,
    pub status_ttl: u64,
    pub resync: Option<u64>,
}

/// A parsed `tcbpf sync` command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Put {
        map: String,
        key: String,
        value: String,
    },
    PutFrom {
        map: String,
        file: String,
    },
    Del {
        map: String,
        key: String,
    },
    Get {
        map: String,
        key: String,
    },
    List {
        map: Option<String>,
    },
    Status,
    Etcd(EtcdOpts),
    /// `commit map NAME from FILE [ stage ]`: a whole policy as one
    /// generation (`stage`: written, not published).
    Commit {
        map: String,
        file: String,
        stage: bool,
    },
    /// `rollout map NAME gen G [ canary N% | nodes LIST ] [ gate … ]
    /// [ wait SECS ]`.
    Rollout {
        map: String,
        generation: u64,
        canary: Canary,
        gate: Option<crate::figure::Gate>,
        wait: u64,
    },
    /// `rollback map NAME [ gen G ]`.
    Rollback {
        map: String,
        generation: Option<u64>,
    },
}

/// Which nodes take a generation first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// This share of the nodes (at least one), chosen by a hash of the
    /// node name and the generation.
    Percent(u32),
    /// These nodes.
    Nodes(Vec<String>),
}

/// The words of `rollout` after the generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RolloutWord {
    Canary,
    Nodes,
    Gate,
    Wait,
}

/// `map NAME`.
fn map_name(w: &mut Words) -> Result<String, SyncError> {
    w.keyword("map")?;
    let name = w.expect("a map NAME after 'map'")?;
    check_name("map name", &name)?;
    Ok(name)
}

/// `key JSON`, canonical.
fn key_json(w: &mut Words) -> Result<String, SyncError> {
    w.keyword("key")?;
    Ok(canonical_json("key", &w.expect("a JSON key after 'key'")?)?)
}

/// Parses what follows `prefix PREFIX` for the command word `verb`.
pub fn parse_command(verb: &str, w: &mut Words) -> Result<Command, SyncError> {
    let cmd = match pick(verb, &VERBS, "command")?.1 {
        Verb::Put => {
            let map = map_name(w)?;
            if w.eat("from") {
                let file = w.expect("a file (or - for standard input) after 'from'")?;
                Command::PutFrom { map, file }
            } else {
                let key = key_json(w)?;
                w.keyword("value")?;
                let value = canonical_json("value", &w.expect("a JSON value after 'value'")?)?;
                Command::Put { map, key, value }
            }
        }
        Verb::Del => Command::Del {
            map: map_name(w)?,
            key: key_json(w)?,
        },
        Verb::Get => Command::Get {
            map: map_name(w)?,
            key: key_json(w)?,
        },
        Verb::List => Command::List {
            map: if w.is_empty() {
                None
            } else {
                Some(map_name(w)?)
            },
        },
        Verb::Commit => {
            let map = map_name(w)?;
            w.keyword("from")?;
            let file = w.expect("a file (or - for standard input) after 'from'")?;
            let stage = w.eat("stage");
            Command::Commit { map, file, stage }
        }
        Verb::Rollout => parse_rollout(w)?,
        Verb::Rollback => {
            let map = map_name(w)?;
            let generation = if w.eat("gen") {
                Some(w.number("a generation number after 'gen'")?)
            } else {
                None
            };
            Command::Rollback { map, generation }
        }
        Verb::Status => Command::Status,
        Verb::Etcd => Command::Etcd(parse_etcd(w)?),
    };
    w.finish()?;
    Ok(cmd)
}

fn parse_rollout(w: &mut Words) -> Result<Command, SyncError> {
    let map = map_name(w)?;
    w.keyword("gen")?;
    let generation = w.number("a generation number after 'gen'")?;
    let mut canary = Canary::Percent(10);
    let mut wait = 10;
    let mut gate = None;
    let words = [
        ("canary", RolloutWord::Canary),
        ("nodes", RolloutWord::Nodes),
        ("gate", RolloutWord::Gate),
        ("wait", RolloutWord::Wait),
    ];
    while let Some(word) = w.next() {
        match pick(&word, &words, "rollout word")?.1 {
            RolloutWord::Canary => {
                let text = w.expect("a share like 10% after 'canary'")?;
                let n: u32 = text
                    .strip_suffix('%')
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        SyncError::usage(format!("canary '{text}': expected 1% to 100%"))
                    })?;
                canary = Canary::Percent(n);
            }
            RolloutWord::Nodes => {
                let list = w.expect("NODE[,NODE…] after 'nodes'")?;
                let nodes: Vec<String> = list
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                for n in &nodes {
                    check_name("node", n)?;
                }
                if nodes.is_empty() {
                    return Err(SyncError::usage("nodes: no node named"));
                }
                canary = Canary::Nodes(nodes);
            }
            RolloutWord::Gate => gate = Some(crate::figure::parse_gate(w)?),
            RolloutWord::Wait => wait = w.number("seconds after 'wait'")?,
        }
    }
    Ok(Command::Rollout {
        map,
        generation,
        canary,
        gate,
        wait,
    })
}

fn parse_etcd(w: &mut Words) -> Result<EtcdOpts, SyncError> {
    let mut o = EtcdOpts {
        maps: Vec::new(),
        health: Vec::new(),
        node: None,
        status_ttl: 15,
        resync: None,
    };
    let mut words: Vec<(&str, EtcdWord)> = MapForm::WORDS
        .iter()
        .map(|&(w, f)| (w, EtcdWord::Map(f)))
        .collect();
    words.extend([
        ("node", EtcdWord::Node),
        ("status-ttl", EtcdWord::StatusTtl),
        ("resync", EtcdWord::Resync),
        ("health", EtcdWord::Health),
    ]);
    while let Some(word) = w.next() {
        let map = match pick(&word, &words, "word")?.1 {
            EtcdWord::Map(form) => MapRef::parse_after(form, w)?,
            EtcdWord::Node => {
                let node = w.expect("a node name after 'node'")?;
                check_name("node", &node)?;
                o.node = Some(node);
                continue;
            }
            EtcdWord::StatusTtl => {
                o.status_ttl = w.number("seconds after 'status-ttl'")?;
                if o.status_ttl < 2 {
                    return Err(SyncError::usage("status-ttl: at least 2 seconds"));
                }
                continue;
            }
            EtcdWord::Resync => {
                o.resync = Some(w.number("seconds after 'resync'")?);
                continue;
            }
            EtcdWord::Health => {
                let h = crate::figure::parse_health(w)?;
                if o.health.iter().any(|x| x.name == h.name) {
                    return Err(SyncError::usage(format!(
                        "health figure '{}' given twice",
                        h.name
                    )));
                }
                o.health.push(h);
                continue;
            }
        };
        let name = if w.peek() == Some("as") {
            w.next();
            let n = w.expect("a NAME after 'as'")?;
            check_name("map name", &n)?;
            Some(n)
        } else {
            None
        };
        let slot = if w.peek() == Some("slot") {
            w.next();
            Some(w.number("a slot number after 'slot'")?)
        } else {
            None
        };
        o.maps.push(Follow { map, name, slot });
    }
    if o.maps.is_empty() {
        return Err(SyncError::usage(
            "expected at least one MAP (fd N | env ID | id N | pinned PATH | name NAME | keeper SOCK [SET/]MAP)",
        ));
    }
    Ok(o)
}

/// Parses `ENDPOINTS [CONN]… prefix PREFIX …` for `verb`.
pub fn parse(
    verb: &str,
    w: &mut Words,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Conn, Prefix, Command), SyncError> {
    let conn = Conn::parse(w, env)?;
    w.keyword("prefix")?;
    let prefix = Prefix::new(&w.expect("a PREFIX after 'prefix'")?)?;
    let cmd = parse_command(verb, w)?;
    Ok((conn, prefix, cmd))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The words of `s`, split at white space.
    pub(crate) fn words(s: &str) -> Words {
        Words::new(s.split_whitespace().map(str::to_string).collect())
    }

    /// An environment with no variable set.
    pub(crate) fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn put_canonicalises_key_and_value() {
        let (c, p, cmd) = parse(
            "put",
            &mut words(
                "127.0.0.1:2379,127.0.0.1:2381 prefix /f/ map blocked key 53 value {\"a\":1}",
            ),
            no_env,
        )
        .unwrap();
        assert_eq!(c.endpoints, ["127.0.0.1:2379", "127.0.0.1:2381"]);
        assert_eq!(p.to_string(), "/f");
        assert_eq!(
            cmd,
            Command::Put {
                map: "blocked".into(),
                key: "53".into(),
                value: r#"{"a":1}"#.into()
            }
        );
    }

    #[test]
    fn key_before_prefix_is_the_client_key_file() {
        let (c, _, cmd) = parse(
            "del",
            &mut words("e:1 cacert ca.pem cert c.pem key c.key prefix /f map m key 1"),
            no_env,
        )
        .unwrap();
        assert_eq!(c.key, Some(PathBuf::from("c.key")));
        assert!(c.tls());
        assert_eq!(
            cmd,
            Command::Del {
                map: "m".into(),
                key: "1".into()
            }
        );
    }

    #[test]
    fn password_comes_from_the_environment_never_the_command_line() {
        let e = parse("list", &mut words("e:1 user root:secret prefix /f"), no_env).unwrap_err();
        assert!(
            e.message.contains("never taken from the command line"),
            "{e}"
        );
        let e = parse("list", &mut words("e:1 user root prefix /f"), no_env).unwrap_err();
        assert!(e.message.contains(PASSWORD_ENV), "{e}");
        let (c, _, _) = parse("list", &mut words("e:1 user root prefix /f"), |v| {
            (v == PASSWORD_ENV).then(|| "pw".to_string())
        })
        .unwrap();
        assert_eq!(c.user, Some(("root".into(), "pw".into())));
    }

    #[test]
    fn etcd_takes_maps_with_names_node_and_ttl() {
        let (_, _, cmd) = parse(
            "etcd",
            &mut words(
                "e:1 prefix /f pinned /sys/fs/bpf/x as blocked id 7 node h1 status-ttl 5 resync 60",
            ),
            no_env,
        )
        .unwrap();
        let Command::Etcd(o) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.maps.len(), 2);
        assert_eq!(o.maps[0].name.as_deref(), Some("blocked"));
        assert_eq!(
            o.maps[1],
            Follow {
                map: MapRef::Id(7),
                name: None,
                slot: None
            }
        );
        assert_eq!(
            (o.node.as_deref(), o.status_ttl, o.resync),
            (Some("h1"), 5, Some(60))
        );
    }

    #[test]
    fn etcd_takes_every_map_form_of_the_map_helper() {
        let (_, _, cmd) = parse(
            "etcd",
            &mut words("e:1 prefix /f id 0x10 name ctr as c env 3 as e fd 5 as f keeper /k s/m"),
            no_env,
        )
        .unwrap();
        let Command::Etcd(o) = cmd else {
            panic!("{cmd:?}")
        };
        let maps: Vec<MapRef> = o.maps.into_iter().map(|f| f.map).collect();
        assert_eq!(
            maps,
            [
                MapRef::Id(16),
                MapRef::Name("ctr".into()),
                MapRef::Env("BPF_MAP3".into()),
                MapRef::Fd(5),
                MapRef::Keeper("/k".into(), "s/m".into()),
            ]
        );
    }

    #[test]
    fn commit_takes_a_map_and_a_file() {
        let (_, _, cmd) = parse(
            "commit",
            &mut words("e:1 prefix /f map blocked from gen.jsonl"),
            no_env,
        )
        .unwrap();
        assert_eq!(
            cmd,
            Command::Commit {
                map: "blocked".into(),
                file: "gen.jsonl".into(),
                stage: false
            }
        );
        let e = parse("commit", &mut words("e:1 prefix /f map blocked"), no_env).unwrap_err();
        assert!(e.message.contains("expected 'from'"), "{e}");
    }

    #[test]
    fn rollout_takes_a_generation_canaries_and_a_wait() {
        let (_, _, cmd) = parse(
            "rollout",
            &mut words("e:1 prefix /f map m gen 4 canary 25% wait 3"),
            no_env,
        )
        .unwrap();
        assert_eq!(
            cmd,
            Command::Rollout {
                map: "m".into(),
                generation: 4,
                canary: Canary::Percent(25),
                gate: None,
                wait: 3
            }
        );
        let (_, _, cmd) = parse(
            "rollout",
            &mut words("e:1 prefix /f map m gen 4 nodes a,b"),
            no_env,
        )
        .unwrap();
        assert!(
            matches!(cmd, Command::Rollout { canary: Canary::Nodes(n), .. } if n == ["a", "b"])
        );
        let e = parse(
            "rollout",
            &mut words("e:1 prefix /f map m gen 4 canary 0%"),
            no_env,
        )
        .unwrap_err();
        assert!(e.message.contains("expected 1% to 100%"), "{e}");
    }

    #[test]
    fn bad_words_are_named() {
        let e = parse("etcd", &mut words("e:1 prefix /f"), no_env).unwrap_err();
        assert!(e.message.contains("at least one MAP"), "{e}");
        let e = parse("put", &mut words("e:1 prefix /f map m key {"), no_env).unwrap_err();
        assert!(e.message.contains("key '{' is not JSON"), "{e}");
        let e = parse("get", &mut words("e:1 prefix /f map m key 1 extra"), no_env).unwrap_err();
        assert!(e.message.contains("unexpected word 'extra'"), "{e}");
        let e = parse("list", &mut words("e:1 cert c prefix /f"), no_env).unwrap_err();
        assert!(e.message.contains("cert and key go together"), "{e}");
    }
}

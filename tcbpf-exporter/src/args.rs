//! The words of `tcbpf exporter listen …` and `tcbpf map watch …`, and
//! opening the maps they name (`fd N | env { ID | NAME } | id N | pinned
//! PATH`, as the map helper takes them). Any unambiguous prefix of a word
//! works, as in tc. No I/O beyond opening the named maps and config file.

use crate::collect::DevTarget;
use crate::config::Config;
use crate::read::{ReadError, StatMap};
use std::path::PathBuf;
use tcbpf::attach::tcx::Direction;
use tcbpf::sys::{self, MapFd};

/// A failure with its exit status (0 ok, 1 not found, 2 usage or bad
/// input, 3 permission denied, 4 other: `tcbpf::ErrorKind::exit_code`,
/// the table every tcbpf binary exits by).
#[derive(Debug)]
pub struct Fail {
    /// Exit status.
    pub code: i32,
    /// What went wrong.
    pub message: String,
}

impl Fail {
    /// A failure of `kind`, exiting as every tcbpf binary does for it.
    pub fn of(kind: tcbpf::ErrorKind, m: impl Into<String>) -> Fail {
        Fail {
            code: i32::from(kind.exit_code()),
            message: m.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(m: impl Into<String>) -> Fail {
        Fail::of(tcbpf::ErrorKind::BadInput, m)
    }

    /// Any other failure (exit 4).
    pub fn other(m: impl Into<String>) -> Fail {
        Fail::of(tcbpf::ErrorKind::System, m)
    }

    fn sys(what: &str, e: sys::Error) -> Fail {
        Fail::of(e.kind(), format!("{what}: {e}"))
    }
}

/// Picks the one of `options` that `word` is a prefix of.
pub fn choose<'a>(word: &str, options: &[&'a str], what: &str) -> Result<&'a str, Fail> {
    if let Some(exact) = options.iter().find(|o| **o == word) {
        return Ok(exact);
    }
    let hits: Vec<&'a str> = options
        .iter()
        .copied()
        .filter(|o| !word.is_empty() && o.starts_with(word))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(Fail::usage(format!(
            "unknown {what} '{word}' (expected {})",
            options.join(", ")
        ))),
        _ => Err(Fail::usage(format!(
            "{what} '{word}' is ambiguous ({})",
            hits.join(", ")
        ))),
    }
}

/// Picks the keyword `word` names from `table` (each word beside the
/// keyword it names) as [`choose`] does. Callers match on the keyword, so
/// a word added to a table without its arm does not compile.
pub fn pick<T: Copy>(word: &str, table: &[(&str, T)], what: &str) -> Result<T, Fail> {
    let words: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
    let picked = choose(word, &words, what)?;
    Ok(table
        .iter()
        .find(|(w, _)| *w == picked)
        .map(|(_, k)| *k)
        .expect("choose returns one of the words it was given"))
}

/// The words left to read.
pub struct Words {
    words: std::vec::IntoIter<String>,
    peeked: Option<String>,
}

impl Words {
    /// Words to read in order.
    pub fn new(words: Vec<String>) -> Words {
        Words {
            words: words.into_iter(),
            peeked: None,
        }
    }

    /// The next word.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<String> {
        self.peeked.take().or_else(|| self.words.next())
    }

    /// The next word, left in place.
    pub fn peek(&mut self) -> Option<&str> {
        if self.peeked.is_none() {
            self.peeked = self.words.next();
        }
        self.peeked.as_deref()
    }

    /// The next word, or a usage error saying what was expected.
    pub fn expect(&mut self, what: &str) -> Result<String, Fail> {
        self.next()
            .ok_or_else(|| Fail::usage(format!("expected {what}")))
    }

    /// The next word as a number.
    pub fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, Fail> {
        let w = self.expect(what)?;
        w.parse()
            .map_err(|_| Fail::usage(format!("'{w}' is not {what}")))
    }
}

/// A map as the words name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapRef {
    /// `fd N`.
    Fd(i32),
    /// `env ID|NAME`: the variable's name.
    Env(String),
    /// `id N`.
    Id(u32),
    /// `pinned PATH`.
    Pinned(PathBuf),
    /// `name NAME`: the one live map with this kernel name.
    Name(String),
    /// `keeper SOCK [SET/]MAP`: a map a keeper holds (asked read-only).
    Keeper(PathBuf, String),
}

/// The word that starts a map reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapForm {
    /// `fd N`.
    Fd,
    /// `env ID|NAME`.
    Env,
    /// `id N`.
    Id,
    /// `pinned PATH`.
    Pinned,
    /// `name NAME`.
    Name,
    /// `keeper SOCK [SET/]MAP`.
    Keeper,
}

/// The words that start a map reference.
pub const MAP_WORDS: [(&str, MapForm); 6] = [
    ("fd", MapForm::Fd),
    ("env", MapForm::Env),
    ("id", MapForm::Id),
    ("pinned", MapForm::Pinned),
    ("name", MapForm::Name),
    ("keeper", MapForm::Keeper),
];

impl MapRef {
    /// Reads the reference after its first word, which named `form`.
    pub fn parse(form: MapForm, w: &mut Words) -> Result<MapRef, Fail> {
        Ok(match form {
            MapForm::Fd => MapRef::Fd(w.number::<u32>("a descriptor number after 'fd'")? as i32),
            MapForm::Env => {
                let word = w.expect("an id or name after 'env'")?;
                MapRef::Env(if word.bytes().all(|b| b.is_ascii_digit()) {
                    format!("BPF_MAP{word}")
                } else {
                    tcbpf::exec::env::name_var(&word).unwrap_or_default()
                })
            }
            MapForm::Id => MapRef::Id(w.number("a map id after 'id'")?),
            MapForm::Name => MapRef::Name(w.expect("a map name after 'name'")?),
            MapForm::Keeper => MapRef::Keeper(
                PathBuf::from(w.expect("a keeper socket path after 'keeper'")?),
                w.expect("[SET/]MAP after the keeper's socket path")?,
            ),
            MapForm::Pinned => MapRef::Pinned(PathBuf::from(w.expect("a path after 'pinned'")?)),
        })
    }

    /// Opens the map (read-only where a new descriptor is asked for) for
    /// statistics.
    pub fn open(&self) -> Result<StatMap, Fail> {
        let what = self.to_string();
        let fd =
            match self {
                MapRef::Fd(n) => dup(*n, &what)?,
                MapRef::Env(var) => {
                    let v = std::env::var(var).map_err(|_| {
                        Fail::of(
                            tcbpf::ErrorKind::NotFound,
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    let n: i32 = v.trim().parse().map_err(|_| {
                        Fail::usage(format!("{var}='{v}' is not a descriptor number"))
                    })?;
                    dup(n, &what)?
                }
                MapRef::Id(id) => sys::obj::map_by_id(*id, sys::obj::open::RDONLY)
                    .map_err(|e| Fail::sys(&what, e))?,
                MapRef::Pinned(p) => sys::obj::get_pinned_map(p, sys::obj::open::RDONLY)
                    .map_err(|e| Fail::sys(&what, e))?,
                MapRef::Name(n) => by_name(n).map_err(|f| Fail {
                    code: f.code,
                    message: format!("{what}: {}", f.message),
                })?,
                MapRef::Keeper(sock, name) => tcbpf::keeper::client::get_map(sock, name, true)
                    .map_err(|e| Fail::of(e.kind(), format!("{what}: {e}")))?,
            };
        StatMap::new(fd).map_err(|e| match e {
            ReadError::Unsupported(m) => Fail::usage(format!("{what}: {m}")),
            ReadError::Maps(tcbpf::maps::Error::Sys(e)) => Fail::sys(&what, e),
            ReadError::Maps(e) => Fail::other(format!("{what}: {e}")),
        })
    }
}

/// The one live map whose kernel name is `name` (at most 15 bytes, as the
/// kernel keeps it); several are an error listing their ids.
fn by_name(name: &str) -> Result<MapFd, Fail> {
    let wanted: String = name.chars().take(15).collect();
    let mut found: Vec<(u32, MapFd)> = Vec::new();
    let mut id = 0;
    let walk = |e| Fail::sys("walking map ids", e);
    while let Some(next) = sys::obj::next_map_id(id).map_err(walk)? {
        id = next;
        let fd = match sys::obj::map_by_id(id, sys::obj::open::RDONLY) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(Fail::sys(&format!("map id {id}"), e)),
        };
        if sys::info::map_info(&fd).is_ok_and(|i| i.name == wanted) {
            found.push((id, fd));
        }
    }
    match found.len() {
        0 => Err(Fail::of(tcbpf::ErrorKind::NotFound, "no map has this name")),
        1 => Ok(found.remove(0).1),
        _ => Err(Fail::usage(format!(
            "ambiguous: maps {} have this name (use 'id N')",
            found
                .iter()
                .map(|(i, _)| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn dup(n: i32, what: &str) -> Result<MapFd, Fail> {
    MapFd::dup_from_raw(n).map_err(|e| match e.errno() {
        Some(libc::EBADF) => Fail::usage(format!("{what}: descriptor is not open")),
        _ => Fail::sys(what, e),
    })
}

impl std::fmt::Display for MapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapRef::Fd(n) => write!(f, "fd {n}"),
            MapRef::Env(v) => write!(f, "env {v}"),
            MapRef::Id(i) => write!(f, "id {i}"),
            MapRef::Pinned(p) => write!(f, "pinned {}", p.display()),
            MapRef::Name(n) => write!(f, "name {n}"),
            MapRef::Keeper(s, n) => write!(f, "keeper {} {n}", s.display()),
        }
    }
}

/// `tcbpf exporter listen …`, parsed.
#[derive(Debug)]
pub struct Listen {
    /// `HOST:PORT`.
    pub addr: String,
    /// `dev DEV [ingress|egress]`.
    pub targets: Vec<DevTarget>,
    /// Maps named directly.
    pub maps: Vec<MapRef>,
    /// The configuration (default when no file).
    pub config: Config,
    /// `connections N`: the most open connections (None: from the
    /// open-files limit).
    pub connections: Option<usize>,
}

/// `PORT` or `:PORT` means loopback; anything else is taken as given.
pub fn listen_addr(word: &str) -> Result<String, Fail> {
    let port = word.strip_prefix(':').unwrap_or(word);
    if port.parse::<u16>().is_ok() {
        return Ok(format!("127.0.0.1:{port}"));
    }
    match word.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(word.into()),
        _ => Err(Fail::usage(format!(
            "'{word}' is not ADDR:PORT (e.g. 127.0.0.1:9435, [::1]:9435 or :9435)"
        ))),
    }
}

/// The words of `listen`.
#[derive(Debug, Clone, Copy)]
enum ListenOption {
    Dev,
    Config,
    Connections,
    Map(MapForm),
}

/// The most bytes a config file may have.
const MAX_CONFIG: u64 = 1 << 20;

/// The text of config file `path`, read up to [`MAX_CONFIG`] bytes (a
/// larger or endless file, a directory, or one not UTF-8, is bad input).
fn read_config(path: &str) -> Result<String, Fail> {
    use std::io::Read;
    // A directory or a file that is not text, named as the config, is
    // bad input; anything else is classed as the library classes it.
    let failed = |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::IsADirectory | std::io::ErrorKind::InvalidData => {
                tcbpf::ErrorKind::BadInput
            }
            _ => tcbpf::ErrorKind::from_io(&e),
        };
        Fail::of(kind, format!("config {path}: {e}"))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(failed)?
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(Fail::usage(format!("config {path}: larger than 1 MiB")));
    }
    String::from_utf8(bytes).map_err(|_| Fail::usage(format!("config {path}: not UTF-8 text")))
}

/// Parses the words after `listen`.
pub fn parse_listen(w: &mut Words) -> Result<Listen, Fail> {
    let addr = listen_addr(&w.expect("ADDR:PORT after 'listen'")?)?;
    let mut l = Listen {
        addr,
        targets: Vec::new(),
        maps: Vec::new(),
        config: Config::default(),
        connections: None,
    };
    while let Some(word) = w.next() {
        let mut options = vec![
            ("dev", ListenOption::Dev),
            ("config", ListenOption::Config),
            ("connections", ListenOption::Connections),
        ];
        options.extend(MAP_WORDS.map(|(w, f)| (w, ListenOption::Map(f))));
        match pick(&word, &options, "exporter option")? {
            ListenOption::Dev => {
                let dev = w.expect("a device name after 'dev'")?;
                let mut directions = vec![Direction::Ingress, Direction::Egress];
                if let Some(d) = w.peek() {
                    let hooks = [
                        ("ingress", Direction::Ingress),
                        ("egress", Direction::Egress),
                    ];
                    if let Ok(d) = pick(d, &hooks, "direction") {
                        directions = vec![d];
                        w.next();
                    }
                }
                l.targets
                    .push(crate::collect::DevTarget { dev, directions });
            }
            ListenOption::Config => {
                let path = w.expect("a file after 'config'")?;
                let text = read_config(&path)?;
                l.config =
                    Config::parse(&text).map_err(|e| Fail::usage(format!("config {path}: {e}")))?;
            }
            ListenOption::Connections => {
                let n: usize = w.number("a number of connections after 'connections'")?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(Fail::usage("connections must be between 1 and 1000000"));
                }
                l.connections = Some(n);
            }
            ListenOption::Map(form) => l.maps.push(MapRef::parse(form, w)?),
        }
    }
    if l.targets.is_empty() && l.maps.is_empty() {
        return Err(Fail::usage(
            "nothing to export: give 'dev DEV' or a MAP (fd N, env ID, id N, pinned PATH, name NAME, keeper SOCK [SET/]MAP)",
        ));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Words {
        Words::new(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn listen_words_parse() {
        let l = parse_listen(&mut words(":9435 dev v0 ingress dev v1 id 7 pin /x env 3")).unwrap();
        assert_eq!(l.addr, "127.0.0.1:9435");
        assert_eq!(l.targets[0].directions, vec![Direction::Ingress]);
        assert_eq!(l.targets[1].directions.len(), 2);
        assert_eq!(
            l.maps,
            vec![
                MapRef::Id(7),
                MapRef::Pinned("/x".into()),
                MapRef::Env("BPF_MAP3".into())
            ]
        );
    }

    #[test]
    fn bad_listen_words_are_usage_errors() {
        assert_eq!(parse_listen(&mut words("9435")).unwrap_err().code, 2);
        assert_eq!(parse_listen(&mut words("host")).unwrap_err().code, 2);
        assert_eq!(
            parse_listen(&mut words("1.2.3.4:99999 dev x"))
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(parse_listen(&mut words(":1 frob")).unwrap_err().code, 2);
        assert_eq!(
            parse_listen(&mut words(":1 config /nonexistent/x"))
                .unwrap_err()
                .code,
            1
        );
        assert_eq!(listen_addr("[::1]:80").unwrap(), "[::1]:80");
    }
}

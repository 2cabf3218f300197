//! The words of `tcbpf exporter listen …` (those of `tcbpf map watch …`
//! are `watch`'s), and opening the maps they name. The word grammar and
//! the MAP words (`fd N | env { ID | NAME } | id N | pinned PATH | name
//! NAME | keeper SOCK [SET/]MAP`) are the library's (`tcbpf::front`), as
//! the map helper takes them. No I/O beyond opening the named maps and
//! config file.

use crate::collect::DevTarget;
use crate::config::Config;
use crate::read::{ReadError, StatMap};
use tcbpf::attach::tcx::Direction;
use tcbpf::front::{Map, MapForm, MapRef};
use tcbpf::ErrorKind;

pub use tcbpf::front::words::pick;
pub use tcbpf::front::Words;

/// A failure with its exit status (0 ok, 1 not found, 2 usage or bad
/// input, 3 permission denied, 4 other).
#[derive(Debug)]
pub struct Fail {
    /// Exit status.
    pub code: i32,
    /// What went wrong.
    pub message: String,
}

impl Fail {
    /// A failure of `kind`, exiting as every tcbpf binary does for it
    /// (`tcbpf::ErrorKind::exit_code`, the one table).
    pub fn of(kind: ErrorKind, m: impl Into<String>) -> Fail {
        Fail {
            code: i32::from(kind.exit_code()),
            message: m.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(m: impl Into<String>) -> Fail {
        Fail::of(ErrorKind::BadInput, m)
    }

    /// Any other failure (exit 4).
    pub fn other(m: impl Into<String>) -> Fail {
        Fail::of(ErrorKind::System, m)
    }
}

/// Bad words or a MAP that did not open, by its kind; a word of help is
/// exit 0 with no message (the caller prints its usage).
impl From<tcbpf::front::Error> for Fail {
    fn from(e: tcbpf::front::Error) -> Fail {
        if e.help {
            return Fail {
                code: 0,
                message: String::new(),
            };
        }
        Fail::of(e.kind(), e.message)
    }
}

/// Opens the map `r` names (read-only where a new descriptor is asked
/// for) for statistics.
pub fn open(r: &MapRef) -> Result<StatMap, Fail> {
    let map = Map::open(r, tcbpf::sys::obj::open::RDONLY)?;
    StatMap::new(map).map_err(|e| match e {
        ReadError::Unsupported(m) => Fail::usage(format!("{r}: {m}")),
        ReadError::Maps(e) => Fail::of(e.kind(), format!("{r}: {e}")),
        ReadError::Open(e) => Fail::from(e),
    })
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
                ErrorKind::BadInput
            }
            _ => ErrorKind::from_io(&e),
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
        options.extend(
            MapForm::WORDS
                .iter()
                .map(|&(w, f)| (w, ListenOption::Map(f))),
        );
        match pick(&word, &options, "exporter option")? {
            ListenOption::Dev => {
                let dev = w.expect("a device name after 'dev'")?;
                let mut directions = vec![Direction::Ingress, Direction::Egress];
                if let Some(d) = w.peek() {
                    let d = d.to_string();
                    let hooks = [
                        ("ingress", Direction::Ingress),
                        ("egress", Direction::Egress),
                    ];
                    if let Ok(d) = pick(&d, &hooks, "direction") {
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
                let n: usize = w.decimal("a number of connections after 'connections'")?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(Fail::usage("connections must be between 1 and 1000000"));
                }
                l.connections = Some(n);
            }
            ListenOption::Map(form) => l.maps.push(MapRef::parse_after(form, w)?),
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

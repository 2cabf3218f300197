//! The MAP words every map command takes, and opening what they name:
//!
//! ```text
//! MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME
//!      | keeper SOCK [SET/]MAP
//! ```
//!
//! `fd N` and `env …` use a descriptor this process inherited (the exec
//! proxy's `BPF_MAP<id>` / `BPF_MAP_<NAME>` variables) and need no privilege;
//! `id`, `pinned` and `name` ask the kernel for a new descriptor; `keeper`
//! asks a keeper (read-only when the command only reads). Numbers are
//! decimal or `0x` hex. Every error is led by the MAP words and carries an
//! [`ErrorKind`]. Nothing here probes privileges or walks /proc beyond what
//! the chosen form needs.

use super::words::{parse_number, Error, Words};
use crate::sys::{self, MapFd};
use crate::ErrorKind;
use std::fmt;
use std::path::PathBuf;

/// A map as the command line names it, not yet opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapRef {
    /// `fd N`: a descriptor this process holds.
    Fd(i32),
    /// `env ID` / `env NAME`: the environment variable holding the descriptor
    /// (`BPF_MAP3`, `BPF_MAP_COUNTERS`).
    Env(String),
    /// `id N`: the kernel's map id.
    Id(u32),
    /// `pinned PATH`: a pin in a bpffs.
    Pinned(PathBuf),
    /// `name NAME`: the one live map with this kernel name.
    Name(String),
    /// `keeper SOCK [SET/]MAP`: a map a keeper holds.
    Keeper(PathBuf, String),
}

crate::keywords! {
    /// The words that can start a MAP reference.
    pub enum MapForm("map reference") {
        /// `fd N`.
        Fd = "fd",
        /// `env ID|NAME`.
        Env = "env",
        /// `id N`.
        Id = "id",
        /// `pinned PATH`.
        Pinned = "pinned",
        /// `name NAME`.
        Name = "name",
        /// `keeper SOCK [SET/]MAP`.
        Keeper = "keeper",
    }
}

/// The MAP grammar in one line, for usage errors.
pub const GRAMMAR: &str = "fd N | env ID | id N | pinned PATH | name NAME | keeper SOCK [SET/]MAP";

impl MapRef {
    /// Parses a whole MAP reference from `w`.
    pub fn parse(w: &mut Words) -> Result<MapRef, Error> {
        let word = w.expect(&format!("a map: {GRAMMAR}"))?;
        MapRef::parse_after(MapForm::choose(&word)?, w)
    }

    /// Reads the reference after its first word, which named `form` (for
    /// grammars where MAP words stand beside other options).
    pub fn parse_after(form: MapForm, w: &mut Words) -> Result<MapRef, Error> {
        Ok(match form {
            MapForm::Fd => MapRef::Fd(w.number::<u32>("a descriptor number after 'fd'")? as i32),
            MapForm::Env => MapRef::Env(env_var_name(&w.expect("an id or name after 'env'")?)),
            MapForm::Id => MapRef::Id(w.number("a map id after 'id'")?),
            MapForm::Pinned => MapRef::Pinned(PathBuf::from(w.expect("a path after 'pinned'")?)),
            MapForm::Keeper => MapRef::Keeper(
                PathBuf::from(w.expect("a keeper socket path after 'keeper'")?),
                w.expect("[SET/]MAP after the keeper's socket path")?,
            ),
            MapForm::Name => MapRef::Name(w.expect("a map name after 'name'")?),
        })
    }

    /// Opens the map for reading and writing.
    pub fn open(&self) -> Result<MapFd, Error> {
        self.open_with(sys::obj::open::RDWR)
    }

    /// Opens the map; `open_flags` (`sys::obj::open::*`) apply to the forms
    /// that ask for a new descriptor (`id`, `pinned`, `name`; `keeper`
    /// asks read-only for `RDONLY`). Inherited descriptors keep the access
    /// they were opened with.
    pub fn open_with(&self, open_flags: u32) -> Result<MapFd, Error> {
        match self {
            MapRef::Fd(n) => open_fd(*n, &format!("fd {n}")),
            MapRef::Env(var) => {
                let value = std::env::var(var).map_err(|_| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("environment variable {var} is not set"),
                    )
                })?;
                let n: u32 = parse_number(value.trim()).ok_or_else(|| {
                    Error::usage(format!("{var}='{value}' is not a descriptor number"))
                })?;
                open_fd(n as i32, &format!("{var}={n}"))
            }
            MapRef::Id(id) => sys::obj::map_by_id(*id, open_flags).map_err(|e| self.fail(e)),
            MapRef::Pinned(path) => {
                sys::obj::get_pinned_map(path, open_flags).map_err(|e| match e.errno() {
                    None => Error::caused(
                        ErrorKind::BadInput,
                        format!("{self}: not a bpf map ({e})"),
                        e,
                    ),
                    Some(libc::ENOENT) => {
                        Error::caused(ErrorKind::NotFound, format!("{self}: no such pin"), e)
                    }
                    // The kernel's EACCES/EPERM/EINVAL for a directory or a
                    // file outside bpffs is bad input, not a permission.
                    _ => match sys::obj::not_a_pin(path) {
                        Some(why) => Error::caused(
                            ErrorKind::BadInput,
                            format!("{self}: not a bpf map: {why}"),
                            e,
                        ),
                        None => self.fail(e),
                    },
                })
            }
            MapRef::Name(name) => open_by_name(name, open_flags),
            MapRef::Keeper(sock, name) => {
                let read_only = open_flags == sys::obj::open::RDONLY;
                crate::keeper::client::get_map(sock, name, read_only).map_err(|e| {
                    let message = e.message.clone();
                    Error::caused(e.kind(), message, e).context(&self.to_string())
                })
            }
        }
    }

    /// A kernel error while opening, led by the MAP words.
    fn fail(&self, e: sys::Error) -> Error {
        let kind = e.kind();
        let e = e.on(String::new());
        Error::caused(kind, format!("{self}: {e}"), e)
    }
}

impl fmt::Display for MapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapRef::Fd(n) => write!(f, "fd {n}"),
            MapRef::Env(var) => write!(f, "env {var}"),
            MapRef::Id(id) => write!(f, "id {id}"),
            MapRef::Pinned(p) => write!(f, "pinned {}", p.display()),
            MapRef::Name(n) => write!(f, "name {n}"),
            MapRef::Keeper(s, n) => write!(f, "keeper {} {n}", s.display()),
        }
    }
}

/// `env 3` → `BPF_MAP3`; `env counters` → `BPF_MAP_COUNTERS` (upper-cased,
/// non-alphanumerics as `_`), as the exec proxy names them.
pub fn env_var_name(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        format!("BPF_MAP{word}")
    } else {
        crate::exec::env::name_var(word).unwrap_or_else(|| "BPF_MAP_".to_string())
    }
}

/// Duplicates inherited descriptor `n` after checking it is a bpf map.
fn open_fd(n: i32, what: &str) -> Result<MapFd, Error> {
    MapFd::dup_from_raw(n).map_err(|e| match e.errno() {
        Some(libc::EBADF) => Error::caused(
            ErrorKind::BadInput,
            format!("{what}: descriptor is not open"),
            e,
        ),
        None => {
            let message = format!("{what}: {}", e.source);
            Error::caused(ErrorKind::BadInput, message, e)
        }
        _ => Error::caused(e.kind(), e.to_string(), e),
    })
}

/// Walks the live maps for the one whose kernel name is `name` (compared
/// as the kernel stores it: at most 15 bytes); several are an error
/// listing their ids.
fn open_by_name(name: &str, open_flags: u32) -> Result<MapFd, Error> {
    let sys_err = |e: sys::Error| Error::caused(e.kind(), e.to_string(), e);
    let wanted: String = name.chars().take(15).collect();
    let mut found: Option<(u32, MapFd)> = None;
    let mut others = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::obj::next_map_id(id).map_err(sys_err)? {
        id = next;
        let fd = match sys::obj::map_by_id(id, open_flags) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => continue, // freed while we walked
            Err(e) => return Err(sys_err(e)),
        };
        if sys::info::map_info(&fd).map_err(sys_err)?.name != wanted {
            continue;
        }
        if found.is_some() {
            others.push(id);
        } else {
            found = Some((id, fd));
        }
    }
    match found {
        None => Err(Error::new(
            ErrorKind::NotFound,
            format!("name {name}: no map has this name"),
        )),
        Some((first, _)) if !others.is_empty() => {
            let ids: Vec<String> = std::iter::once(first)
                .chain(others)
                .map(|i| i.to_string())
                .collect();
            Err(Error::usage(format!(
                "map name '{name}' is ambiguous: ids {} (use 'id N')",
                ids.join(", ")
            )))
        }
        Some((_, fd)) => Ok(fd),
    }
}

#[cfg(test)]
mod tests {
    use super::super::words::split;
    use super::*;

    fn parse(s: &str) -> Result<MapRef, Error> {
        MapRef::parse(&mut split(s))
    }

    #[test]
    fn env_names_follow_the_exec_proxy_contract() {
        assert_eq!(env_var_name("3"), "BPF_MAP3");
        assert_eq!(env_var_name("counters"), "BPF_MAP_COUNTERS");
        assert_eq!(env_var_name("my-map.v2"), "BPF_MAP_MY_MAP_V2");
    }

    #[test]
    fn every_form_parses_and_prefixes_work() {
        assert_eq!(parse("fd 5").unwrap(), MapRef::Fd(5));
        assert_eq!(parse("env 0").unwrap(), MapRef::Env("BPF_MAP0".into()));
        assert_eq!(parse("id 0x10").unwrap(), MapRef::Id(16));
        assert_eq!(parse("pin /x").unwrap(), MapRef::Pinned("/x".into()));
        assert_eq!(parse("name ctr").unwrap(), MapRef::Name("ctr".into()));
        assert_eq!(
            parse("k /run/k verdict.o/ctr").unwrap(),
            MapRef::Keeper("/run/k".into(), "verdict.o/ctr".into())
        );
        for s in ["fd 5", "id 16", "pinned /x", "name ctr"] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_map_words_are_bad_input() {
        for s in ["fd x", "bogus 1", "id", "id -1", "id 0x1ffffffff"] {
            let e = parse(s).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadInput, "{s}");
            assert!(!e.help, "{s}");
        }
        assert!(parse("pinned help").unwrap_err().help);
    }

    #[test]
    fn missing_env_var_is_not_found_and_named() {
        let r = MapRef::Env("BPF_MAP_SURELY_NOT_SET_12345".into());
        let e = r.open().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.message.contains("BPF_MAP_SURELY_NOT_SET_12345"),
            "{}",
            e.message
        );
    }
}

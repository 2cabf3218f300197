//! The MAP words every map command starts with, and opening what they name:
//!
//! ```text
//! MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME
//!      | keeper SOCK [SET/]MAP
//! ```
//!
//! `fd N` and `env …` use a descriptor this process inherited (the exec
//! proxy's `BPF_MAP<id>` / `BPF_MAP_<NAME>` variables) and need no privilege;
//! `id`, `pinned` and `name` ask the kernel for a new descriptor; `keeper`
//! asks a keeper (read-only when the command only reads). Nothing here
//! probes privileges or walks /proc beyond what the chosen form needs.

use super::error::{CliError, Exit};
use super::words::{keywords, parse_number, Words};
use std::fmt;
use std::path::PathBuf;
use tcbpf::sys::{self, MapFd};
use tcbpf::ErrorKind;

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

keywords! {
    /// The words that can start a MAP reference.
    pub enum MapForm("map reference") {
        Fd = "fd",
        Env = "env",
        Id = "id",
        Pinned = "pinned",
        Name = "name",
        Keeper = "keeper",
    }
}

impl MapRef {
    /// Parses `fd N | env X | id N | pinned PATH | name NAME` from `w`.
    pub fn parse(w: &mut Words) -> Result<MapRef, CliError> {
        let word = w.expect("a map: fd N | env ID | id N | pinned PATH | name NAME")?;
        match MapForm::choose(&word)? {
            MapForm::Fd => Ok(MapRef::Fd(
                w.number::<u32>("a descriptor number after 'fd'")? as i32,
            )),
            MapForm::Env => Ok(MapRef::Env(env_var_name(
                &w.expect("an id or name after 'env'")?,
            ))),
            MapForm::Id => Ok(MapRef::Id(w.number("a map id after 'id'")?)),
            MapForm::Pinned => Ok(MapRef::Pinned(PathBuf::from(
                w.expect("a path after 'pinned'")?,
            ))),
            MapForm::Keeper => Ok(MapRef::Keeper(
                PathBuf::from(w.expect("a keeper socket path after 'keeper'")?),
                w.expect("[SET/]MAP after the keeper's socket path")?,
            )),
            MapForm::Name => Ok(MapRef::Name(w.expect("a map name after 'name'")?)),
        }
    }

    /// Opens the map for reading and writing.
    pub fn open(&self) -> Result<MapFd, CliError> {
        self.open_with(sys::obj::open::RDWR)
    }

    /// Opens the map; `open_flags` (`sys::obj::open::*`) apply to the forms
    /// that ask the kernel for a new descriptor (`id`, `pinned`, `name`).
    /// Inherited descriptors keep the access they were opened with.
    pub fn open_with(&self, open_flags: u32) -> Result<MapFd, CliError> {
        match self {
            MapRef::Fd(n) => open_fd(*n, &format!("fd {n}")),
            MapRef::Env(var) => {
                let value = std::env::var(var).map_err(|_| {
                    CliError::not_found(format!("environment variable {var} is not set"))
                })?;
                let n: u32 = parse_number(value.trim()).ok_or_else(|| {
                    CliError::usage(format!("{var}='{value}' is not a descriptor number"))
                })?;
                open_fd(n as i32, &format!("{var}={n}"))
            }
            MapRef::Id(id) => sys::obj::map_by_id(*id, open_flags).map_err(|e| self.fail(e)),
            MapRef::Pinned(path) => {
                // The library says a directory or a file outside bpffs is
                // bad input (not the kernel's EACCES/EPERM/EINVAL).
                sys::obj::get_pinned_map(path, open_flags).map_err(|e| match e.kind() {
                    ErrorKind::NotFound => CliError::of(e.kind(), format!("{self}: no such pin")),
                    ErrorKind::BadInput => match sys::obj::not_a_pin(path) {
                        Some(why) => {
                            CliError::of(e.kind(), format!("{self}: not a bpf map: {why}"))
                        }
                        None => CliError::of(e.kind(), format!("{self}: not a bpf map ({e})")),
                    },
                    _ => self.fail(e),
                })
            }
            MapRef::Name(name) => open_by_name(name, open_flags),
            MapRef::Keeper(sock, name) => open_from_keeper(sock, name, open_flags),
        }
    }

    /// A kernel error while opening, led by the MAP words.
    fn fail(&self, e: sys::Error) -> CliError {
        let kind = e.kind();
        CliError::of(kind, format!("{self}: {}", e.on(String::new())))
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
        tcbpf::exec::env::name_var(word).unwrap_or_else(|| "BPF_MAP_".to_string())
    }
}

/// Duplicates inherited descriptor `n` after checking it is a bpf map.
fn open_fd(n: i32, what: &str) -> Result<MapFd, CliError> {
    // A closed or non-map descriptor is bad input, as the library says.
    MapFd::dup_from_raw(n).map_err(|e| match e.errno() {
        Some(libc::EBADF) => CliError::of(e.kind(), format!("{what}: descriptor is not open")),
        None => CliError::of(e.kind(), format!("{what}: {}", e.source)),
        _ => CliError::from(e),
    })
}

/// Gets `[SET/]MAP` from the keeper at `sock`, read-only when
/// `open_flags` ask only to read.
fn open_from_keeper(
    sock: &std::path::Path,
    name: &str,
    open_flags: u32,
) -> Result<MapFd, CliError> {
    let read_only = open_flags == sys::obj::open::RDONLY;
    tcbpf::keeper::client::get_map(sock, name, read_only).map_err(CliError::from)
}

/// Walks the live maps for the one whose kernel name is `name` (compared
/// as the kernel stores it: at most 15 bytes).
fn open_by_name(name: &str, open_flags: u32) -> Result<MapFd, CliError> {
    let wanted: String = name.chars().take(15).collect();
    let mut found: Option<(u32, MapFd)> = None;
    let mut others = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::obj::next_map_id(id)? {
        id = next;
        let fd = match sys::obj::map_by_id(id, open_flags) {
            Ok(fd) => fd,
            Err(e) if e.is_not_found() => continue, // freed while we walked
            Err(e) => return Err(e.into()),
        };
        if sys::info::map_info(&fd)?.name != wanted {
            continue;
        }
        if found.is_some() {
            others.push(id);
        } else {
            found = Some((id, fd));
        }
    }
    match found {
        None => Err(CliError::not_found(format!("no map named '{name}'"))),
        Some((first, _)) if !others.is_empty() => {
            let ids: Vec<String> = std::iter::once(first)
                .chain(others)
                .map(|i| i.to_string())
                .collect();
            Err(CliError {
                exit: Exit::Usage,
                message: format!(
                    "map name '{name}' is ambiguous: ids {} (use 'id N')",
                    ids.join(", ")
                ),
            })
        }
        Some((_, fd)) => Ok(fd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<MapRef, CliError> {
        MapRef::parse(&mut Words::new(
            args.iter().map(|s| s.to_string()).collect(),
        ))
    }

    #[test]
    fn env_names_follow_the_exec_proxy_contract() {
        assert_eq!(env_var_name("3"), "BPF_MAP3");
        assert_eq!(env_var_name("counters"), "BPF_MAP_COUNTERS");
        assert_eq!(env_var_name("my-map.v2"), "BPF_MAP_MY_MAP_V2");
    }

    #[test]
    fn every_form_parses_and_prefixes_work() {
        assert_eq!(parse(&["fd", "5"]).unwrap(), MapRef::Fd(5));
        assert_eq!(
            parse(&["env", "0"]).unwrap(),
            MapRef::Env("BPF_MAP0".into())
        );
        assert_eq!(parse(&["id", "0x10"]).unwrap(), MapRef::Id(16));
        assert_eq!(parse(&["pin", "/x"]).unwrap(), MapRef::Pinned("/x".into()));
        assert_eq!(parse(&["name", "ctr"]).unwrap(), MapRef::Name("ctr".into()));
    }

    #[test]
    fn bad_map_words_are_usage_errors() {
        assert_eq!(parse(&["fd", "x"]).unwrap_err().exit, Exit::Usage);
        assert_eq!(parse(&["bogus", "1"]).unwrap_err().exit, Exit::Usage);
        assert_eq!(parse(&["id"]).unwrap_err().exit, Exit::Usage);
    }

    #[test]
    fn missing_env_var_is_not_found() {
        let r = MapRef::Env("BPF_MAP_SURELY_NOT_SET_12345".into());
        let e = r.open().unwrap_err();
        assert_eq!(e.exit, Exit::NotFound);
        assert!(
            e.message.contains("BPF_MAP_SURELY_NOT_SET_12345"),
            "{}",
            e.message
        );
    }
}

//! The environment contract of `exec bpf import`, both ways: the variables
//! the importer sets for its command (`BPF_NUM_MAPS`, `BPF_MAP<id>`,
//! `BPF_MAP_<NAME>`), and reading them back in the command, like
//! `sd_listen_fds` does for sockets.
//!
//! Building and parsing are pure; only `from_env` (public as
//! `exec::agent::from_env`, its one path) touches descriptors (it
//! duplicates each inherited one after checking it is a bpf map).

use crate::sys::info::{map_info, MapInfo};
use crate::sys::MapFd;
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsRawFd, RawFd};

/// `BPF_NUM_MAPS`: how many maps were imported.
pub const NUM_MAPS_VAR: &str = "BPF_NUM_MAPS";
/// Prefix of `BPF_MAP<id>` and `BPF_MAP_<NAME>`.
pub const MAP_VAR_PREFIX: &str = "BPF_MAP";

/// One map as the environment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapVar {
    /// The entry's id (`BPF_MAP<id>`).
    pub id: u32,
    /// The kernel's map name (`BPF_MAP_<NAME>` after [`name_var`]).
    pub name: String,
    /// The descriptor number the command inherits.
    pub fd: RawFd,
}

/// `BPF_MAP_<NAME>` for a kernel map name: upper-cased, every byte that is
/// not an ASCII letter or digit as `_`. None for an empty name.
pub fn name_var(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    Some(format!("{MAP_VAR_PREFIX}_{upper}"))
}

/// True for variables the importer owns (`BPF_NUM_MAPS`, `BPF_MAP…`): an
/// importer removes inherited ones before setting its own, so a nested
/// import never shows stale descriptors.
pub fn is_import_var(key: &str) -> bool {
    key == NUM_MAPS_VAR || key.starts_with(MAP_VAR_PREFIX)
}

/// The variables for `maps`, in order: `BPF_NUM_MAPS`, then `BPF_MAP<id>`
/// and `BPF_MAP_<NAME>` per map. When two maps share an id or a name, the
/// first one keeps the variable (as `getenv` would find tc's first).
pub fn map_environment(maps: &[MapVar]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(1 + 2 * maps.len());
    out.push((NUM_MAPS_VAR.to_string(), maps.len().to_string()));
    for m in maps {
        let fd = m.fd.to_string();
        out.push((format!("{MAP_VAR_PREFIX}{}", m.id), fd.clone()));
        if let Some(name) = name_var(&m.name) {
            out.push((name, fd));
        }
    }
    // Keep the first of each key: sort positions by (key, position) and
    // drop every position whose key equals its predecessor's.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_unstable_by(|&a, &b| out[a].0.cmp(&out[b].0).then(a.cmp(&b)));
    let mut keep = vec![true; out.len()];
    for pair in order.windows(2) {
        if out[pair[0]].0 == out[pair[1]].0 {
            keep[pair[1]] = false;
        }
    }
    let mut index = 0;
    out.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    out
}

/// What the environment says about one inherited descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvEntry {
    /// The descriptor number.
    pub fd: RawFd,
    /// Ids naming it (`BPF_MAP<id>`), ascending.
    pub ids: Vec<u32>,
    /// Name variables naming it (`BPF_MAP_<NAME>`, the part after `BPF_MAP_`).
    pub names: Vec<String>,
}

/// Why the environment does not describe imported maps: a variable that
/// does not parse (bad input), or a descriptor it names that is not an open
/// map (the failed system call kept as the cause).
#[derive(Debug)]
pub struct EnvError {
    /// One line naming the variable and what was wrong.
    pub message: String,
    /// The failed system call, when a descriptor could not be checked.
    cause: Option<crate::sys::Error>,
}

impl EnvError {
    fn new(message: String) -> Self {
        EnvError {
            message,
            cause: None,
        }
    }

    fn sys(what: &str, e: crate::sys::Error) -> Self {
        EnvError {
            message: format!("{what}: {e}"),
            cause: Some(e),
        }
    }

    /// The class of failure: bad input for a variable that does not parse
    /// or a descriptor that is not a map (EBADF, EINVAL), else the system
    /// call's errno class.
    pub fn kind(&self) -> crate::ErrorKind {
        match &self.cause {
            Some(e) if !matches!(e.errno(), Some(libc::EBADF) | Some(libc::EINVAL)) => e.kind(),
            _ => crate::ErrorKind::BadInput,
        }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EnvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|e| e as _)
    }
}

/// Parses the import variables out of `vars` (all other variables are
/// ignored): one [`EnvEntry`] per descriptor, ordered by first id (maps named
/// only by name come last). `BPF_NUM_MAPS` must be present and match the
/// number of descriptors named.
pub fn parse_env<I, K, V>(vars: I) -> Result<Vec<EnvEntry>, EnvError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut num: Option<usize> = None;
    let mut by_fd: BTreeMap<RawFd, EnvEntry> = BTreeMap::new();
    for (k, v) in vars {
        let (key, value) = (k.as_ref(), v.as_ref());
        if key == NUM_MAPS_VAR {
            num =
                Some(value.parse().map_err(|_| {
                    EnvError::new(format!("{NUM_MAPS_VAR}='{value}' is not a number"))
                })?);
            continue;
        }
        let Some(rest) = key.strip_prefix(MAP_VAR_PREFIX) else {
            continue;
        };
        let fd: RawFd = match value.parse() {
            Ok(fd) if fd >= 0 => fd,
            _ => {
                return Err(EnvError::new(format!(
                    "{key}='{value}' is not a descriptor number"
                )))
            }
        };
        let entry = by_fd.entry(fd).or_insert_with(|| EnvEntry {
            fd,
            ..Default::default()
        });
        if let Some(name) = rest.strip_prefix('_') {
            entry.names.push(name.to_string());
        } else if let Ok(id) = rest.parse::<u32>() {
            entry.ids.push(id);
        } else {
            return Err(EnvError::new(format!(
                "{key}: expected {MAP_VAR_PREFIX}<id> or {MAP_VAR_PREFIX}_<NAME>"
            )));
        }
    }
    let Some(num) = num else {
        return Err(EnvError::new(format!(
            "{NUM_MAPS_VAR} is not set: this process was not started by 'exec bpf import'"
        )));
    };
    if by_fd.len() != num {
        return Err(EnvError::new(format!(
            "{NUM_MAPS_VAR}={num} but the environment names {} map descriptor(s)",
            by_fd.len()
        )));
    }
    let mut entries: Vec<EnvEntry> = by_fd.into_values().collect();
    for e in &mut entries {
        e.ids.sort_unstable();
    }
    entries.sort_by_key(|e| (e.ids.first().copied().map_or(1u64 << 32, u64::from), e.fd));
    Ok(entries)
}

/// A map this process inherited from `exec bpf import`.
#[derive(Debug)]
pub struct InheritedMap {
    /// Its id (`BPF_MAP<id>`); None when only a name variable names it.
    pub id: Option<u32>,
    /// The kernel's map name.
    pub name: String,
    /// The inherited descriptor number (left open and inheritable).
    pub inherited_fd: RawFd,
    /// A close-on-exec duplicate, checked to be a bpf map.
    pub fd: MapFd,
    /// The kernel's info on it.
    pub info: MapInfo,
}

impl InheritedMap {
    /// The descriptor to use.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The maps in this process's environment, each checked to be a bpf map
/// (like `sd_listen_fds`). The inherited descriptors stay as they are; the
/// returned ones are close-on-exec duplicates.
pub(crate) fn from_env() -> Result<Vec<InheritedMap>, EnvError> {
    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let entries = parse_env(vars)?;
    entries
        .into_iter()
        .map(|e| {
            let what = match e.ids.first() {
                Some(id) => format!("{MAP_VAR_PREFIX}{id}={}", e.fd),
                None => format!("{MAP_VAR_PREFIX}_{}={}", e.names[0], e.fd),
            };
            let fd = MapFd::dup_from_raw(e.fd).map_err(|err| EnvError::sys(&what, err))?;
            let info = map_info(&fd).map_err(|err| EnvError::sys(&what, err))?;
            Ok(InheritedMap {
                id: e.ids.first().copied(),
                name: info.name.clone(),
                inherited_fd: e.fd,
                fd,
                info,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_var_upper_cases_and_replaces_non_alphanumerics() {
        assert_eq!(
            name_var("proto_count").as_deref(),
            Some("BPF_MAP_PROTO_COUNT")
        );
        assert_eq!(
            name_var("demo.rodata").as_deref(),
            Some("BPF_MAP_DEMO_RODATA")
        );
        assert_eq!(name_var("a-b c9").as_deref(), Some("BPF_MAP_A_B_C9"));
        assert_eq!(name_var(""), None);
    }

    #[test]
    fn environment_lists_count_ids_and_names_first_wins() {
        let maps = [
            MapVar {
                id: 3,
                name: "counters".into(),
                fd: 5,
            },
            MapVar {
                id: 0,
                name: "jmp".into(),
                fd: 6,
            },
            MapVar {
                id: 3,
                name: "counters".into(),
                fd: 7,
            },
        ];
        let env = map_environment(&maps);
        let want: Vec<(String, String)> = [
            ("BPF_NUM_MAPS", "3"),
            ("BPF_MAP3", "5"),
            ("BPF_MAP_COUNTERS", "5"),
            ("BPF_MAP0", "6"),
            ("BPF_MAP_JMP", "6"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(env, want);
    }

    #[test]
    fn parse_groups_variables_by_descriptor_in_id_order() {
        let vars = [
            ("PATH", "/bin"),
            ("BPF_MAP_JMP", "6"),
            ("BPF_NUM_MAPS", "3"),
            ("BPF_MAP7", "5"),
            ("BPF_MAP_COUNTERS", "5"),
            ("BPF_MAP0", "6"),
            ("BPF_MAP_ONLY_NAME", "9"),
        ];
        let e = parse_env(vars).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].fd, e[0].ids.clone(), e[0].names.clone()),
            (6, vec![0], vec!["JMP".to_string()])
        );
        assert_eq!((e[1].fd, e[1].ids.clone()), (5, vec![7]));
        assert_eq!(
            (e[2].fd, e[2].ids.clone(), e[2].names.clone()),
            (9, vec![], vec!["ONLY_NAME".to_string()])
        );
    }

    #[test]
    fn parse_rejects_missing_or_inconsistent_count_and_bad_values() {
        assert!(parse_env([("BPF_MAP0", "5")])
            .unwrap_err()
            .message
            .contains("not set"));
        assert!(parse_env([("BPF_NUM_MAPS", "2"), ("BPF_MAP0", "5")])
            .unwrap_err()
            .message
            .contains("names 1"));
        assert!(parse_env([("BPF_NUM_MAPS", "1"), ("BPF_MAP0", "x")])
            .unwrap_err()
            .message
            .contains("not a descriptor"));
        assert!(parse_env([("BPF_NUM_MAPS", "1"), ("BPF_MAPX", "4")])
            .unwrap_err()
            .message
            .contains("expected"));
        assert_eq!(parse_env([("BPF_NUM_MAPS", "0")]).unwrap(), vec![]);
    }
}

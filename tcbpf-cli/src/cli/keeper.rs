//! `tcbpf keeper …`: run a keeper, ask one, and the client side of
//! `exec bpf import keeper …`.
//!
//! ```text
//! tcbpf keeper SOCK [ import UDS ] [ policy FILE ] [ state DIR ] [ mode OCTAL ]
//! tcbpf keeper { list | status } SOCK
//! tcbpf keeper send SOCK UDS [ set NAME ]
//! tcbpf exec bpf import keeper SOCK [ set NAME ] [ map NAME ]... [ ro ] [ run CMD [ ARGS... ] ]
//! ```
//!
//! This module parses words and prints; the keeper itself is
//! `tcbpf::keeper`, the environment and exec are `tcbpf::exec`.

use super::error::CliError;
use super::output::Global;
use super::words::{is_help, keywords, Words};
use serde_json::json;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::PathBuf;
use tcbpf::keeper::{self, systemd, Access, Listing, Policy};
use tcbpf::{exec, scm};

/// `tcbpf keeper help`.
pub const USAGE: &str = "\
Usage: tcbpf keeper SOCK [ import UDS ] [ policy FILE ] [ state DIR ] [ mode OCTAL ]
       tcbpf keeper { list | status } SOCK
       tcbpf keeper send SOCK UDS [ set NAME ]
       tcbpf exec bpf import keeper SOCK [ set NAME ] [ map NAME ]... [ ro ]
                                    [ run CMD [ ARGS... ] ]

keeper   run a keeper in the foreground: it binds the import socket UDS
         (default SOCK.import, mode 0600) and keeps every export sent there
         ('tcbpf filter ... export UDS', 'tcbpf map export UDS ...', 'tc ...
         export UDS') as a set named by its object file's name; a later
         export of the same name replaces the set. Holding a set keeps its
         program arrays populated after the exporter exited. Clients ask on
         the SOCK_SEQPACKET socket SOCK (mode 0600 unless 'mode').
         'policy FILE' lines: allow uid U|gid G [ set NAME ] [ ro | rw ]
         (root is always rw; everyone else gets nothing unless allowed;
         without ro/rw a line allows ro). Read-only maps are new descriptors
         opened with BPF_F_RDONLY: the kernel refuses writes through them.
         'state DIR' (on a bpffs) pins every set there and picks them up at
         the next start; without it the maps live as long as the keeper.
         DIR must be owned by root (or the keeper's user), not writable by
         group or others, and not a symlink; entries the keeper did not
         make are skipped with a warning, never deleted.
         Each user without 'rw' holds at most 16 connections (256 for all
         of them); root and 'rw' users are never shut out. Refused
         clients are told 'busy'.
         Systemd socket activation (LISTEN_FDS, names 'keeper' and 'import')
         and sd_notify (READY=1, STOPPING=1) work without libsystemd.
         SIGTERM/SIGINT: stop, unlink the sockets it bound, exit 0.
list     the sets and maps this user may get (-j: JSON).
status   the list with the keeper's counters and recent clients (-j: JSON).
send     get a set (the only one when 'set' is not given) and send it to
         an importer bound at UDS in iproute2's format, so 'tc exec bpf
         import UDS' (or any importer) re-attaches to the maps.
exec bpf import keeper
         get a set, or only the maps named, and run CMD (default /bin/sh)
         with exactly the environment an import gives: BPF_NUM_MAPS,
         BPF_MAP<id>, BPF_MAP_<NAME>. 'ro' asks for read-only descriptors
         (the keeper's policy may give only those anyway).
";

fn octal_mode(text: &str) -> Result<u32, CliError> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            CliError::usage(format!(
                "mode: '{text}' is not an octal file mode (0000-0777)"
            ))
        })
}

/// Runs `tcbpf keeper …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let Some(first) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected a socket path or list, status, send after 'keeper'",
        ));
    };
    if is_help(&first) {
        return Err(CliError::help());
    }
    match first.as_str() {
        "list" | "status" => {
            let sock = PathBuf::from(w.expect("a keeper socket path")?);
            w.finish()?;
            let client = keeper::Client::connect(&sock).map_err(CliError::from)?;
            let listing = if first == "list" {
                client.list()
            } else {
                client.status()
            }
            .map_err(CliError::from)?;
            print_listing(g, &listing, first == "status")
        }
        "send" => send(g, w),
        _ => daemon(PathBuf::from(first), w),
    }
}

keywords! {
    /// The options of the keeper daemon.
    pub(crate) enum KeeperOption("keeper option") {
        Import = "import",
        Policy = "policy",
        State = "state",
        Mode = "mode",
    }
}

keywords! {
    /// The one option of `keeper send`.
    pub(crate) enum SendOption("send option") { Set = "set" }
}

keywords! {
    /// The options of `exec bpf import keeper`.
    pub(crate) enum KeeperImportOption("keeper import option") {
        Set = "set",
        Map = "map",
        ReadOnly = "ro",
        Run = "run",
    }
}

/// The parsed words of the daemon.
fn parse_daemon(
    sock: PathBuf,
    w: &mut Words,
) -> Result<(keeper::Config, Option<PathBuf>), CliError> {
    let mut config = keeper::Config::new(&sock);
    let mut policy_path = None;
    while let Some(word) = w.next() {
        match KeeperOption::choose(&word)? {
            KeeperOption::Import => {
                config.import = PathBuf::from(w.expect("a socket path after 'import'")?)
            }
            KeeperOption::Policy => {
                policy_path = Some(PathBuf::from(w.expect("a file after 'policy'")?))
            }
            KeeperOption::State => {
                config.state = Some(PathBuf::from(w.expect("a directory after 'state'")?))
            }
            KeeperOption::Mode => {
                config.mode = octal_mode(&w.expect("an octal mode after 'mode'")?)?
            }
        }
    }
    Ok((config, policy_path))
}

fn daemon(sock: PathBuf, w: &mut Words) -> Result<(), CliError> {
    let (mut config, policy_path) = parse_daemon(sock, w)?;
    if let Some(p) = &policy_path {
        let text = std::fs::read_to_string(p)
            .map_err(|e| CliError::from(e).context(format!("policy {}", p.display())))?;
        config.policy = Policy::parse(&text)
            .map_err(|e| CliError::usage(format!("policy {}: {e}", p.display())))?;
    }
    config.activated = systemd::take_listen_fds().map_err(CliError::from)?;
    let (sock, import) = (config.sock.clone(), config.import.clone());
    let rules = config.policy.rules.len();
    config.log = Box::new(|line| eline!("tcbpf keeper: {line}"));
    config.on_ready = Some(Box::new(move |held| {
        eline!(
            "tcbpf keeper: ready on {} (imports on {}; {rules} policy rule(s); {held})",
            sock.display(),
            import.display()
        );
        if let Err(e) = systemd::notify(&format!("READY=1\nSTATUS={held}")) {
            eline!("tcbpf keeper: sd_notify: {e}");
        }
    }));
    let result = keeper::run(config).map_err(CliError::from);
    let _ = systemd::notify("STOPPING=1");
    result
}

fn send(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let sock = PathBuf::from(w.expect("a keeper socket path after 'send'")?);
    let uds = PathBuf::from(w.expect("the importer's socket path after the keeper's")?);
    let mut set = String::new();
    while let Some(word) = w.next() {
        let SendOption::Set = SendOption::choose(&word)?;
        set = w.expect("a set name after 'set'")?;
    }
    let got = keeper::client::get(&sock, &set, &[], Access::Best, false).map_err(CliError::from)?;
    let maps: Vec<(scm::MapDesc, std::os::fd::BorrowedFd<'_>)> = got
        .received
        .maps
        .iter()
        .map(|m| (m.desc, m.fd.as_fd()))
        .collect();
    scm::send_maps(&uds, &got.received.object, &maps).map_err(CliError::from)?;
    if g.json {
        g.print_json(&json!({
            "uds": uds,
            "object": got.received.object.name,
            "sent": maps.len(),
            "read_only": got.read_only,
        }))?;
    }
    Ok(())
}

/// `exec bpf import keeper SOCK …` (the words after `keeper`).
pub fn import(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let sock = PathBuf::from(w.expect("a keeper socket path after 'keeper'")?);
    let mut set = String::new();
    let mut maps = Vec::new();
    let mut read_only = false;
    let mut argv = vec![OsString::from(exec::DEFAULT_COMMAND)];
    while let Some(word) = w.next() {
        match KeeperImportOption::choose(&word)? {
            KeeperImportOption::Set => set = w.expect("a set name after 'set'")?,
            KeeperImportOption::Map => maps.push(w.expect("a map name after 'map'")?),
            KeeperImportOption::ReadOnly => read_only = true,
            KeeperImportOption::Run => {
                let rest = w.rest();
                if rest.is_empty() {
                    return Err(CliError::usage("expected a command after 'run'"));
                }
                argv = rest.into_iter().map(OsString::from).collect();
            }
        }
    }
    let access = if read_only {
        Access::ReadOnly
    } else {
        Access::Best
    };
    let got = keeper::client::get(&sock, &set, &maps, access, !g.json).map_err(CliError::from)?;
    if g.json {
        let mut v = super::exec::received_json(&got.received);
        v["read_only"] = json!(got.read_only);
        g.print_json(&v)?;
        return Ok(());
    }
    let err = exec::exec_with_maps(got.received, &argv);
    Err(CliError::of(
        tcbpf::ErrorKind::from_io(&err),
        format!(
            "cannot run '{}': {}",
            argv[0].to_string_lossy(),
            tcbpf::sys::strip_os(&err)
        ),
    ))
}

fn print_listing(g: &Global, l: &Listing, status: bool) -> Result<(), CliError> {
    if g.json {
        let sets: Vec<_> = l
            .sets
            .iter()
            .map(|s| {
                let maps: Vec<_> = s
                    .maps
                    .iter()
                    .map(|m| {
                        json!({
                            "id": m.id, "name": m.name, "map_id": m.map_id, "type": m.map_type,
                            "bytes_key": m.key_size, "bytes_value": m.value_size,
                            "max_entries": m.max_entries, "flags": m.flags,
                        })
                    })
                    .collect();
                json!({
                    "name": s.name, "object": s.object, "dev": s.dev, "ino": s.ino,
                    "access": s.access,
                    // Epoch milliseconds, as every `_ms` time (the keeper
                    // keeps whole seconds).
                    "imported_ms": s.imported.saturating_mul(1000),
                    "generation": s.generation,
                    "maps": maps,
                })
            })
            .collect();
        let mut v = json!({ "sets": sets });
        if status {
            let counters: serde_json::Map<String, serde_json::Value> = l
                .counters
                .iter()
                .map(|(k, n)| (k.clone(), json!(n)))
                .collect();
            let clients: Vec<_> = l
                .clients
                .iter()
                .map(|c| {
                    json!({
                        "pid": c.pid, "uid": c.uid, "set": c.set, "access": c.access,
                        "maps": c.maps, "alive": c.alive,
                    })
                })
                .collect();
            v["counters"] = json!(counters);
            v["clients"] = json!(clients);
        }
        g.print_json(&v)?;
        return Ok(());
    }
    let mut out = String::new();
    if status {
        let line: Vec<String> = l.counters.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!("keeper: {}\n", line.join("  ")));
    }
    for s in &l.sets {
        out.push_str(&format!(
            "set {}  object {}  {}  {} map(s)  generation {}\n",
            s.name,
            s.object,
            s.access,
            s.maps.len(),
            s.generation
        ));
        for m in &s.maps {
            out.push_str(&format!(
                "  map {} {}  map_id {}  type {}  key {}B  value {}B  max_entries {}  flags 0x{:x}\n",
                m.id, m.name, m.map_id, m.map_type, m.key_size, m.value_size, m.max_entries, m.flags
            ));
        }
    }
    for c in &l.clients {
        out.push_str(&format!(
            "client pid {} uid {}  set {}  {}  {} map(s)  {}\n",
            c.pid,
            c.uid,
            c.set,
            c.access,
            c.maps,
            if c.alive { "running" } else { "gone" }
        ));
    }
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn daemon_defaults_import_to_sock_dot_import_and_takes_options() {
        let (c, p) = parse_daemon(PathBuf::from("/run/k"), &mut words("")).unwrap();
        assert_eq!(c.import, PathBuf::from("/run/k.import"));
        assert_eq!((c.mode, c.state, p), (0o600, None, None));
        let (c, p) = parse_daemon(
            PathBuf::from("/run/k"),
            &mut words("imp /run/i pol /etc/p st /sys/fs/bpf/k mo 0666"),
        )
        .unwrap();
        assert_eq!(c.import, PathBuf::from("/run/i"));
        assert_eq!(c.mode, 0o666);
        assert_eq!(c.state, Some(PathBuf::from("/sys/fs/bpf/k")));
        assert_eq!(p, Some(PathBuf::from("/etc/p")));
        assert!(parse_daemon(PathBuf::from("/k"), &mut words("mode 999")).is_err());
        assert!(parse_daemon(PathBuf::from("/k"), &mut words("bogus")).is_err());
    }
}

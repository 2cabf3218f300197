//! Systemd integration without libsystemd: socket activation
//! (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`) and `sd_notify`
//! (`READY=1`, `STOPPING=1`, `STATUS=…` as one datagram to
//! `NOTIFY_SOCKET`). Both are a few lines of a stable, documented protocol
//! (sd_listen_fds(3), sd_notify(3)); linking libsystemd for them would add
//! a C dependency to every agent.
//!
//! Parsing is pure; [`take_listen_fds`] and [`notify`] do the syscalls.

use super::{Error, Result};
use crate::sys;
use crate::ErrorKind;
use std::os::fd::{AsFd, OwnedFd, RawFd};

/// The first descriptor systemd passes.
pub const LISTEN_FDS_START: RawFd = 3;

/// The passed descriptors named by the environment: `(fd, name)` for each,
/// or nothing when the variables are absent or meant for another process.
pub fn parse_listen_fds(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    my_pid: u32,
) -> std::result::Result<Vec<(RawFd, String)>, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(my_pid) {
        return Ok(Vec::new());
    }
    let n: usize = fds
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS='{fds}' is not a number"))?;
    if n > 64 {
        return Err(format!("LISTEN_FDS={n}: more sockets than a keeper uses"));
    }
    let names: Vec<&str> = names.map(|s| s.split(':').collect()).unwrap_or_default();
    Ok((0..n)
        .map(|i| {
            let name = names.get(i).copied().unwrap_or("unknown").to_string();
            (LISTEN_FDS_START + i as RawFd, name)
        })
        .collect())
}

/// Which passed descriptor is the client socket and which the import
/// socket: by name (`keeper`/`client` and `import`, as the unit files in
/// `contrib/systemd/` name them), else by type (seqpacket, datagram).
pub fn pick_sockets(
    passed: Vec<(OwnedFd, String, i32)>,
) -> std::result::Result<(OwnedFd, OwnedFd), String> {
    let mut client = None;
    let mut import = None;
    for (fd, name, kind) in passed {
        let is_import = name == "import" || (name != "keeper" && kind == libc::SOCK_DGRAM);
        let slot = if is_import { &mut import } else { &mut client };
        if slot.is_some() {
            return Err(format!(
                "two sockets passed for the {} socket",
                if is_import { "import" } else { "client" }
            ));
        }
        *slot = Some(fd);
    }
    match (client, import) {
        (Some(c), Some(i)) => Ok((c, i)),
        _ => Err("socket activation must pass two sockets: the client socket (SOCK_SEQPACKET, FileDescriptorName=keeper) and the import socket (SOCK_DGRAM, FileDescriptorName=import)".into()),
    }
}

/// The sockets systemd passed this process, as (client, import), or None
/// when it passed none. The variables are removed from the environment so
/// that no child takes them for its own.
pub fn take_listen_fds() -> Result<Option<(OwnedFd, OwnedFd)>> {
    let var = |k: &str| std::env::var(k).ok();
    let passed = parse_listen_fds(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )
    .map_err(|m| Error::new(ErrorKind::BadInput, m))?;
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
    if passed.is_empty() {
        return Ok(None);
    }
    let mut owned = Vec::with_capacity(passed.len());
    for (raw, name) in passed {
        let fd = sys::net::take_inherited_socket(raw)
            .map_err(|e| Error::new(ErrorKind::BadInput, format!("LISTEN_FDS: {e}")))?;
        let kind = sys::net::int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE)
            .map_err(|e| Error::os("getsockopt", "SO_TYPE", e))?;
        owned.push((fd, name, kind));
    }
    pick_sockets(owned)
        .map(Some)
        .map_err(|m| Error::new(ErrorKind::BadInput, m))
}

/// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=…`) to systemd's
/// `NOTIFY_SOCKET`; nothing when the variable is not set.
pub fn notify(state: &str) -> Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    use std::os::unix::ffi::OsStrExt;
    let sock = sys::net::unix_socket(libc::SOCK_DGRAM)
        .map_err(|e| Error::os("socket", "NOTIFY_SOCKET", e))?;
    sys::net::send_to_unix(sock.as_fd(), state.as_bytes(), path.as_bytes())
        .map_err(|e| Error::os("sendto", path.to_string_lossy().into_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_are_for_this_pid_only_and_named_in_order() {
        assert_eq!(
            parse_listen_fds(Some("42"), Some("2"), Some("keeper:import"), 42).unwrap(),
            vec![(3, "keeper".to_string()), (4, "import".to_string())]
        );
        assert_eq!(
            parse_listen_fds(Some("41"), Some("2"), None, 42).unwrap(),
            vec![]
        );
        assert_eq!(parse_listen_fds(None, None, None, 42).unwrap(), vec![]);
        assert_eq!(
            parse_listen_fds(Some("42"), Some("1"), None, 42).unwrap(),
            vec![(3, "unknown".to_string())]
        );
        assert!(parse_listen_fds(Some("42"), Some("x"), None, 42).is_err());
        assert!(parse_listen_fds(Some("42"), Some("1000"), None, 42).is_err());
    }
}

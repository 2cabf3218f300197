//! Who may receive maps: the exporter's checks on the importer's socket
//! before anything is sent.
//!
//! A datagram socket gives no peer credentials (SO_PEERCRED is empty for
//! `connect` on SOCK_DGRAM), so the socket file decides: it must be a
//! socket (not a symlink to one), owned by root, by this process's uid or by
//! a uid the caller allows, in a directory that no other user can rewrite
//! (owned by a trusted uid, and writable by group or others only with the
//! sticky bit). After `connect` the file must still be the same inode, so a
//! swap in between is caught. This module only looks at files; it sends
//! nothing and never prints.

use super::error::{Error, Result};
use crate::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Which uids an exporter trusts besides root and its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trusted<'a> {
    /// Real and effective uid of this process.
    pub own: (u32, u32),
    /// Extra uids (`allow-uid`).
    pub allowed: &'a [u32],
}

impl Trusted<'_> {
    fn has(&self, uid: u32) -> bool {
        uid == 0 || uid == self.own.0 || uid == self.own.1 || self.allowed.contains(&uid)
    }

    fn names(&self) -> String {
        let mut v = vec![0, self.own.1];
        v.extend(self.allowed.iter().copied());
        v.sort_unstable();
        v.dedup();
        let v: Vec<String> = v.iter().map(|u| u.to_string()).collect();
        v.join(", ")
    }
}

fn denied(message: String) -> Error {
    Error::new(ErrorKind::Permission, message)
}

/// Checks the directory of `path` and the socket file at `path`; returns
/// the socket file's (dev, inode) for [`same_socket`]. A missing path is
/// [`ErrorKind::NotListening`].
pub(crate) fn check_receiver(path: &Path, trusted: Trusted<'_>) -> Result<(u64, u64)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let d = std::fs::metadata(dir).map_err(|e| Error::os("stat", dir.display().to_string(), e))?;
    if !trusted.has(d.uid()) {
        return Err(denied(format!(
            "refusing to send maps to {}: its directory {} is owned by uid {}, who could replace the socket (trusted: uid {}; add 'allow-uid {}' to trust it)",
            path.display(),
            dir.display(),
            d.uid(),
            trusted.names(),
            d.uid()
        )));
    }
    let sticky = d.mode() & 0o1000 != 0;
    let others_write = d.mode() & 0o002 != 0;
    let group_write = d.mode() & 0o020 != 0 && d.gid() != 0;
    if !sticky && (others_write || group_write) {
        return Err(denied(format!(
            "refusing to send maps to {}: its directory {} (mode {:o}) can be written by {} and has no sticky bit, so anyone there could replace the socket (use a directory such as /run/tcbpf/)",
            path.display(),
            dir.display(),
            d.mode() & 0o7777,
            if others_write { "every user" } else { "its group" }
        )));
    }
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::NotListening,
                format!(
                    "nobody is listening on {} (start 'exec bpf import {}' first): no such file",
                    path.display(),
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(Error::os("stat", path.display().to_string(), e)),
    };
    if !m.file_type().is_socket() {
        let what = if m.file_type().is_symlink() {
            "a symlink"
        } else {
            "another kind of file"
        };
        return Err(Error::bad(format!(
            "refusing to send maps to {}: it is not a socket but {what} (give the socket's own path)",
            path.display()
        )));
    }
    if !trusted.has(m.uid()) {
        return Err(denied(format!(
            "refusing to send maps to {}: the socket is owned by uid {}, not by a trusted uid ({}); add 'allow-uid {}' if that user should get the maps",
            path.display(),
            m.uid(),
            trusted.names(),
            m.uid()
        )));
    }
    Ok((m.dev(), m.ino()))
}

/// After `connect`: the socket file is still the inode that was checked.
pub(crate) fn same_socket(path: &Path, checked: (u64, u64)) -> Result<()> {
    let now = std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    if now != Some(checked) {
        return Err(denied(format!(
            "refusing to send maps to {}: the socket file changed while connecting",
            path.display()
        )));
    }
    Ok(())
}

/// The peer's uid from SO_PEERCRED, when the kernel gives one, must be
/// trusted too.
pub(crate) fn check_peer_uid(path: &Path, peer: Option<u32>, trusted: Trusted<'_>) -> Result<()> {
    match peer {
        Some(uid) if !trusted.has(uid) => Err(denied(format!(
            "refusing to send maps to {}: the receiving process runs as uid {}; add 'allow-uid {uid}' to trust it",
            path.display(),
            uid
        ))),
        _ => Ok(()),
    }
}

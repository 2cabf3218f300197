//! Entering a network namespace (`-n NETNS`: a name under /var/run/netns,
//! or the path of a namespace file such as `/proc/PID/ns/net`) by switching only the
//! network namespace, as `setns(CLONE_NEWNET)` does. Unlike `ip netns exec`
//! this keeps the mount namespace, so pins under /sys/fs/bpf stay visible.

use crate::sys::Error;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_RUN_DIR: &str = "/var/run/netns";

/// The path of the named namespace `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_RUN_DIR).join(name)
}

/// Moves the calling thread (and so a single-threaded process) into the
/// network namespace `name` names: a word is a name of `ip netns` (under
/// [`NETNS_RUN_DIR`]); a word holding a `/` is the path of a namespace
/// file (`/proc/PID/ns/net`, `/run/netns/NAME`, a bind mount of one).
pub fn enter(name: &str) -> Result<(), Error> {
    if name.contains('/') {
        let file = File::open(name).map_err(|e| Error::new("open netns", e).on(name))?;
        return crate::sys::net::enter_net_namespace(file.as_fd()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                // setns refuses any file that is not a network namespace.
                Error::new(
                    "setns",
                    io::Error::new(io::ErrorKind::InvalidInput, "not a network namespace"),
                )
                .on(name)
            } else {
                Error::new("setns", e).on(name)
            }
        });
    }
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::new(
            "setns",
            io::Error::new(io::ErrorKind::InvalidInput, "not a namespace name"),
        )
        .on(format!("'{name}'")));
    }
    let p = path(name);
    let file =
        File::open(&p).map_err(|e| Error::new("open netns", e).on(p.display().to_string()))?;
    crate::sys::net::enter_net_namespace(file.as_fd())
        .map_err(|e| Error::new("setns", e).on(p.display().to_string()))
}

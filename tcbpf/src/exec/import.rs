//! Import and exec: hand received maps to a command that replaces this
//! process, with exactly the maps added to the descriptors it inherits.
//!
//! Everything tcbpf opens is close-on-exec; this is the one place that clears
//! `FD_CLOEXEC`, and only on the map descriptors being handed over.

use super::env::{is_import_var, map_environment, MapVar};
use crate::scm::Received;
use crate::sys;
use crate::sys::set_close_on_exec;
use std::ffi::CString;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The command `exec bpf import` runs when none is given.
pub const DEFAULT_COMMAND: &str = "/bin/sh";

/// The environment variables for `received` (see [`map_environment`]).
pub fn environment_for(received: &Received) -> Vec<(String, String)> {
    let vars: Vec<MapVar> = received
        .maps
        .iter()
        .map(|m| MapVar {
            id: m.desc.id,
            name: m.info.name.clone(),
            fd: m.fd.as_raw_fd(),
        })
        .collect();
    map_environment(&vars)
}

/// Replaces this process with `argv` (PATH search as execvp), the map
/// descriptors of `received` inherited and described in the environment.
/// Inherited `BPF_NUM_MAPS`/`BPF_MAP*` variables are replaced. Returns only
/// on failure, after closing the maps.
pub fn exec_with_maps(received: Received, argv: &[OsString]) -> io::Error {
    let argv: Vec<CString> = match argv.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => return io::Error::new(io::ErrorKind::InvalidInput, "command holds a NUL byte"),
    };
    if argv.is_empty() {
        return io::Error::new(io::ErrorKind::InvalidInput, "no command to run");
    }
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !k.to_str().is_some_and(is_import_var))
        .filter_map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    envp.extend(environment_for(&received).into_iter().filter_map(|(k, v)| {
        let mut kv = k.into_bytes();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        CString::new(kv).ok()
    }));
    if !received.inheritable {
        for m in &received.maps {
            if let Err(e) = set_close_on_exec(&m.fd, false) {
                return e;
            }
        }
    }
    let err = sys::process::execvpe(&argv, &envp);
    drop(received);
    err
}

//! The agent API: what a Rust program needs to use maps handed over by the
//! exec proxy, without the CLI. Take them from the environment (started by
//! `exec bpf import … run AGENT`), receive them on a socket path itself,
//! get them from a keeper ([`from_keeper`]), or send maps it holds to an
//! importer.

use super::env::{self, EnvError, InheritedMap};
use crate::scm::{self, ObjectId, ReceiveOptions, Received};
use crate::sys::info::map_info;
use crate::sys::MapFd;
use std::os::fd::AsFd;
use std::path::Path;

/// The maps in this process's environment (`BPF_NUM_MAPS`, `BPF_MAP*`),
/// each checked to be a bpf map (like `sd_listen_fds`); the inherited
/// descriptors stay as they are, the returned ones are close-on-exec
/// duplicates.
pub fn from_env() -> Result<Vec<InheritedMap>, EnvError> {
    env::from_env()
}

/// Binds `path` (mode 0600), receives one transfer (credentials checked:
/// root or this uid, plus `opts.allowed_uids`) and unlinks the path.
pub fn receive(path: &Path, opts: &ReceiveOptions) -> scm::Result<Received> {
    scm::receive_maps(path, opts)
}

/// Sends `maps` to the importer bound at `path`, as object `object_name`,
/// describing each from the kernel's info and numbering them 0, 1, 2… in
/// order.
pub fn send(path: &Path, object_name: &str, maps: &[&MapFd]) -> scm::Result<()> {
    let infos = maps.iter().map(map_info).collect::<Result<Vec<_>, _>>()?;
    let descs = scm::describe_maps(&infos, &vec![None; maps.len()]);
    let described: Vec<_> = descs
        .into_iter()
        .zip(maps.iter().map(|m| m.as_fd()))
        .collect();
    let object: ObjectId = scm::object_id_for(object_name);
    scm::send_maps(path, &object, &described)
}

/// Gets maps from the keeper at `sock`: the set `set` (empty: the only
/// set this process may get, or the one holding `maps[0]`), only `maps`
/// when given, read-only when `read_only` (or when the keeper's policy
/// allows no more). Every descriptor is checked as an import checks it.
pub fn from_keeper(
    sock: &Path,
    set: &str,
    maps: &[String],
    read_only: bool,
) -> crate::keeper::Result<crate::keeper::Got> {
    let access = if read_only {
        crate::keeper::Access::ReadOnly
    } else {
        crate::keeper::Access::Best
    };
    crate::keeper::client::get(sock, set, maps, access, false)
}

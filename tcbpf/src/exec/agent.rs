//! The agent API: what a Rust program needs to use maps handed over by the
//! exec proxy, without the CLI. Take them from the environment (started by
//! `exec bpf import … run AGENT`), receive them on a socket path itself,
//! get them from a keeper ([`from_keeper`]), or send maps it holds to an
//! importer.
//!
//! # Receive maps on a socket
//!
//! An agent that binds its own socket: another process (here a thread of
//! this one) runs `tcbpf map export MAP… uds PATH`, or
//! [`send`], or `tc filter add … export PATH`. Without root the example
//! skips itself.
//!
//! ```
//! # tcbpf_testkit::require_root!(Ok(()));
//! # let dir = tcbpf_testkit::TempDir::new("doc_receive");
//! # let path = dir.join("agent.sock");
//! # let counters = tcbpf_testkit::hash_map("doc_rx", 4, 8, 16);
//! use std::time::Duration;
//! use tcbpf::exec::agent;
//! use tcbpf::scm::ReceiveOptions;
//!
//! # std::thread::scope(|s| {
//! # s.spawn(|| {
//! #     assert!(tcbpf_testkit::wait_for(&path, Duration::from_secs(10)));
//! #     agent::send(&path, "counters.o", &[&counters]).unwrap();
//! # });
//! let opts = ReceiveOptions {
//!     timeout: Some(Duration::from_secs(10)),
//!     ..ReceiveOptions::default()
//! };
//! let got = agent::receive(&path, &opts)?;
//! assert_eq!(got.object.name, "counters.o");
//! for m in &got.maps {
//!     println!("map {} id {}: {} entries", m.info.name, m.desc.id, m.info.max_entries);
//! }
//! # assert_eq!(got.maps.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Take maps from the environment
//!
//! Started by `tcbpf exec bpf import UDS run AGENT`, an agent finds its
//! maps in `BPF_NUM_MAPS`, `BPF_MAP<id>` and `BPF_MAP_<NAME>`. The hidden
//! lines set that environment up as the exec proxy would.
//!
//! ```
//! # tcbpf_testkit::require_root!(Ok(()));
//! # use std::os::fd::AsRawFd;
//! # let counters = tcbpf_testkit::hash_map("doc_env", 4, 8, 16);
//! # std::env::set_var("BPF_NUM_MAPS", "1");
//! # std::env::set_var("BPF_MAP0", counters.as_raw_fd().to_string());
//! # std::env::set_var("BPF_MAP_DOC_ENV", counters.as_raw_fd().to_string());
//! use tcbpf::exec::agent;
//!
//! let maps = agent::from_env()?;
//! let counters = maps
//!     .iter()
//!     .find(|m| m.name == "doc_env")
//!     .expect("BPF_MAP_DOC_ENV");
//! assert_eq!(counters.id, Some(0));
//! assert_eq!(counters.info.key_size, 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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

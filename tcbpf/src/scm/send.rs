//! The exporter's side: connect to an importer's socket and send maps in
//! chunks of 64, each datagram with its descriptors in one SCM_RIGHTS.
//!
//! This is what `filter add … export UDS` and `map export` call. It sends
//! what it is given; describing maps (`MapDesc::from_info`) and numbering
//! them (`assign_ids`) are helpers for callers that have no object file.

use super::error::{Error, Result};
use super::socket;
use super::trust;
use super::wire::{self, EntrySize, MapDesc, ObjectId};
use crate::sys::info::MapInfo;
use crate::sys::unix;
use crate::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A socket connected to an importer.
#[derive(Debug)]
pub struct Sender {
    sock: OwnedFd,
    path: PathBuf,
    entry_size: EntrySize,
}

/// How to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Receivers trusted besides root and this process's own uid: the owner
    /// of the socket file must be one of them (`allow-uid`).
    pub allowed_uids: Vec<u32>,
    /// The `struct bpf_elf_map` generation to send (default 36 bytes, as
    /// tc today; `entry-size` for importers built against older headers).
    pub entry_size: EntrySize,
}

impl Sender {
    /// Connects to the importer bound at `path`, trusting root and this
    /// process's uid only (see [`Sender::connect_with`]).
    pub fn connect(path: &Path) -> Result<Sender> {
        Self::connect_with(path, &SendOptions::default())
    }

    /// Connects to the importer bound at `path` after checking who would
    /// receive: the path must be a socket owned by root, this process's
    /// uid or one of `opts.allowed_uids`, in a directory only trusted users
    /// can change (no group/other write without the sticky bit), and still
    /// the same file after connecting. Fails with
    /// [`ErrorKind::NotListening`] when nobody is bound there,
    /// [`ErrorKind::Permission`] for an untrusted receiver or directory,
    /// [`ErrorKind::BadInput`] when the path is not a socket.
    pub fn connect_with(path: &Path, opts: &SendOptions) -> Result<Sender> {
        socket::check_path(path)?;
        let trusted = trust::Trusted {
            own: unix::own_uids(),
            allowed: &opts.allowed_uids,
        };
        let checked = trust::check_receiver(path, trusted)?;
        let sock = socket::dgram_socket()?;
        socket::connect(sock.as_fd(), path)?;
        trust::same_socket(path, checked)?;
        trust::check_peer_uid(path, unix::peer_uid(sock.as_fd()), trusted)?;
        Ok(Sender {
            sock,
            path: path.to_path_buf(),
            entry_size: opts.entry_size,
        })
    }

    /// Sends every map: `maps.len()` in total, 64 per datagram, each
    /// datagram's descriptors in the same order as its entries.
    pub fn send_maps(&self, object: &ObjectId, maps: &[(MapDesc, BorrowedFd<'_>)]) -> Result<()> {
        let total = u16::try_from(maps.len()).map_err(|_| {
            Error::bad(format!(
                "{} maps do not fit the transfer's 16-bit count (65535 at most)",
                maps.len()
            ))
        })?;
        if maps.is_empty() {
            return Err(Error::bad("no maps to send"));
        }
        for range in wire::chunk_ranges(maps.len()) {
            let chunk = &maps[range.clone()];
            let descs: Vec<MapDesc> = chunk.iter().map(|(d, _)| *d).collect();
            let fds: Vec<BorrowedFd<'_>> = chunk.iter().map(|(_, f)| *f).collect();
            let bytes = wire::encode_chunk_sized(object, total, &descs, self.entry_size);
            self.send_raw(&bytes, &fds).map_err(|mut e| {
                if range.start > 0 {
                    e.message = format!(
                        "{} (the importer stopped after {} of {} maps; iproute2's importer takes at most {})",
                        e.message,
                        range.start,
                        maps.len(),
                        wire::MAX_MAPS_PER_DATAGRAM
                    );
                }
                e
            })?;
        }
        Ok(())
    }

    /// Sends one datagram as given: `bytes` of payload and `fds` in one
    /// SCM_RIGHTS (none when empty). For tools and tests that speak the
    /// protocol by hand; [`Sender::send_maps`] is the normal way.
    pub fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        unix::send_datagram(self.sock.as_fd(), bytes, fds).map_err(|e| {
            let mut err = Error::os("sendmsg", self.path.display().to_string(), e);
            if err.errno == Some(libc::ECONNREFUSED) {
                err.kind = ErrorKind::NotListening;
            }
            err
        })
    }
}

/// Connects to the importer at `uds` and sends `maps` as one transfer from
/// `object`. This is the whole exporter: `tcbpf filter add … export UDS`
/// calls it with the loaded object's maps, `tcbpf map export` with maps
/// described from the kernel.
///
/// Before sending it checks who receives (see [`Sender::connect_with`]):
/// only a socket of root or of this process's uid, in a directory no other
/// user can rewrite.
///
/// Errors: [`ErrorKind::NotListening`] when no importer is bound at `uds`
/// ("nobody is listening on …"), [`ErrorKind::Permission`] for a receiver
/// that is not trusted, [`ErrorKind::BadInput`] for a bad path, a path that
/// is not a socket or more than 65535 maps, otherwise the failing system
/// call and errno.
pub fn send_maps(uds: &Path, object: &ObjectId, maps: &[(MapDesc, BorrowedFd<'_>)]) -> Result<()> {
    send_maps_with(uds, object, maps, &SendOptions::default())
}

/// [`send_maps`] trusting the receivers `opts` names too (see
/// [`Sender::connect_with`] for the checks made before sending).
pub fn send_maps_with(
    uds: &Path,
    object: &ObjectId,
    maps: &[(MapDesc, BorrowedFd<'_>)],
    opts: &SendOptions,
) -> Result<()> {
    Sender::connect_with(uds, opts)?.send_maps(object, maps)
}

impl MapDesc {
    /// Describes a live map from the kernel's own info, under `id` (the
    /// number the importer puts in `BPF_MAP<id>`). Pinning and map-in-map
    /// fields are zero: the map already exists.
    pub fn from_info(info: &MapInfo, id: u32) -> MapDesc {
        MapDesc {
            map_type: info.map_type,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
            id,
            pinning: 0,
            inner_id: 0,
            inner_idx: 0,
        }
    }
}

/// Describes and numbers maps that exist without an object file (`map
/// export`, agents): each from the kernel's info, a map with a wanted id
/// keeping it and the others taking the lowest unused ids in order (see
/// [`assign_ids`]). `infos` and `wanted` are in the same order.
pub fn describe_maps(infos: &[MapInfo], wanted: &[Option<u32>]) -> Vec<MapDesc> {
    let ids = assign_ids(wanted);
    infos
        .iter()
        .zip(ids)
        .map(|(info, id)| MapDesc::from_info(info, id))
        .collect()
}

/// Numbers maps for export: a map with a wanted id keeps it; the others take
/// the lowest ids not used by any map, in order. Duplicate wanted ids are
/// kept as given (the caller decides whether that is an error).
pub fn assign_ids(wanted: &[Option<u32>]) -> Vec<u32> {
    let taken: std::collections::BTreeSet<u32> = wanted.iter().flatten().copied().collect();
    let mut next = 0u32;
    wanted
        .iter()
        .map(|w| match w {
            Some(id) => *id,
            None => {
                while taken.contains(&next) {
                    next += 1;
                }
                next += 1;
                next - 1
            }
        })
        .collect()
}

/// The object identity for maps exported without an object file: `name`,
/// with the dev/inode of the file of that name when one exists, else zero.
pub fn object_id_for(name: &str) -> ObjectId {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(name) {
        Ok(m) if m.is_file() => ObjectId {
            name: name.to_string(),
            dev: m.dev(),
            ino: m.ino(),
        },
        _ => ObjectId {
            name: name.to_string(),
            dev: 0,
            ino: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unassigned_maps_take_lowest_unused_ids_in_order() {
        assert_eq!(assign_ids(&[None, None, None]), vec![0, 1, 2]);
        assert_eq!(
            assign_ids(&[None, Some(0), None, Some(2)]),
            vec![1, 0, 3, 2]
        );
        assert_eq!(assign_ids(&[Some(5), None]), vec![5, 0]);
        assert_eq!(assign_ids(&[]), Vec::<u32>::new());
    }

    #[test]
    fn from_info_copies_the_kernel_shape() {
        let info = MapInfo {
            map_type: 1,
            id: 99,
            key_size: 4,
            value_size: 16,
            max_entries: 10,
            map_flags: 1,
            name: "m".into(),
            btf_id: 0,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            map_extra: 0,
        };
        let d = MapDesc::from_info(&info, 7);
        assert_eq!(
            (
                d.map_type,
                d.key_size,
                d.value_size,
                d.max_entries,
                d.flags,
                d.id
            ),
            (1, 4, 16, 10, 1, 7)
        );
    }

    #[test]
    fn connecting_to_a_missing_socket_says_nobody_listens() {
        let path = std::env::temp_dir().join(format!("tcbpf-nobody-{}", std::process::id()));
        let err = Sender::connect(&path).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotListening);
        assert!(
            err.message.contains("nobody is listening"),
            "{}",
            err.message
        );
    }
}

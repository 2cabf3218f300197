//! The exporter's side: connect to an importer's socket and send maps in
//! chunks of 64, each datagram with its descriptors in one SCM_RIGHTS.
//!
//! This is what `filter add … export UDS` and `map export` call. It sends
//! what it is given; describing maps (`MapDesc::from_info`) and numbering
//! them (`assign_ids`) are helpers for callers that have no object file.

use super::error::{Error, ErrorKind, Result};
use super::socket;
use super::wire::{self, EntrySize, MapDesc, ObjectId};
use crate::sys::info::MapInfo;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A socket connected to an importer.
#[derive(Debug)]
pub struct Sender {
    sock: OwnedFd,
    path: PathBuf,
    entry_size: EntrySize,
}

impl Sender {
    /// Connects to the importer bound at `path`. Fails with
    /// [`ErrorKind::NotListening`] when nobody is bound there.
    pub fn connect(path: &Path) -> Result<Sender> {
        let sock = socket::dgram_socket()?;
        socket::connect(sock.as_fd(), path)?;
        Ok(Sender {
            sock,
            path: path.to_path_buf(),
            entry_size: EntrySize::default(),
        })
    }

    /// Sends `struct bpf_elf_map` entries of this generation (default 36
    /// bytes, as tc today), for importers built against older iproute2
    /// headers; the fields the generation lacks are not sent.
    pub fn with_entry_size(mut self, size: EntrySize) -> Sender {
        self.entry_size = size;
        self
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
        socket::send_datagram(self.sock.as_fd(), bytes, fds).map_err(|e| {
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
/// Errors: [`ErrorKind::NotListening`] when no importer is bound at `uds`
/// ("nobody is listening on …"), [`ErrorKind::BadInput`] for a bad path or
/// more than 65535 maps, otherwise the failing system call and errno.
pub fn send_maps(uds: &Path, object: &ObjectId, maps: &[(MapDesc, BorrowedFd<'_>)]) -> Result<()> {
    Sender::connect(uds)?.send_maps(object, maps)
}

/// [`send_maps`] with entries of the given generation (`entry-size` on the
/// command line), for importers built against older iproute2 headers.
pub fn send_maps_sized(
    uds: &Path,
    object: &ObjectId,
    maps: &[(MapDesc, BorrowedFd<'_>)],
    size: EntrySize,
) -> Result<()> {
    Sender::connect(uds)?
        .with_entry_size(size)
        .send_maps(object, maps)
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

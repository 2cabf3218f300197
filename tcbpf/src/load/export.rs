//! Handing a loaded object's maps to an importer as tc does (`filter add …
//! export UDS`): each map described by its spec as iproute2's `struct
//! bpf_elf_map`, numbered with the ids the loader assigned, under the
//! object's file name and dev/inode.
//!
//! The wire format and the checks on who receives are `scm`'s; this file
//! only says what a `LoadedObject` looks like on the wire.

use super::LoadedObject;
use crate::scm::{self, MapDesc, ObjectId, SendOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

impl LoadedObject {
    /// The object as the importer sees it: the file name as given (tc's
    /// `bpf_obj`) and the file's dev/inode.
    pub fn object_id(&self) -> ObjectId {
        ObjectId {
            name: self.path.display().to_string(),
            dev: self.dev,
            ino: self.ino,
        }
    }

    /// Every map (legacy, BTF-defined and global data) in object order,
    /// described from its spec, beside its descriptor.
    pub fn map_descs(&self) -> Vec<(MapDesc, BorrowedFd<'_>)> {
        self.maps
            .iter()
            .map(|m| {
                let spec = &m.spec;
                let desc = MapDesc {
                    map_type: spec.map_type as u32,
                    key_size: spec.key_size,
                    value_size: spec.value_size,
                    max_entries: spec.max_entries,
                    flags: spec.flags,
                    id: spec.id,
                    pinning: spec.pinning.raw(),
                    inner_id: spec.inner_id,
                    inner_idx: spec.inner_idx,
                };
                (desc, m.fd.as_fd())
            })
            .collect()
    }

    /// Sends every map to the importer bound at `uds`, after `scm`'s checks
    /// on who receives (see [`scm::Sender::connect_with`]).
    pub fn export(&self, uds: &Path, opts: &SendOptions) -> scm::Result<()> {
        scm::send_maps_with(uds, &self.object_id(), &self.map_descs(), opts)
    }
}

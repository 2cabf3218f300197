//! The iproute2 map hand-off: the `struct bpf_map_aux` wire format (pure
//! codec in [`wire`]) and sending/receiving it with SCM_RIGHTS over AF_UNIX
//! datagrams.
//!
//! The importer binds a path ([`Receiver::bind`], mode 0600, SO_PASSCRED),
//! the exporter checks who owns the socket and its directory, connects and
//! sends ([`send_maps`]), the importer receives
//! every map with each sender's credentials checked and each descriptor
//! checked against its entry ([`Receiver::receive`]), then unlinks the path.
//! This module does not build environments or exec anything (that is
//! `exec`), and it never prints: dropped datagrams are reported to a
//! callback.

mod error;
mod receive;
mod send;
pub(crate) mod socket;
mod trust;
mod warn;
pub mod wire;

pub use crate::sys::unix::{Credentials, MAX_PATH_LEN};
pub use error::{Error, Result};
pub(crate) use receive::MapCheck;
pub use receive::{
    receive_maps, Dropped, ReceiveOptions, Received, ReceivedMap, Receiver, DEFAULT_MODE,
};
pub use send::{
    assign_ids, describe_maps, object_id_for, send_maps, send_maps_with, SendOptions, Sender,
};
pub use warn::{DropWarnings, FULL_WARNINGS, SUMMARY_INTERVAL};
pub use wire::{EntrySize, MapDesc, ObjectId};

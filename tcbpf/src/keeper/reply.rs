//! A reply on its way to one client: what the server queues per
//! connection until the client's socket has room, and the sending of one
//! message of it. A `get` reply is sent one chunk of up to 64 maps at a
//! time, its read-only descriptors opened for that chunk only, so a client
//! that does not read holds no descriptor of the keeper's.
//!
//! No polling and no waiting here: a full socket is `WouldBlock`, and the
//! server decides when to try again.

use super::proto::{self, Status};
use super::store::Set;
use crate::scm::wire;
use crate::sys::unix;
use crate::sys::{self, MapFd};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// A reply message (or a run of them) waiting for room in a client's
/// socket.
pub(crate) enum Outgoing {
    /// One encoded message without descriptors.
    Message(Vec<u8>),
    /// The maps of a `get`, one chunk of up to 64 at a time; the set is
    /// shared, so a replaced set's maps stay open until the reply is out.
    /// Read-only descriptors are opened for each chunk as it is sent.
    Maps {
        set: Arc<Set>,
        picked: Vec<usize>,
        read_only: bool,
        chunk: usize,
    },
}

impl Outgoing {
    /// Sends the next message of this reply on `sock` (non-blocking):
    /// Ok(true) when the reply is out whole, Ok(false) when more follows,
    /// `WouldBlock` when the socket is full.
    pub(crate) fn send(&mut self, sock: BorrowedFd<'_>) -> std::io::Result<bool> {
        match self {
            Outgoing::Message(msg) => unix::send_datagram(sock, msg, &[]).map(|()| true),
            Outgoing::Maps {
                set,
                picked,
                read_only,
                chunk,
            } => send_chunk(sock, set, picked, *read_only, chunk),
        }
    }
}

/// Sends chunk `*chunk` of a `get` reply (up to 64 maps with their
/// descriptors, read-only ones opened from the map id for this send);
/// advances `*chunk`. Ok(true) once the last chunk is out.
fn send_chunk(
    sock: BorrowedFd<'_>,
    set: &Set,
    picked: &[usize],
    read_only: bool,
    chunk: &mut usize,
) -> std::io::Result<bool> {
    let Some(range) = wire::chunk_ranges(picked.len()).nth(*chunk) else {
        return Ok(true);
    };
    let maps = &picked[range];
    let descs: Vec<wire::MapDesc> = maps.iter().map(|&p| set.maps[p].desc).collect();
    let body = wire::encode_chunk(&set.object, picked.len() as u16, &descs);
    let flags = if read_only { proto::FLAG_READ_ONLY } else { 0 };
    let msg = proto::encode_reply(Status::Ok, flags, &body);
    // Read-only descriptors are new ones the kernel opens from the map id
    // with BPF_F_RDONLY: the holder can read, the kernel refuses its
    // writes. They close once sent.
    let mut ro: Vec<MapFd> = Vec::new();
    if read_only {
        for &p in maps {
            let fd =
                sys::obj::map_by_id(set.maps[p].info.id, sys::obj::open::RDONLY).map_err(|e| {
                    std::io::Error::other(format!("cannot open a read-only descriptor: {e}"))
                })?;
            ro.push(fd);
        }
    }
    let fds: Vec<BorrowedFd<'_>> = if read_only {
        ro.iter().map(|f| f.as_fd()).collect()
    } else {
        maps.iter().map(|&p| set.maps[p].fd.as_fd()).collect()
    };
    unix::send_datagram(sock, &msg, &fds)?;
    *chunk += 1;
    Ok(wire::chunk_ranges(picked.len()).nth(*chunk).is_none())
}

//! The keeper: a long-lived owner of exported maps that any process on the
//! host may get, with authorisation, long after the exporter exited.
//!
//! Maps come in on an import socket in iproute2's hand-off format (any
//! number of transfers over the keeper's life, checked by
//! [`crate::scm::Receiver`] exactly as `exec bpf import` checks them); each
//! becomes a **set** named by its object file's name ([`store`]). Clients
//! ask on a `SOCK_SEQPACKET` socket ([`server`], [`client`]); the
//! [`policy`] decides by the peer's SO_PEERCRED; read-only descriptors are
//! opened from the kernel map id with `BPF_F_RDONLY`.
//!
//! # The protocol (SOCK_SEQPACKET, one request → one or more replies)
//!
//! Every message is one SEQPACKET record; numbers are single bytes, names
//! NUL-terminated UTF-8 (no tab or newline, 255 bytes at most).
//!
//! Request, 4096 bytes at most:
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | `"TCBK"` |
//! | 4 | version (1) |
//! | 5 | op: 1 list, 2 get, 3 status |
//! | 6 | access: 0 as much as allowed, 1 read-only (get only) |
//! | 7 | `n`: map names that follow (64 at most; get only) |
//! | 8 | set name (may be empty), then `n` map names |
//!
//! Reply: `"TCBK"`, version, status (0 ok, 1 not found, 2 bad request,
//! 3 denied, 4 failure), flags (1 read-only, 2 more follows), a zero byte,
//! then the body:
//!
//! - a refusal: the reason, as text;
//! - `get`: one iproute2 `struct bpf_map_aux` chunk (see
//!   [`crate::scm::wire`]: object name, dev, ino, `num_ent`, up to 64
//!   entries) with its descriptors in one SCM_RIGHTS, repeated until
//!   `num_ent` maps were sent;
//! - `list`/`status`: tab-separated lines ([`proto::encode_listing`]) in
//!   chunks of at most 16 KiB ([`listing`]), flag "more" on all but the last.
//!
//! A malformed or oversized request, or one carrying descriptors (they are
//! closed unread), is answered with the reason and the connection closed.
//! Requests a policy refuses are answered and the connection stays.
//!
//! # Lifetime
//!
//! Without a state directory the maps live as long as the keeper: when it
//! exits, its descriptors close, and program arrays nobody else holds are
//! emptied by the kernel. With one, every set is pinned there and picked up
//! at the next start, if the directory and the set pass the checks of
//! [`store`] (the keeper's own directory, entries it made, maps matching
//! the record it wrote).
//!
//! # Limits
//!
//! Who may hold how many connections is [`admission`]'s decision (root and
//! the policy's `rw` users are never shut out); a refused connection is
//! answered "busy: REASON" (status failure) and closed. Log lines are
//! rate-limited by kind ([`ratelog`]).
//!
//! This module hands out descriptors and never execs anything (that is
//! [`crate::exec`], which uses [`client::get`] for
//! `exec bpf import keeper …`).

pub mod admission;
pub mod client;
pub mod listing;
pub mod policy;
pub mod proto;
pub mod ratelog;
mod reply;
pub mod server;
pub mod store;
pub mod systemd;

pub use client::{Client, Got};
pub use policy::{Grant, Peer, Policy};
pub use proto::{Access, Listing};
pub use server::{run, Config, Keeper};

use crate::ErrorKind;
use std::fmt;

/// A failed keeper operation.
#[derive(Debug)]
pub struct Error {
    /// The class (NotFound, BadInput, Permission, NotListening, TimedOut
    /// or System).
    pub kind: ErrorKind,
    /// One line naming what went wrong.
    pub message: String,
    /// The failed hand-off or system call behind it, when there was one.
    cause: Option<crate::scm::Error>,
}

/// Result of a keeper operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A failed system call `op` on `object`.
    pub fn os(op: &'static str, object: impl Into<String>, e: std::io::Error) -> Error {
        crate::scm::Error::os(op, object, e).into()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|e| e as _)
    }
}

impl From<crate::scm::Error> for Error {
    fn from(e: crate::scm::Error) -> Error {
        // A keeper call is not interrupted by a signal; treat it as a
        // system failure, as before the kinds were one enum.
        let kind = match e.kind {
            ErrorKind::Interrupted => ErrorKind::System,
            k => k,
        };
        Error {
            kind,
            message: e.message.clone(),
            cause: Some(e),
        }
    }
}

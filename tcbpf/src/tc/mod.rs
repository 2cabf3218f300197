//! rtnetlink plumbing: the socket, tc messages and their dump parsing, the
//! clsact qdisc, act_bpf actions, devices, handles, protocols, bpffs paths,
//! classic BPF bytecode. The attach kinds built on it (cls_bpf, tcx, XDP)
//! are [`crate::attach`]'s.
//!
//! Every function works in the calling thread's network namespace ([`netns`]
//! switches it) and takes programs as descriptors: loading objects is the
//! `load` layer's job, printing is the CLI's. Errors carry the kernel's
//! extended-ack message when it gave one.

pub mod action;
pub mod bpffs;
pub mod classic;
pub mod device;
pub(crate) mod error;
pub mod handle;
pub mod message;
pub mod netns;
pub mod protocol;
pub mod qdisc;
pub mod socket;

pub use error::{Error, Result};
pub use handle::TcHandle;
pub use protocol::Protocol;
pub use socket::Socket;

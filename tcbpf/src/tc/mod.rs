//! Attaching programs to tc: rtnetlink for the clsact qdisc, cls_bpf filters
//! and act_bpf actions, tcx links, and XDP (netlink or bpf links).
//!
//! Every function works in the calling thread's network namespace ([`netns`]
//! switches it) and takes programs as descriptors: loading objects is the
//! `load` layer's job, printing is the CLI's. Errors carry the kernel's
//! extended-ack message when it gave one.

pub mod action;
pub mod attach;
pub mod bpffs;
pub mod chain;
pub mod classic;
pub mod device;
pub mod discover;
mod error;
pub mod filter;
pub mod handle;
pub mod message;
pub mod netns;
pub mod protocol;
pub mod qdisc;
pub mod socket;
pub mod tcx;
pub mod xdp;

pub use error::{Error, Result};
pub use filter::{FilterSelector, FilterSpec};
pub use handle::TcHandle;
pub use protocol::Protocol;
pub use socket::Socket;

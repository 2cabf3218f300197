//! The exec proxy: import maps from a socket, describe them in the
//! environment (`BPF_NUM_MAPS`, `BPF_MAP<id>`, `BPF_MAP_<NAME>`) and `execvp`
//! a command; the agent API that reads them back; and the kernel trace pipe
//! (`exec bpf debug`).
//!
//! The only place that clears `FD_CLOEXEC`, and only on map descriptors it
//! hands over. It does not speak the wire format itself (that is `scm`).

pub mod agent;
pub mod env;
mod import;
pub mod trace;

pub use import::{environment_for, exec_with_maps, DEFAULT_COMMAND};

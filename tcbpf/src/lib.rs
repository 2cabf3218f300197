//! tcbpf: tc's eBPF front-end and its exec proxy, as a library.
//!
//! The spine follows the flow of an object: [`elf`] parses an ELF file into
//! plain data (`ObjectSpec`), [`load`] turns that into kernel objects
//! (`LoadedObject`), [`tc`] attaches programs, [`scm`] and [`exec`] hand maps to
//! other processes over a Unix socket, and [`value`] gives shell scripts typed
//! keys and values ([`maps`] reads a map's own types and diff-applies
//! entries; [`atomic`] adds to a map value in the kernel); [`events`] reads
//! the ring buffers and perf event arrays programs write events to. [`sys`] holds the bpf(2) system call and the typed
//! descriptors, the AF_UNIX datagram calls with SCM_RIGHTS the hand-off
//! uses, and the signalfd stop; it is the only layer with `unsafe`. [`abi`]
//! holds the kernel's numbers as types. Parsing layers ([`btf`], [`elf`], [`value`]) make no syscalls.
//!
//! Every error type has `kind()` (one [`ErrorKind`] for the whole crate) and
//! keeps its cause behind `source()`.
//!
//! This crate has no command-line dependencies: agents link it directly.

/// Checks at compile time that a `#[repr(C)]` kernel struct has the UAPI
/// size and field offsets: `abi_layout!(T, N; field @ offset, …)`. The
/// figures come from `offsetof` over the installed 6.1 UAPI headers
/// (`linux/bpf.h`, `linux/perf_event.h`); fields newer than 6.1 (marked
/// "by hand") follow the kernel's layout of that field.
macro_rules! abi_layout {
    ($t:ty, $size:expr; $($field:ident @ $off:expr),* $(,)?) => {
        const _: () = {
            assert!(::core::mem::size_of::<$t>() == $size);
            $(assert!(::core::mem::offset_of!($t, $field) == $off);)*
        };
    };
}

pub mod abi;
pub mod atomic;
pub mod btf;
pub mod elf;
mod error;
pub mod events;
pub mod exec;
pub mod keeper;
pub mod load;
pub mod maps;
pub mod scm;
pub mod sys;
pub mod tc;
pub mod value;

pub use error::ErrorKind;

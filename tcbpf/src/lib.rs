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
//!
//! # Load and attach
//!
//! What `tc filter add dev v0 ingress pref 1 handle 1 bpf da obj legacy.o`
//! does: load the object's `classifier` section with its maps, then attach
//! it as a direct-action cls_bpf filter with [`attach::attach`] (the
//! clsact qdisc is added when missing; `Hook::Tcx` makes a tcx link
//! instead).
//! The hidden lines give the example a private bpffs and a veth pair in a
//! network namespace of its own; without root it skips itself.
//!
//! ```
//! # tcbpf_testkit::require_root!(Ok(()));
//! # let fs = tcbpf_testkit::Bpffs::new();
//! # let ns = tcbpf_testkit::Netns::new();
//! # ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
//! # let file = tcbpf_testkit::fixture("legacy.o");
//! # ns.run(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::os::fd::AsFd;
//! use tcbpf::load::{load_file, LoadOptions};
//! use tcbpf::attach::{attach, AttachTarget, Attachment, Hook};
//! use tcbpf::tc::{device, Socket, TcHandle};
//!
//! let opts = LoadOptions {
//!     bpffs: fs.path.clone(), // pins go under <bpffs>/tc/globals, as tc's do
//!     ..LoadOptions::default()
//! };
//! # let opts = fs.options();
//! let obj = load_file(&file, &opts)?;
//!
//! let ifindex = device::ifindex(&Socket::open()?, "v0")?;
//! let target = AttachTarget {
//!     pref: 1,
//!     handle: 1,
//!     direct_action: true,
//!     ..AttachTarget::new(ifindex, Hook::Parent(TcHandle::INGRESS))
//! };
//! // Named as tc names it: "legacy.o:[classifier]".
//! let main = obj.main_program().fd.as_fd();
//! let attached = attach(&target, main.into(), &obj.filter_name())?;
//! assert!(matches!(attached, Attachment::Filter { created_clsact: true }));
//! # let sock = Socket::open()?;
//! # let sel = tcbpf::attach::cls_bpf::FilterSelector { ifindex, parent: TcHandle::INGRESS,
//! #     pref: 0, protocol: None, handle: 0, chain: None };
//! # let handles: Vec<u32> = tcbpf::attach::cls_bpf::list(&sock, &sel)?.iter().map(|f| f.handle).collect();
//! # assert!(handles.contains(&1), "{handles:?}");
//! # Ok(())
//! # }).map_err(|e| e as Box<dyn std::error::Error>)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The other entry points show their own examples: export a loaded
//! object's maps ([`load::LoadedObject::export`], in [`load`]), receive
//! them ([`exec::agent::receive`]) or take them from the environment the
//! exec proxy set ([`exec::agent::from_env`]), and read or write a map
//! through its own BTF types ([`maps`]).

// Every public item is documented; a new one without docs is a warning
// (an error under `clippy -D warnings`). The few `allow`s are on enums
// whose variants are the kernel's own names (map types, BTF kinds).
#![warn(missing_docs)]
// Every `unsafe` block is in `sys` (the one module allowed it, below) and
// says why it is sound in a `// SAFETY:` comment (clippy checks it).
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

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
pub mod attach;
pub mod btf;
pub mod elf;
mod error;
pub mod events;
pub mod exec;
pub mod front;
pub mod keeper;
pub mod load;
pub mod maps;
pub mod scm;
#[allow(unsafe_code)]
pub mod sys;
pub mod tc;
pub mod trace;
pub mod upgrade;
pub mod value;

pub use error::ErrorKind;

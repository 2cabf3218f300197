//! tcbpf: tc's eBPF front-end and its exec proxy, as a library.
//!
//! The spine follows the flow of an object: [`object`] parses an ELF file into
//! plain data (`ObjectSpec`), [`load`] turns that into kernel objects
//! (`LoadedObject`), [`tc`] attaches programs, [`scm`] and [`exec`] hand maps to
//! other processes over a Unix socket, and [`value`] gives shell scripts typed
//! keys and values ([`maps`] reads a map's own types and diff-applies
//! entries). [`sys`] holds the bpf(2) system call and the typed
//! descriptors; it is the only layer with `unsafe` (with the fd passing in
//! [`scm`]). Parsing layers ([`btf`], [`object`], [`value`]) make no syscalls.
//!
//! This crate has no command-line dependencies: agents link it directly.

pub mod btf;
pub mod exec;
pub mod load;
pub mod maps;
pub mod object;
pub mod scm;
pub mod sys;
pub mod tc;
pub mod value;

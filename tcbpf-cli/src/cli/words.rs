//! The word grammar shared by every command: tc-style keywords where any
//! unambiguous prefix works (`imp` for `import`), and typed arguments. It
//! lives in the library (`tcbpf::front::words`, shared with
//! `tcbpf-exporter` and `tcbpf-sync`); a failure there becomes a
//! `CliError` by `From` in `error.rs`.

pub use tcbpf::front::words::{choose, is_help, matches, parse_number, Words};
pub(crate) use tcbpf::keywords;

/// The words of `s`, split at white space (the unit tests' argument lists).
#[cfg(test)]
pub use tcbpf::front::words::split;

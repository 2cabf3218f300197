//! Exit codes, bounded input, exporters and importers under hostile input.
//! One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test harden harden_input::`).

#[path = "../e2e_support/mod.rs"]
mod e2e_support;
mod harden_exit_codes;
mod harden_export;
mod harden_import;
mod harden_input;

//! `tcbpf sync`'s words and its key-value commands against a real etcd
//! (plain, TLS with client certificates, users and passwords). One test
//! binary; each file is a module (`cargo test -p tcbpf-sync --test cli
//! kv_cli::`).

mod help_words;
mod json_schema;
mod kv_cli;
mod security;
#[path = "../support/mod.rs"]
mod support;

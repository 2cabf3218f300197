//! The grammar and what is made from it: help at every position, man pages
//! and completions, `obj show`, `-j` schemas, dispatch to the helper
//! binaries. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test cli help_words::`).

mod core_cli;
mod docs_paths;
mod exit_codes_every_binary;
mod exporter_dispatch;
mod gen_docs;
mod help_words;
mod json_schema;
mod obj_cli;
mod obj_externs_cli;
mod sync_dispatch;

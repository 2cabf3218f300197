//! `tcbpf map …` against real maps: typed input and output, batch, add,
//! lock, events, commit. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test map map_cli::`).

#[path = "../e2e_support/mod.rs"]
mod e2e_support;
mod map_add;
mod map_batch;
mod map_cli;
mod map_commit;
mod map_events;
mod map_load_json;
mod map_lock;
mod map_typed;
mod map_typed_anonymous;
mod map_typed_input;
mod typed_support;

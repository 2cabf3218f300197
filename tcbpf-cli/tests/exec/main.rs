//! `exec bpf …`: import, generations of the hand-off, graft, debug. One test
//! binary; each file is a module (`cargo test -p tcbpf-cli --test exec exec_import::`).
//! `exec_fd_hygiene` is a test binary of its own: it checks the exact
//! descriptors a child inherits from this process.

mod exec_debug;
mod exec_generations;
mod exec_import;
mod graft_cli;

//! `qdisc`, `filter` and `chain apply` against the real `tc` with real traffic,
//! tcx chains, rough edges. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test filter tc_words::`).

mod chain_apply_guard;
mod edges_cli;
mod filter_cli;
mod tc_words;
mod tcx_chain;

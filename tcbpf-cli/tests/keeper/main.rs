//! The keeper: end to end, policy, state directory, hostile users, socket
//! activation, soak. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test keeper keeper_policy::`).

#[path = "../e2e_support/mod.rs"]
mod e2e_support;
mod keeper_e2e;
mod keeper_harden;
mod keeper_policy;
mod keeper_service;
mod keeper_soak;
mod keeper_state;
#[path = "../keeper_support/mod.rs"]
mod keeper_support;
mod map_add_keeper;

//! The binary end to end on veth pairs with real traffic: export, errors,
//! replace, upgrade, XDP, the demo. One test binary; each file is a module
//! (`cargo test -p tcbpf-cli --test e2e e2e_xdp::`).

mod demo_watch;
mod e2e_demo;
mod e2e_errors;
mod e2e_export;
mod e2e_replace_tcx;
#[path = "../e2e_support/mod.rs"]
mod e2e_support;
mod e2e_upgrade;
mod e2e_xdp;
#[path = "../keeper_support/mod.rs"]
mod keeper_support;
mod readme_tour;

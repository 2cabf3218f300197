//! The library against the real kernel (as root): loading, maps, hand-off,
//! attach kinds, tracing, upgrade. One test binary; each file is a module
//! (`cargo test -p tcbpf --test kernel load_legacy::`). Tests that set
//! process-wide state (`scm_bind_race`: umask; `scm_no_fd_leak`: counts this
//! process's descriptors) are test binaries of their own.

mod btf_fixup;
mod chain_apply;
mod core_attach;
mod core_load;
mod exec_agent;
mod front_map;
mod load_btf;
mod load_common;
mod load_errors;
mod load_export;
mod load_externs;
mod load_global_data;
mod load_legacy;
mod load_map_defaults;
mod load_map_in_map;
mod load_subprog;
mod map_memory;
mod map_sys;
mod maps_typed;
mod pin_reuse;
mod scm_transfer;
mod sys_base;
mod tailcall_chain;
mod tc_attach;
mod tc_attach_one_call;
mod tc_discover;
mod trace_attach;
mod trace_filter_kernel;
mod trace_programs_kernel;
mod upgrade;
mod xdp_attach;

//! `tcbpf-exporter` against the real kernel, the real `tc` and a real
//! Prometheus: `/metrics` and its exposition, the listener under
//! exhaustion, `map watch`. One test binary; each file is a module
//! (`cargo test -p tcbpf-exporter --test exporter watch::`).

mod common;
mod exhaustion;
mod exporter;
mod exposition;
mod watch;

//! Followers against a real etcd and real kernel maps: following a policy
//! with real traffic, generations, staged rollout, leader elections,
//! faults, and `scripts/fleet-demo.sh short`. Each test starts its own
//! etcd on free loopback ports (`support::etcd`) and its own namespaces,
//! so they share this process. One test binary; each file is a module
//! (`cargo test -p tcbpf-sync --test fleet rollout::`).

mod elections;
mod fleet_demo;
mod follow_udp;
mod generations;
mod resilience;
mod rollout;
#[path = "../support/mod.rs"]
mod support;

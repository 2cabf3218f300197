//! Attaching programs to tc: rtnetlink for the clsact qdisc, cls_bpf filters
//! and act_bpf actions, and tcx links.

pub mod netns;

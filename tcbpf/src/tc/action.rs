//! act_bpf actions (kind "bpf"), built the way tc builds them: a
//! `TCA_ACT_TAB` holding the action kind and its options (`TCA_ACT_BPF_PARMS`,
//! `TCA_ACT_BPF_FD`, `TCA_ACT_BPF_NAME`), standalone (`RTM_NEWACTION`) or
//! inside a cls_bpf filter (`TCA_BPF_ACT`).
//!
//! Kernels built without act_bpf answer ENOENT ("Failed to load TC action
//! module") or EOPNOTSUPP; that becomes the error "act_bpf is not supported
//! by this kernel".

use super::error::{Error, Result};
use super::message::{flags, Request};
use super::socket::Socket;
use std::os::fd::{AsRawFd, BorrowedFd};

const RTM_NEWACTION: u16 = 48;
/// `TCA_ACT_TAB` (`TCA_ROOT_TAB`).
const TCA_ACT_TAB: u16 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_ACT_BPF_PARMS: u16 = 2;
const TCA_ACT_BPF_FD: u16 = 5;
const TCA_ACT_BPF_NAME: u16 = 6;

/// tc action verdicts (`TC_ACT_*`).
pub mod verdict {
    /// `TC_ACT_OK`.
    pub const OK: i32 = 0;
    /// `TC_ACT_SHOT`.
    pub const SHOT: i32 = 2;
    /// `TC_ACT_PIPE`: go on with the next action (tc's default for act_bpf).
    pub const PIPE: i32 = 3;
}

/// An act_bpf action to create.
#[derive(Debug, Clone)]
pub struct ActionSpec<'a> {
    /// The program (type `BPF_PROG_TYPE_SCHED_ACT`).
    pub prog: BorrowedFd<'a>,
    /// The name tc shows (`FILE:[SECTION]`).
    pub name: String,
    /// The action's index (0: the kernel picks one).
    pub index: u32,
    /// The verdict after the program ran (`verdict::PIPE` as tc).
    pub verdict: i32,
}

impl ActionSpec<'_> {
    /// `struct tc_act_bpf`: the generic action header (index, capab,
    /// action, refcnt, bindcnt).
    fn parms(&self) -> [u8; 20] {
        let mut p = [0u8; 20];
        p[0..4].copy_from_slice(&self.index.to_ne_bytes());
        p[8..12].copy_from_slice(&self.verdict.to_ne_bytes());
        p
    }

    /// Appends this action as entry `order` (1-based) of an open action table.
    pub(crate) fn encode(&self, req: &mut Request, order: u16) {
        req.begin_nested(order);
        req.attr_str(TCA_ACT_KIND, "bpf");
        req.begin_nested(TCA_ACT_OPTIONS);
        req.attr(TCA_ACT_BPF_PARMS, &self.parms());
        req.attr_u32(TCA_ACT_BPF_FD, self.prog.as_raw_fd() as u32);
        if !self.name.is_empty() {
            req.attr_str(TCA_ACT_BPF_NAME, &self.name);
        }
        req.end_nested();
        req.end_nested();
    }
}

/// Turns the kernel's "no such action kind" into the clear act_bpf error.
pub(crate) fn explain_missing_act_bpf(e: Error) -> Error {
    match e.errno {
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
            let kernel = e.message.clone();
            let mut e = e.said(format!(
                "act_bpf is not supported by this kernel (kernel: {kernel})"
            ));
            e.errno = Some(libc::EOPNOTSUPP);
            e
        }
        _ => e,
    }
}

/// Creates a standalone act_bpf action (`tc actions add action bpf …`).
pub fn add_action(sock: &Socket, spec: &ActionSpec<'_>) -> Result<()> {
    // struct tcamsg: family, two pad fields.
    let mut req = Request::new(RTM_NEWACTION, flags::CREATE | flags::EXCL, &[0u8; 4]);
    req.begin_nested(TCA_ACT_TAB);
    spec.encode(&mut req, 1);
    req.end_nested();
    sock.request("RTM_NEWACTION", &req)
        .map_err(|e| explain_missing_act_bpf(e).on(format!("action bpf '{}'", spec.name)))
}

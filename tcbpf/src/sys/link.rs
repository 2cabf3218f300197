//! Link commands: BPF_LINK_CREATE (with tcx's position anchor and expected
//! revision), BPF_LINK_UPDATE and BPF_LINK_DETACH, the link's own info, and
//! BPF_PROG_QUERY for the multi-program hooks (tcx) that links attach to.
//!
//! A link lives as long as a descriptor or a pin holds it; detaching ends the
//! attachment even while descriptors remain.

use super::fd::owned_from_ret;
use super::{bpf, cmd, ptr, Error, LinkFd, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Attach flags of the multi-program hooks (`BPF_F_*`).
pub mod flags {
    /// `BPF_F_REPLACE`: (link update) only when the old program is the one given.
    pub const REPLACE: u32 = 1 << 2;
    /// `BPF_F_BEFORE`: in front of the relative program (of all, without one).
    pub const BEFORE: u32 = 1 << 3;
    /// `BPF_F_AFTER`: behind the relative program (of all, without one).
    pub const AFTER: u32 = 1 << 4;
    /// `BPF_F_ID`: the relative object is given by id, not descriptor.
    pub const ID: u32 = 1 << 5;
    /// `BPF_F_LINK`: the relative object is a link, not a program.
    pub const LINK: u32 = 1 << 13;
}

/// `BPF_LINK_TYPE_TCX` (`enum bpf_link_type`).
pub const LINK_TYPE_TCX: u32 = 11;

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}
// The tcx fields relative_fd/expected_revision (6.6) by hand.
abi_layout!(LinkCreateAttr, 32; prog_fd @ 0, target_ifindex @ 4, attach_type @ 8, flags @ 12, relative_fd @ 16, expected_revision @ 24);

/// What BPF_LINK_CREATE is asked to attach.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreate<'a> {
    /// The program.
    pub prog: BorrowedFd<'a>,
    /// The target: an interface index for tcx.
    pub target_ifindex: u32,
    /// The kernel attach type (`abi::AttachType as u32`).
    pub attach_type: u32,
    /// `BPF_F_BEFORE`/`BPF_F_AFTER`… (0: append at the end).
    pub flags: u32,
    /// The program or link the position is relative to: a descriptor, or an
    /// id with [`flags::ID`] (0: none).
    pub relative: u32,
    /// Fail with ESTALE unless the hook is at this revision (0: any).
    pub expected_revision: u64,
}

/// BPF_LINK_CREATE: attaches `spec.prog`; the attachment lasts as long as
/// the returned link (or a pin of it).
pub fn create(spec: &LinkCreate<'_>) -> Result<LinkFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: spec.prog.as_raw_fd() as u32,
        target_ifindex: spec.target_ifindex,
        attach_type: spec.attach_type,
        flags: spec.flags,
        relative_fd: spec.relative,
        _pad: 0,
        expected_revision: spec.expected_revision,
    };
    // SAFETY: LinkCreateAttr holds no pointers.
    unsafe { bpf(cmd::LINK_CREATE, &mut attr) }
        .map(|fd| LinkFd::from_kernel(owned_from_ret(fd)))
        .map_err(|e| {
            Error::new("BPF_LINK_CREATE", e).on(format!(
                "ifindex {} attach type {}",
                spec.target_ifindex, spec.attach_type
            ))
        })
}

#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}
abi_layout!(LinkUpdateAttr, 16; link_fd @ 0, new_prog_fd @ 4, flags @ 8, old_prog_fd @ 12);

/// BPF_LINK_UPDATE: swaps the program behind `link` for `new_prog` in one
/// step (the hook never runs without a program). With `old_prog`, only when
/// the link still runs that program (EPERM otherwise).
pub fn update(
    link: impl AsFd,
    new_prog: BorrowedFd<'_>,
    old_prog: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let link = link.as_fd();
    let mut attr = LinkUpdateAttr {
        link_fd: link.as_raw_fd() as u32,
        new_prog_fd: new_prog.as_raw_fd() as u32,
        flags: if old_prog.is_some() {
            flags::REPLACE
        } else {
            0
        },
        old_prog_fd: old_prog.map_or(0, |p| p.as_raw_fd() as u32),
    };
    // SAFETY: LinkUpdateAttr holds no pointers.
    unsafe { bpf(cmd::LINK_UPDATE, &mut attr) }
        .map(|_| ())
        .map_err(|e| Error::new("BPF_LINK_UPDATE", e).on(format!("link fd {}", link.as_raw_fd())))
}

#[repr(C)]
#[derive(Default)]
struct LinkDetachAttr {
    link_fd: u32,
}
abi_layout!(LinkDetachAttr, 4; link_fd @ 0);

/// BPF_LINK_DETACH: ends the attachment of `link`.
pub fn detach(link: impl AsFd) -> Result<()> {
    let link = link.as_fd();
    let mut attr = LinkDetachAttr {
        link_fd: link.as_raw_fd() as u32,
    };
    // SAFETY: LinkDetachAttr holds no pointers.
    unsafe { bpf(cmd::LINK_DETACH, &mut attr) }
        .map(|_| ())
        .map_err(|e| Error::new("BPF_LINK_DETACH", e).on(format!("link fd {}", link.as_raw_fd())))
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}
abi_layout!(InfoAttr, 16; bpf_fd @ 0, info_len @ 4, info @ 8);

/// The prefix of `struct bpf_link_info` tcbpf reads; the per-type union
/// starts at offset 16 (tcx: ifindex, attach_type).
#[repr(C)]
#[derive(Default)]
struct RawLinkInfo {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    target: [u32; 2],
}
// `target` is the union's first two words (netns_ino/attach_type, tcx ifindex/attach_type).
abi_layout!(RawLinkInfo, 24; link_type @ 0, id @ 4, prog_id @ 8, target @ 16);

/// What the kernel says about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// `enum bpf_link_type` ([`LINK_TYPE_TCX`]…).
    pub link_type: u32,
    /// The link's id.
    pub id: u32,
    /// The attached program's id (0 once detached).
    pub prog_id: u32,
    /// For tcx links: the interface index (0 once detached).
    pub ifindex: u32,
    /// For tcx links: the attach type.
    pub attach_type: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD on a link.
pub fn link_info(link: impl AsFd) -> Result<LinkInfo> {
    let link = link.as_fd();
    let mut raw = RawLinkInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: link.as_raw_fd() as u32,
        info_len: std::mem::size_of::<RawLinkInfo>() as u32,
        info: ptr(&mut raw as *mut RawLinkInfo),
    };
    // SAFETY: info points at raw, valid for info_len bytes; RawLinkInfo is a
    // prefix of struct bpf_link_info and holds no pointers.
    unsafe { bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr) }.map_err(|e| {
        Error::new("BPF_OBJ_GET_INFO_BY_FD", e).on(format!("link fd {}", link.as_raw_fd()))
    })?;
    Ok(LinkInfo {
        link_type: raw.link_type,
        id: raw.id,
        prog_id: raw.prog_id,
        ifindex: raw.target[0],
        attach_type: raw.target[1],
    })
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    count: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}
// link_ids, link_attach_flags and revision (6.6) by hand.
abi_layout!(QueryAttr, 64; target_ifindex @ 0, attach_type @ 4, query_flags @ 8, attach_flags @ 12, prog_ids @ 16, count @ 24, prog_attach_flags @ 32, link_ids @ 40, link_attach_flags @ 48, revision @ 56);

/// The programs attached to a multi-program hook, in run order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    /// Program ids.
    pub prog_ids: Vec<u32>,
    /// The link id of each program (0 when attached without a link).
    pub link_ids: Vec<u32>,
    /// The hook's revision, bumped by every change.
    pub revision: u64,
}

/// BPF_PROG_QUERY on interface `ifindex` for `attach_type` (tcx hooks).
pub fn query(ifindex: u32, attach_type: u32) -> Result<Attached> {
    let mut room = 64usize;
    loop {
        let mut prog_ids = vec![0u32; room];
        let mut link_ids = vec![0u32; room];
        let mut attr = QueryAttr {
            target_ifindex: ifindex,
            attach_type,
            prog_ids: ptr(prog_ids.as_mut_ptr()),
            count: room as u32,
            link_ids: ptr(link_ids.as_mut_ptr()),
            ..Default::default()
        };
        // SAFETY: prog_ids and link_ids hold `count` u32 each and outlive the call.
        match unsafe { bpf(cmd::PROG_QUERY, &mut attr) } {
            Ok(_) => {
                let n = (attr.count as usize).min(room);
                prog_ids.truncate(n);
                link_ids.truncate(n);
                return Ok(Attached {
                    prog_ids,
                    link_ids,
                    revision: attr.revision,
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && (attr.count as usize) > room => {
                room = attr.count as usize;
            }
            Err(e) => {
                return Err(Error::new("BPF_PROG_QUERY", e)
                    .on(format!("ifindex {ifindex} attach type {attach_type}")))
            }
        }
    }
}

//! tcx: attaching classifiers with bpf links (kernel ≥ 6.6) instead of
//! qdiscs and filters. A tcx link lasts as long as a descriptor or a pin
//! holds it, so attachments meant to outlive the process are pinned in
//! bpffs; detaching ends the attachment and removes the pin.
//!
//! No netlink here: links are made with bpf(2) (`sys::link`).

use super::error::{Error, Result};
use crate::sys::{self, link, LinkFd};
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::Path;

/// The tcx hook: ingress or egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `BPF_TCX_INGRESS`.
    Ingress,
    /// `BPF_TCX_EGRESS`.
    Egress,
}

impl Direction {
    /// The kernel's attach type.
    pub fn attach_type(self) -> u32 {
        match self {
            Direction::Ingress => link::attach_type::TCX_INGRESS,
            Direction::Egress => link::attach_type::TCX_EGRESS,
        }
    }

    /// The direction of a tcx attach type.
    pub fn from_attach_type(t: u32) -> Option<Direction> {
        match t {
            link::attach_type::TCX_INGRESS => Some(Direction::Ingress),
            link::attach_type::TCX_EGRESS => Some(Direction::Egress),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// Attaches `prog` (a `SCHED_CLS` program) at the end of the tcx hook of
/// device `ifindex`. The attachment lasts while the returned link lives.
pub fn attach(ifindex: u32, direction: Direction, prog: BorrowedFd<'_>) -> Result<LinkFd> {
    link::create(&link::LinkCreate {
        prog,
        target_ifindex: ifindex,
        attach_type: direction.attach_type(),
        flags: 0,
    })
    .map_err(|e| {
        let e = Error::from(e).on(format!("ifindex {ifindex} tcx {direction}"));
        if e.errno == Some(libc::EEXIST) {
            e.said("the program is already attached to this hook")
        } else {
            e
        }
    })
}

/// Attaches like [`attach`] and pins the link at `pin`, so the attachment
/// outlives the process. When pinning fails the link is dropped, which
/// detaches it: nothing is left half-made. Returns the link's id.
pub fn attach_pinned(
    ifindex: u32,
    direction: Direction,
    prog: BorrowedFd<'_>,
    pin: &Path,
) -> Result<u32> {
    let link = attach(ifindex, direction, prog)?;
    let id = link::link_info(&link)?.id;
    sys::obj::pin(&link, pin)?;
    Ok(id)
}

/// Opens the link pinned at `pin`, checking that it is a tcx link.
pub fn open_pinned(pin: &Path) -> Result<(LinkFd, link::LinkInfo)> {
    let fd = sys::obj::get_pinned(pin, sys::obj::open::RDWR)?;
    let link = LinkFd::from_owned(fd).map_err(|e| Error::from(e.on(pin.display().to_string())))?;
    let info = link::link_info(&link)?;
    if info.link_type != link::LINK_TYPE_TCX {
        return Err(Error::with_message(
            "open link",
            libc::EINVAL,
            format!("not a tcx link (link type {})", info.link_type),
        )
        .on(pin.display().to_string()));
    }
    Ok((link, info))
}

/// Detaches `link`; the program stops running on the hook at once.
pub fn detach(link: &LinkFd) -> Result<()> {
    link::detach(link).map_err(Error::from)
}

/// One program on a tcx hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcxProgram {
    /// The program's id.
    pub prog_id: u32,
    /// The link holding it (0 when attached without a link).
    pub link_id: u32,
}

/// The programs on the tcx hook of device `ifindex`, in run order.
pub fn list(ifindex: u32, direction: Direction) -> Result<Vec<TcxProgram>> {
    let q = link::query(ifindex, direction.attach_type())
        .map_err(|e| Error::from(e).on(format!("ifindex {ifindex} tcx {direction}")))?;
    Ok(q.prog_ids
        .iter()
        .zip(q.link_ids.iter())
        .map(|(&prog_id, &link_id)| TcxProgram { prog_id, link_id })
        .collect())
}

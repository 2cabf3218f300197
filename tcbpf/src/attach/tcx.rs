//! tcx: attaching classifiers with bpf links (kernel ≥ 6.6) instead of
//! qdiscs and filters. A tcx link lasts as long as a descriptor or a pin
//! holds it, so attachments meant to outlive the process are pinned in
//! bpffs; detaching ends the attachment and removes the pin.
//!
//! A hook runs up to 63 programs in order. [`attach_at`] places a program
//! at the head, the tail, or before/after a program or link, optionally only
//! when the hook is still at the revision the caller saw (a compare and
//! swap: the kernel answers ESTALE otherwise); [`update`] swaps the program
//! behind a link in place.
//!
//! No netlink here: links are made with bpf(2) (`sys::link`).

use crate::abi::AttachType;
use crate::sys::{self, link, LinkFd};
use crate::tc::error::{Error, Result};
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
            Direction::Ingress => AttachType::TcxIngress as u32,
            Direction::Egress => AttachType::TcxEgress as u32,
        }
    }

    /// The direction of a tcx attach type.
    pub fn from_attach_type(t: u32) -> Option<Direction> {
        match t {
            t if t == AttachType::TcxIngress as u32 => Some(Direction::Ingress),
            t if t == AttachType::TcxEgress as u32 => Some(Direction::Egress),
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

/// What a position on the hook is relative to.
#[derive(Debug, Clone, Copy)]
pub enum Relative<'a> {
    /// The program with this id.
    ProgId(u32),
    /// This program.
    Prog(BorrowedFd<'a>),
    /// The program this link holds.
    Link(BorrowedFd<'a>),
}

/// Where on the hook a program goes.
#[derive(Debug, Clone, Copy)]
pub enum Anchor<'a> {
    /// In front of every program.
    Head,
    /// Behind every program (the default).
    Tail,
    /// Just in front of another.
    Before(Relative<'a>),
    /// Just behind another.
    After(Relative<'a>),
}

impl Anchor<'_> {
    /// The `BPF_F_*` flags and the relative fd or id.
    fn encode(&self) -> (u32, u32) {
        use std::os::fd::AsRawFd;
        let rel = |r: &Relative<'_>| match *r {
            Relative::ProgId(id) => (link::flags::ID, id),
            Relative::Prog(fd) => (0, fd.as_raw_fd() as u32),
            Relative::Link(fd) => (link::flags::LINK, fd.as_raw_fd() as u32),
        };
        match self {
            Anchor::Head => (link::flags::BEFORE, 0),
            Anchor::Tail => (0, 0),
            Anchor::Before(r) => {
                let (f, v) = rel(r);
                (link::flags::BEFORE | f, v)
            }
            Anchor::After(r) => {
                let (f, v) = rel(r);
                (link::flags::AFTER | f, v)
            }
        }
    }
}

/// Attaches `prog` (a `SCHED_CLS` program) at the end of the tcx hook of
/// device `ifindex`. The attachment lasts while the returned link lives.
pub fn attach(ifindex: u32, direction: Direction, prog: BorrowedFd<'_>) -> Result<LinkFd> {
    attach_at(ifindex, direction, prog, Anchor::Tail, None)
}

/// Attaches `prog` at `anchor` on the tcx hook of device `ifindex`. With
/// `expected_revision`, only when the hook is still at that revision:
/// otherwise an ESTALE error that says the hook's revision now.
pub fn attach_at(
    ifindex: u32,
    direction: Direction,
    prog: BorrowedFd<'_>,
    anchor: Anchor<'_>,
    expected_revision: Option<u64>,
) -> Result<LinkFd> {
    let (flags, relative) = anchor.encode();
    link::create(&link::LinkCreate {
        prog,
        target_ifindex: ifindex,
        attach_type: direction.attach_type(),
        flags,
        relative,
        expected_revision: expected_revision.unwrap_or(0),
    })
    .map_err(|e| {
        let e = Error::from(e).on(format!("ifindex {ifindex} tcx {direction}"));
        match e.errno {
            Some(libc::EEXIST) => e.said("the program is already attached to this hook"),
            Some(libc::ESTALE) => {
                let now = revision(ifindex, direction)
                    .map_or_else(|_| "unknown".to_string(), |r| r.to_string());
                e.said(format!(
                    "the hook changed meanwhile: its revision is now {now}, not {} (query it again and retry)",
                    expected_revision.unwrap_or(0)
                ))
            }
            Some(libc::ENOENT) if !matches!(anchor, Anchor::Head | Anchor::Tail) => {
                e.said("the program or link to attach before or after is not on this hook")
            }
            _ => e,
        }
    })
}

/// Swaps the program behind the tcx link `link` for `prog`, in place: the
/// link keeps its position and id, and the hook never runs without it.
pub fn update(link: &LinkFd, prog: BorrowedFd<'_>) -> Result<()> {
    link::update(link, prog, None).map_err(Error::from)
}

/// The hook's revision (bumped by every attach, detach and move).
pub fn revision(ifindex: u32, direction: Direction) -> Result<u64> {
    Ok(link::query(ifindex, direction.attach_type())
        .map_err(|e| Error::from(e).on(format!("ifindex {ifindex} tcx {direction}")))?
        .revision)
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
    Ok(list_with_revision(ifindex, direction)?.0)
}

/// [`list`] and the hook's revision, from one query (so they agree).
pub fn list_with_revision(ifindex: u32, direction: Direction) -> Result<(Vec<TcxProgram>, u64)> {
    let q = link::query(ifindex, direction.attach_type())
        .map_err(|e| Error::from(e).on(format!("ifindex {ifindex} tcx {direction}")))?;
    let progs = q
        .prog_ids
        .iter()
        .zip(q.link_ids.iter())
        .map(|(&prog_id, &link_id)| TcxProgram { prog_id, link_id })
        .collect();
    Ok((progs, q.revision))
}

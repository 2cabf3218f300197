//! Attaching programs, one file per attach kind behind one target:
//! [`cls_bpf`] (filters under a tc parent), [`tcx`] (tcx links) and
//! [`xdp`] (the device's XDP hook, by netlink or in a bpf link) each hold
//! their kind's attach, detach, replace and query. This file is the one
//! attach call: describe where ([`Hook`] and the options of that kind, in
//! an [`AttachTarget`]) and call [`attach`], which returns what was
//! attached ([`Attachment`]). A cls_bpf filter goes under a tc parent (the
//! clsact qdisc is added when missing and removed again if the filter
//! fails), with its act_bpf actions opened from their pins; a tcx link
//! goes at an anchor on the hook, optionally only at an expected revision;
//! an XDP program goes on the device by netlink, or in a bpf link.
//! [`chain`] plans an ordered tcx chain; [`discover`] lists what runs on a
//! device. The rtnetlink plumbing (socket, messages, qdisc, devices) is
//! [`crate::tc`]'s. The CLI (`filter add|replace`, `filter add … obj`,
//! `link set … xdp`) and chains attach through here; they keep the
//! grammar, the pinning policy for links and the printing. Nothing here
//! prints, pins or loads.

pub mod chain;
pub mod cls_bpf;
pub mod discover;
pub mod tcx;
pub mod xdp;

pub use cls_bpf::{FilterSelector, FilterSpec};

use crate::sys::{self, link, LinkFd};
use crate::tc::action::{self, ActionSpec};
use crate::tc::{self, Protocol, Socket, TcHandle};
use cls_bpf::{FilterProg, Mode};
use std::fmt;
use std::os::fd::AsFd;
use std::path::PathBuf;
use tcx::{Anchor, Direction};
use xdp::XdpMode;

/// Where a program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A cls_bpf filter under this parent (the clsact ingress or egress
    /// hook, or a class).
    Parent(TcHandle),
    /// A tcx link on this side of the device.
    Tcx(Direction),
    /// The device's XDP hook in `mode`: by netlink (`add` refuses to
    /// replace a program, `replace` swaps it), or in a bpf `link`.
    Xdp {
        /// Generic, driver, offload, or the kernel's pick.
        mode: XdpMode,
        /// A bpf link (for the caller to pin) instead of netlink.
        link: bool,
    },
}

/// Everything [`attach`] needs besides the program: the device and hook,
/// the cls_bpf filter's words, or the tcx link's place.
#[derive(Debug, Clone)]
pub struct AttachTarget<'a> {
    /// The device's interface index (in the caller's network namespace).
    pub ifindex: u32,
    /// The hook.
    pub hook: Hook,
    /// cls_bpf: `add` (a taken handle is an error) or `replace`; XDP by
    /// netlink: `add` (a program there is an error) or `replace`.
    pub mode: Mode,
    /// cls_bpf: `pref N` (0: the kernel picks).
    pub pref: u16,
    /// cls_bpf: `handle H` (0: the kernel picks).
    pub handle: u32,
    /// cls_bpf: `protocol P`.
    pub protocol: Protocol,
    /// cls_bpf: `chain N`.
    pub chain: Option<u32>,
    /// cls_bpf: `da` (direct action).
    pub direct_action: bool,
    /// cls_bpf: `classid H:M`.
    pub classid: Option<TcHandle>,
    /// cls_bpf: `skip_sw` / `skip_hw` (`cls_bpf::cls_flags`).
    pub skip_flags: u32,
    /// cls_bpf: the pins of `action bpf pinned PATH` programs, in order.
    pub actions: Vec<PathBuf>,
    /// tcx: where on the hook.
    pub anchor: Anchor<'a>,
    /// tcx: attach only while the hook is at this revision.
    pub revision: Option<u64>,
}

impl<'a> AttachTarget<'a> {
    /// A target on `hook` of device `ifindex` with tc's defaults: `add`,
    /// any pref and handle, protocol `all`, no direct action, tcx tail.
    pub fn new(ifindex: u32, hook: Hook) -> Self {
        AttachTarget {
            ifindex,
            hook,
            mode: Mode::Add,
            pref: 0,
            handle: 0,
            protocol: Protocol::ALL,
            chain: None,
            direct_action: false,
            classid: None,
            skip_flags: 0,
            actions: Vec::new(),
            anchor: Anchor::Tail,
            revision: None,
        }
    }
}

/// What [`attach`] attached.
#[derive(Debug)]
pub enum Attachment {
    /// A cls_bpf filter.
    Filter {
        /// True when the clsact qdisc was created for it.
        created_clsact: bool,
    },
    /// An XDP program attached by netlink (it stays until replaced or set
    /// off).
    Xdp,
    /// A tcx or XDP link: the program stays attached while this descriptor (or a
    /// pin of it) lives.
    Link {
        /// The link.
        link: LinkFd,
        /// Its kernel id.
        id: u32,
    },
}

impl Attachment {
    /// The link and its id, for a tcx attachment.
    pub fn into_link(self) -> Option<(LinkFd, u32)> {
        match self {
            Attachment::Link { link, id } => Some((link, id)),
            Attachment::Filter { .. } | Attachment::Xdp => None,
        }
    }
}

/// Why [`attach`] failed, with the step that failed.
#[derive(Debug)]
pub enum AttachError {
    /// An `action bpf pinned PATH` program could not be opened.
    Action {
        /// The pin.
        path: PathBuf,
        /// Why.
        source: sys::Error,
    },
    /// The rtnetlink socket could not be opened.
    Socket(tc::Error),
    /// The kernel refused the filter or the link.
    Attach(tc::Error),
    /// The new link's info could not be read.
    LinkInfo(sys::Error),
    /// A classic BPF program cannot go on a tcx or XDP hook.
    ClassicOnTcx,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Action { path, source } => {
                write!(f, "action bpf pinned '{}': {source}", path.display())
            }
            AttachError::Socket(e) | AttachError::Attach(e) => write!(f, "{e}"),
            AttachError::LinkInfo(e) => write!(f, "{e}"),
            AttachError::ClassicOnTcx => {
                f.write_str("tcx and XDP hooks take eBPF programs, not classic bytecode")
            }
        }
    }
}

impl std::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttachError::Action { source, .. } | AttachError::LinkInfo(source) => Some(source),
            AttachError::Socket(e) | AttachError::Attach(e) => Some(e),
            AttachError::ClassicOnTcx => None,
        }
    }
}

/// Attaches `prog` to `target`, named `name` (tc shows it; `FILE:[SECTION]`
/// for objects, empty for classic programs).
pub fn attach(
    target: &AttachTarget<'_>,
    prog: FilterProg<'_>,
    name: &str,
) -> Result<Attachment, AttachError> {
    match target.hook {
        Hook::Parent(parent) => attach_filter(target, parent, prog, name),
        Hook::Tcx(direction) => {
            let FilterProg::Ebpf(prog) = prog else {
                return Err(AttachError::ClassicOnTcx);
            };
            let link = tcx::attach_at(
                target.ifindex,
                direction,
                prog,
                target.anchor,
                target.revision,
            )
            .map_err(AttachError::Attach)?;
            let id = link::link_info(&link).map_err(AttachError::LinkInfo)?.id;
            Ok(Attachment::Link { link, id })
        }
        Hook::Xdp { mode, link } => {
            let FilterProg::Ebpf(prog) = prog else {
                return Err(AttachError::ClassicOnTcx);
            };
            if link {
                let link =
                    xdp::attach_link(target.ifindex, prog, mode).map_err(AttachError::Attach)?;
                let id = link::link_info(&link).map_err(AttachError::LinkInfo)?.id;
                return Ok(Attachment::Link { link, id });
            }
            let sock = Socket::open().map_err(AttachError::Socket)?;
            let replace = target.mode == Mode::Replace;
            xdp::attach(&sock, target.ifindex, prog, mode, replace).map_err(AttachError::Attach)?;
            Ok(Attachment::Xdp)
        }
    }
}

fn attach_filter(
    target: &AttachTarget<'_>,
    parent: TcHandle,
    prog: FilterProg<'_>,
    name: &str,
) -> Result<Attachment, AttachError> {
    let action_progs = target
        .actions
        .iter()
        .map(|p| {
            sys::obj::get_pinned_prog(p)
                .map(|fd| (fd, pinned_name(p)))
                .map_err(|source| AttachError::Action {
                    path: p.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spec = FilterSpec {
        ifindex: target.ifindex,
        parent,
        pref: target.pref,
        handle: target.handle,
        protocol: target.protocol,
        chain: target.chain,
        prog,
        name: name.to_string(),
        skip_flags: target.skip_flags,
        direct_action: target.direct_action,
        classid: target.classid,
        actions: action_progs
            .iter()
            .map(|(fd, name)| ActionSpec {
                prog: fd.as_fd(),
                name: name.clone(),
                index: 0,
                verdict: action::verdict::PIPE,
            })
            .collect(),
    };
    let sock = Socket::open().map_err(AttachError::Socket)?;
    let attached = cls_bpf::attach(&sock, &spec, target.mode).map_err(AttachError::Attach)?;
    Ok(Attachment::Filter {
        created_clsact: attached.created_clsact,
    })
}

/// The name tc shows for a pinned program: `BASENAME:[*fsobj]`.
pub fn pinned_name(path: &std::path::Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{base}:[*fsobj]")
}

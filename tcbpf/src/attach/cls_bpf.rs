//! cls_bpf filters: add, replace, delete and list them on a clsact hook or
//! any `parent H:M`, with pref, handle, protocol and chain, in direct-action
//! mode or with a classid. `attach` also creates the clsact qdisc a filter
//! needs, and removes it again when the filter then fails.
//!
//! eBPF programs come in as descriptors (loading is not this module's
//! business); classic BPF programs as instructions ([`crate::tc::classic`]).

use crate::tc::action::{self, ActionSpec};
use crate::tc::classic::{self, ClassicInsn};
use crate::tc::error::{Error, Result};
use crate::tc::handle::TcHandle;
use crate::tc::message::{flags, Attrs, Request, TcMsg, TCMSG_LEN};
use crate::tc::protocol::Protocol;
use crate::tc::qdisc::{self, Added};
use crate::tc::socket::Socket;
use std::os::fd::{AsRawFd, BorrowedFd};

const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const RTM_GETTFILTER: u16 = 46;

const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_CHAIN: u16 = 11;

const TCA_BPF_ACT: u16 = 1;
const TCA_BPF_CLASSID: u16 = 3;
const TCA_BPF_OPS_LEN: u16 = 4;
const TCA_BPF_OPS: u16 = 5;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAGS_GEN: u16 = 9;
const TCA_BPF_TAG: u16 = 10;
const TCA_BPF_ID: u16 = 11;

/// `TCA_BPF_FLAG_ACT_DIRECT`: the program's return value is the verdict.
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

/// `TCA_CLS_FLAGS_*`: where the filter runs (reported in [`BpfOptions::flags_gen`]).
pub mod cls_flags {
    /// `skip_hw`.
    pub const SKIP_HW: u32 = 1;
    /// `skip_sw`.
    pub const SKIP_SW: u32 = 2;
    /// `in_hw`.
    pub const IN_HW: u32 = 4;
    /// `not_in_hw`.
    pub const NOT_IN_HW: u32 = 8;
}

/// The program of a cls_bpf filter.
#[derive(Debug, Clone)]
pub enum FilterProg<'a> {
    /// An eBPF program (type `BPF_PROG_TYPE_SCHED_CLS`).
    Ebpf(BorrowedFd<'a>),
    /// A classic BPF program (`bytecode …`), which the kernel converts.
    Classic(&'a [ClassicInsn]),
}

impl<'a> From<BorrowedFd<'a>> for FilterProg<'a> {
    fn from(fd: BorrowedFd<'a>) -> Self {
        FilterProg::Ebpf(fd)
    }
}

/// A cls_bpf filter to attach.
#[derive(Debug, Clone)]
pub struct FilterSpec<'a> {
    /// The device.
    pub ifindex: u32,
    /// `TcHandle::INGRESS`, `TcHandle::EGRESS` or any class/qdisc.
    pub parent: TcHandle,
    /// Priority (0: the kernel picks, 49152 for the first filter).
    pub pref: u16,
    /// Filter handle (0: the kernel picks, 1 for the first).
    pub handle: u32,
    /// The protocol the filter sees (`Protocol::ALL` as tc's default).
    pub protocol: Protocol,
    /// Filter chain (None: chain 0).
    pub chain: Option<u32>,
    /// The program: an eBPF descriptor or classic instructions.
    pub prog: FilterProg<'a>,
    /// The name tc shows: `FILE:[SECTION]`, or `NAME:[*fsobj]` for a pin
    /// (empty for classic programs, as tc sends none).
    pub name: String,
    /// `skip_sw` / `skip_hw` (`cls_flags::SKIP_*`; 0 for neither).
    pub skip_flags: u32,
    /// `da`: the program's return value is the verdict.
    pub direct_action: bool,
    /// `classid H:M`: the class a match goes to (without `da`).
    pub classid: Option<TcHandle>,
    /// act_bpf actions run after a match (`action bpf …`).
    pub actions: Vec<ActionSpec<'a>>,
}

/// Whether a filter must be new or may replace the one with its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `add`: fails with EEXIST when the handle is taken.
    Add,
    /// `replace`: swaps the program of an existing filter, or adds.
    Replace,
}

/// The result of [`attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// True when `attach` created the clsact qdisc for this filter.
    pub created_clsact: bool,
}

fn tcm_info(pref: u16, protocol: Option<Protocol>) -> u32 {
    ((pref as u32) << 16) | protocol.map_or(0, |p| p.to_be() as u32)
}

impl FilterSpec<'_> {
    fn describe(&self) -> String {
        let mut s = format!("ifindex {} parent {}", self.ifindex, self.parent);
        if self.pref != 0 {
            s += &format!(" pref {}", self.pref);
        }
        if self.handle != 0 {
            s += &format!(" handle {:#x}", self.handle);
        }
        s
    }

    fn request(&self, nl_flags: u16) -> Request {
        let tcm = TcMsg {
            ifindex: self.ifindex,
            handle: self.handle,
            parent: self.parent.0,
            info: tcm_info(self.pref, Some(self.protocol)),
        };
        let mut req = Request::new(RTM_NEWTFILTER, nl_flags, &tcm.to_bytes());
        req.attr_str(TCA_KIND, "bpf");
        if let Some(chain) = self.chain {
            req.attr_u32(TCA_CHAIN, chain);
        }
        req.begin_nested(TCA_OPTIONS);
        match self.prog {
            FilterProg::Ebpf(fd) => {
                req.attr_u32(TCA_BPF_FD, fd.as_raw_fd() as u32);
            }
            FilterProg::Classic(insns) => {
                req.attr(TCA_BPF_OPS_LEN, &(insns.len() as u16).to_ne_bytes());
                req.attr(TCA_BPF_OPS, &classic::to_bytes(insns));
            }
        }
        if !self.name.is_empty() {
            req.attr_str(TCA_BPF_NAME, &self.name);
        }
        let bpf_flags = if self.direct_action {
            TCA_BPF_FLAG_ACT_DIRECT
        } else {
            0
        };
        req.attr_u32(TCA_BPF_FLAGS, bpf_flags);
        if let Some(classid) = self.classid {
            req.attr_u32(TCA_BPF_CLASSID, classid.0);
        }
        if self.skip_flags != 0 {
            req.attr_u32(TCA_BPF_FLAGS_GEN, self.skip_flags);
        }
        if !self.actions.is_empty() {
            req.begin_nested(TCA_BPF_ACT);
            for (i, a) in self.actions.iter().enumerate() {
                a.encode(&mut req, i as u16 + 1);
            }
            req.end_nested();
        }
        req.end_nested();
        req
    }

    fn send(&self, sock: &Socket, mode: Mode) -> Result<()> {
        let nl_flags = match mode {
            Mode::Add => flags::CREATE | flags::EXCL,
            Mode::Replace => flags::CREATE,
        };
        let result = sock.request("RTM_NEWTFILTER", &self.request(nl_flags));
        result.map_err(|e| {
            let e = if self.actions.is_empty() {
                e
            } else {
                action::explain_missing_act_bpf(e)
            };
            e.on(self.describe())
        })
    }
}

/// Adds a cls_bpf filter; the parent's qdisc must exist.
pub fn add(sock: &Socket, spec: &FilterSpec<'_>) -> Result<()> {
    spec.send(sock, Mode::Add)
}

/// Replaces the filter with `spec`'s pref and handle (or adds it).
pub fn replace(sock: &Socket, spec: &FilterSpec<'_>) -> Result<()> {
    spec.send(sock, Mode::Replace)
}

/// Adds or replaces a filter, creating the clsact qdisc first when the
/// parent is a clsact hook and the device has none. When the filter then
/// fails, a qdisc created here is deleted again: nothing is left half-made.
pub fn attach(sock: &Socket, spec: &FilterSpec<'_>, mode: Mode) -> Result<Attached> {
    let created_clsact =
        spec.parent.is_clsact_hook() && qdisc::add_clsact(sock, spec.ifindex)? == Added::Created;
    match spec.send(sock, mode) {
        Ok(()) => Ok(Attached { created_clsact }),
        Err(e) => {
            if created_clsact {
                // Best effort: the filter's own error is the one to report.
                let _ = qdisc::delete_clsact(sock, spec.ifindex);
            }
            Err(e)
        }
    }
}

/// Which filters a delete or a listing is about: the device and parent,
/// narrowed by pref, protocol, handle and chain when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterSelector {
    /// The device.
    pub ifindex: u32,
    /// The parent (hook or class).
    pub parent: TcHandle,
    /// Only this pref (0: any).
    pub pref: u16,
    /// Only this protocol.
    pub protocol: Option<Protocol>,
    /// Only this handle (0: any; needs a pref). Used by delete only.
    pub handle: u32,
    /// Only this chain.
    pub chain: Option<u32>,
}

impl FilterSelector {
    fn describe(&self) -> String {
        let mut s = format!("ifindex {} parent {}", self.ifindex, self.parent);
        if self.pref != 0 {
            s += &format!(" pref {}", self.pref);
        }
        if self.handle != 0 {
            s += &format!(" handle {:#x}", self.handle);
        }
        s
    }

    fn tcmsg(&self) -> TcMsg {
        TcMsg {
            ifindex: self.ifindex,
            handle: self.handle,
            parent: self.parent.0,
            info: tcm_info(self.pref, self.protocol),
        }
    }

    fn check_clsact(&self, sock: &Socket) -> Result<()> {
        if self.parent.is_clsact_hook() && !qdisc::has_clsact(sock, self.ifindex)? {
            return Err(qdisc::no_clsact());
        }
        Ok(())
    }
}

/// Deletes the selected filters: one filter (pref and handle), every
/// filter of a pref, or (no pref) every filter on the parent. On a clsact
/// hook a device without clsact is an ENOENT error saying so.
pub fn delete(sock: &Socket, sel: &FilterSelector) -> Result<()> {
    sel.check_clsact(sock)?;
    if sel.handle != 0 && sel.pref == 0 {
        return Err(Error::with_message(
            "delete filter",
            libc::EINVAL,
            "a handle needs a pref to say which filter it belongs to",
        ));
    }
    let mut req = Request::new(RTM_DELTFILTER, 0, &sel.tcmsg().to_bytes());
    if sel.handle != 0 {
        req.attr_str(TCA_KIND, "bpf");
    }
    if let Some(chain) = sel.chain {
        req.attr_u32(TCA_CHAIN, chain);
    }
    sock.request("RTM_DELTFILTER", &req)
        .map_err(|e| e.on(sel.describe()))
}

/// The cls_bpf options of a listed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BpfOptions {
    /// `TCA_BPF_NAME`: `FILE:[SECTION]` as given when attached.
    pub name: Option<String>,
    /// `TCA_BPF_FLAG_ACT_DIRECT`.
    pub direct_action: bool,
    /// `TCA_BPF_CLASSID`.
    pub classid: Option<TcHandle>,
    /// `TCA_BPF_FLAGS_GEN` (`cls_flags::*`).
    pub flags_gen: Option<u32>,
    /// `TCA_BPF_ID`: the program's id.
    pub prog_id: Option<u32>,
    /// `TCA_BPF_TAG`: the program's tag.
    pub tag: Option<Vec<u8>>,
    /// True when the filter carries actions (`TCA_BPF_ACT`).
    pub has_actions: bool,
    /// A classic program's instructions (`TCA_BPF_OPS`).
    pub classic: Option<Vec<ClassicInsn>>,
}

impl BpfOptions {
    fn parse(attrs: Attrs<'_>) -> BpfOptions {
        let mut o = BpfOptions::default();
        for a in attrs {
            match a.kind {
                TCA_BPF_NAME => o.name = Some(a.string()),
                TCA_BPF_FLAGS => {
                    o.direct_action = a.u32().unwrap_or(0) & TCA_BPF_FLAG_ACT_DIRECT != 0
                }
                TCA_BPF_CLASSID => o.classid = a.u32().map(TcHandle),
                TCA_BPF_FLAGS_GEN => o.flags_gen = a.u32(),
                TCA_BPF_ID => o.prog_id = a.u32(),
                TCA_BPF_TAG => o.tag = Some(a.payload.to_vec()),
                TCA_BPF_ACT => o.has_actions = true,
                TCA_BPF_OPS => o.classic = Some(classic::from_bytes(a.payload)),
                _ => {}
            }
        }
        o
    }
}

/// One message of a filter dump. The kernel sends a head entry per
/// pref/protocol (handle 0, no options) and then one per filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterEntry {
    /// The device.
    pub ifindex: u32,
    /// The parent.
    pub parent: TcHandle,
    /// The pref.
    pub pref: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// The classifier kind (`bpf`, `u32`, …).
    pub kind: String,
    /// The chain, when the kernel reported one.
    pub chain: Option<u32>,
    /// The filter handle (0 for the head entry).
    pub handle: u32,
    /// The options, when the kind is `bpf` and this is not the head entry.
    pub bpf: Option<BpfOptions>,
}

/// Lists the selected filters in kernel order (dump of `RTM_GETTFILTER`).
/// The selector's handle is not used, as `tc filter show` ignores it.
/// On a clsact hook a device without clsact is an ENOENT error saying so.
pub fn list(sock: &Socket, sel: &FilterSelector) -> Result<Vec<FilterEntry>> {
    sel.check_clsact(sock)?;
    let mut tcm = sel.tcmsg();
    tcm.handle = 0;
    let mut req = Request::new(RTM_GETTFILTER, 0, &tcm.to_bytes());
    if let Some(chain) = sel.chain {
        req.attr_u32(TCA_CHAIN, chain);
    }
    let replies = sock
        .dump("RTM_GETTFILTER", &req)
        .map_err(|e| e.on(sel.describe()))?;
    let mut out = Vec::new();
    for msg in replies.iter().filter(|m| m.msg_type == RTM_NEWTFILTER) {
        let Some(t) = TcMsg::parse(&msg.payload) else {
            continue;
        };
        let attrs = Attrs(&msg.payload[TCMSG_LEN..]);
        let kind = attrs
            .clone()
            .get(TCA_KIND)
            .map(|a| a.string())
            .unwrap_or_default();
        let chain = attrs.clone().get(TCA_CHAIN).and_then(|a| a.u32());
        let bpf = match attrs.clone().get(TCA_OPTIONS) {
            Some(opts) if kind == "bpf" => Some(BpfOptions::parse(opts.nested())),
            _ => None,
        };
        let entry = FilterEntry {
            ifindex: t.ifindex,
            parent: TcHandle(t.parent),
            pref: (t.info >> 16) as u16,
            protocol: Protocol::from_be(t.info as u16),
            kind,
            chain,
            handle: t.handle,
            bpf,
        };
        out.push(entry);
    }
    Ok(out)
}

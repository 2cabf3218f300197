//! XDP: a program on a device's receive path, before the kernel builds a
//! socket buffer. Two ways to attach, as `ip link set … xdp` and libbpf do:
//!
//! - **netlink** (`RTM_SETLINK` with `IFLA_XDP`): the attachment belongs to
//!   the device and stays until it is replaced or set `off`; [`attach`]
//!   refuses to replace a program unless asked (`XDP_FLAGS_UPDATE_IF_NOEXIST`,
//!   as `ip link` without `-force`).
//! - **bpf link** (`BPF_LINK_CREATE`, attach type `BPF_XDP`): the attachment
//!   lives while a descriptor or a pin holds the link; [`update`] swaps the
//!   program behind it in one step (`BPF_LINK_UPDATE`).
//!
//! A device runs at most one XDP program per mode (generic, driver,
//! offload), and not generic and driver at once. [`query`] and [`devices`]
//! read what runs (`IFLA_XDP` of `RTM_GETLINK`), with the link holding it
//! when there is one. Nothing here loads, pins or prints.

use crate::abi::AttachType;
use crate::sys::{self, link, LinkFd};
use crate::tc::error::{Error, Result};
use crate::tc::message::{Attrs, Request};
use crate::tc::socket::Socket;
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const IFLA_IFNAME: u16 = 3;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
/// Length of `struct ifinfomsg`.
const IFINFOMSG_LEN: usize = 16;

/// `XDP_FLAGS_*` of `linux/if_link.h`.
pub mod flags {
    /// Fail with EBUSY when a program is attached already.
    pub const UPDATE_IF_NOEXIST: u32 = 1 << 0;
    /// Generic XDP (after the socket buffer is built; any device).
    pub const SKB_MODE: u32 = 1 << 1;
    /// Native XDP, in the driver.
    pub const DRV_MODE: u32 = 1 << 2;
    /// Offloaded to the NIC.
    pub const HW_MODE: u32 = 1 << 3;
}

/// `BPF_LINK_TYPE_XDP` (`enum bpf_link_type`).
pub const LINK_TYPE_XDP: u32 = 6;

/// Where on the device the program runs: iproute2's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// `xdp`: native when the driver has it, else generic (the kernel picks).
    Auto,
    /// `xdpgeneric`: `XDP_FLAGS_SKB_MODE`.
    Generic,
    /// `xdpdrv`: `XDP_FLAGS_DRV_MODE`.
    Driver,
    /// `xdpoffload`: `XDP_FLAGS_HW_MODE`.
    Offload,
}

impl XdpMode {
    /// The mode's `XDP_FLAGS_*` bit (0 for [`XdpMode::Auto`]).
    pub fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Generic => flags::SKB_MODE,
            XdpMode::Driver => flags::DRV_MODE,
            XdpMode::Offload => flags::HW_MODE,
        }
    }

    /// The word `ip link set dev DEV WORD …` takes for it.
    pub fn word(self) -> &'static str {
        match self {
            XdpMode::Auto => "xdp",
            XdpMode::Generic => "xdpgeneric",
            XdpMode::Driver => "xdpdrv",
            XdpMode::Offload => "xdpoffload",
        }
    }
}

impl fmt::Display for XdpMode {
    /// bpftool's name of an attached program's mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Auto => "auto",
            XdpMode::Generic => "generic",
            XdpMode::Driver => "driver",
            XdpMode::Offload => "offload",
        })
    }
}

/// One XDP program on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpProgram {
    /// The mode it runs in (never [`XdpMode::Auto`]).
    pub mode: XdpMode,
    /// The program's id.
    pub prog_id: u32,
    /// The bpf link holding it (0: attached by netlink).
    pub link_id: u32,
}

/// A device and the XDP programs on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its index.
    pub ifindex: u32,
    /// Its name.
    pub name: String,
    /// Its XDP programs (none, or one per mode).
    pub xdp: Vec<XdpProgram>,
}

/// `struct ifinfomsg` for interface `index` (0: every one).
fn ifinfomsg(index: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    h
}

fn on_dev(e: Error, ifindex: u32, mode: XdpMode) -> Error {
    e.on(format!("ifindex {ifindex} {}", mode.word()))
}

/// Sets the XDP program of device `ifindex` in `mode` by netlink: `prog`,
/// or none (detach) for `None`. Without `replace`, a device that already
/// runs a program in that mode is an EBUSY error.
fn set(
    sock: &Socket,
    ifindex: u32,
    prog: Option<BorrowedFd<'_>>,
    mode: XdpMode,
    replace: bool,
) -> Result<()> {
    let mut xdp_flags = mode.flags();
    if !replace && prog.is_some() {
        xdp_flags |= flags::UPDATE_IF_NOEXIST;
    }
    let fd = prog.map_or(-1, |p| p.as_raw_fd());
    let mut req = Request::new(RTM_SETLINK, 0, &ifinfomsg(ifindex));
    req.begin_nested(IFLA_XDP)
        .attr(IFLA_XDP_FD, &fd.to_ne_bytes())
        .attr_u32(IFLA_XDP_FLAGS, xdp_flags)
        .end_nested();
    sock.request("RTM_SETLINK", &req).map_err(|e| {
        let e = on_dev(e, ifindex, mode);
        match e.errno {
            Some(libc::EBUSY) if prog.is_some() && e.message.contains("already attached") => e.said(
                "an XDP program is already attached in this mode (set it 'off' first, or use a pinned link to update it in place)",
            ),
            Some(libc::EINVAL) if mode == XdpMode::Offload && prog.is_some() => e.said(
                "offload needs a NIC that runs XDP itself and a program loaded for that device; tcbpf loads programs for the host",
            ),
            _ => e,
        }
    })
}

/// Attaches `prog` (an XDP program) to device `ifindex` in `mode` by
/// netlink. Without `replace`, a program already there is an error (EBUSY);
/// with it, the new program takes its place in one step.
pub fn attach(
    sock: &Socket,
    ifindex: u32,
    prog: BorrowedFd<'_>,
    mode: XdpMode,
    replace: bool,
) -> Result<()> {
    set(sock, ifindex, Some(prog), mode, replace)
}

/// Creates a bpf link attaching `prog` to device `ifindex` in `mode`; the
/// attachment lasts while the link (or a pin of it) lives. A program
/// attached by netlink is not replaced (EBUSY).
pub fn attach_link(ifindex: u32, prog: BorrowedFd<'_>, mode: XdpMode) -> Result<LinkFd> {
    link::create(&link::LinkCreate {
        prog,
        target_ifindex: ifindex,
        attach_type: AttachType::Xdp as u32,
        flags: mode.flags(),
        relative: 0,
        expected_revision: 0,
    })
    .map_err(|e| {
        let e = on_dev(Error::from(e), ifindex, mode);
        match e.errno {
            Some(libc::EBUSY) | Some(libc::EEXIST) => {
                e.said("an XDP program is already attached to this device (set it 'off' first)")
            }
            _ => e,
        }
    })
}

/// Swaps the program behind the XDP link `link` for `prog` in one step
/// (`BPF_LINK_UPDATE`): the device never runs without a program.
pub fn update(link: &LinkFd, prog: BorrowedFd<'_>) -> Result<()> {
    link::update(link, prog, None).map_err(Error::from)
}

/// Opens the link pinned at `pin`, checking that it is an XDP link.
pub fn open_pinned(pin: &Path) -> Result<(LinkFd, link::LinkInfo)> {
    let fd = sys::obj::get_pinned(pin, sys::obj::open::RDWR)?;
    let link = LinkFd::from_owned(fd).map_err(|e| Error::from(e.on(pin.display().to_string())))?;
    let info = link::link_info(&link)?;
    if info.link_type != LINK_TYPE_XDP {
        return Err(Error::with_message(
            "open link",
            libc::EINVAL,
            format!("not an XDP link (link type {})", info.link_type),
        )
        .on(pin.display().to_string()));
    }
    Ok((link, info))
}

/// The XDP link running program `prog_id` on device `ifindex`, if a link
/// holds it (links are found by walking every link id; the program id
/// tells apart devices of the same index in other namespaces).
pub fn link_of(ifindex: u32, prog_id: u32) -> Result<Option<(LinkFd, link::LinkInfo)>> {
    let mut id = 0;
    while let Some(next) = sys::obj::next_link_id(id)? {
        id = next;
        // A link that went away meanwhile is simply not it.
        let Ok(fd) = sys::obj::link_by_id(id) else {
            continue;
        };
        let Ok(info) = link::link_info(&fd) else {
            continue;
        };
        if info.link_type == LINK_TYPE_XDP && info.ifindex == ifindex && info.prog_id == prog_id {
            return Ok(Some((fd, info)));
        }
    }
    Ok(None)
}

/// Reads the XDP programs of one `RTM_NEWLINK` message's attributes.
fn parse_xdp(attrs: Attrs<'_>) -> Vec<XdpProgram> {
    let Some(xdp) = attrs.get(IFLA_XDP) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (kind, mode) in [
        (IFLA_XDP_SKB_PROG_ID, XdpMode::Generic),
        (IFLA_XDP_DRV_PROG_ID, XdpMode::Driver),
        (IFLA_XDP_HW_PROG_ID, XdpMode::Offload),
    ] {
        if let Some(id) = xdp.nested().get(kind).and_then(|a| a.u32()) {
            if id != 0 {
                out.push(XdpProgram {
                    mode,
                    prog_id: id,
                    link_id: 0,
                });
            }
        }
    }
    out
}

/// Fills in the link holding each program, when one does.
fn with_links(ifindex: u32, mut progs: Vec<XdpProgram>) -> Result<Vec<XdpProgram>> {
    for p in &mut progs {
        if let Some((_, info)) = link_of(ifindex, p.prog_id)? {
            p.link_id = info.id;
        }
    }
    Ok(progs)
}

/// The XDP programs on device `ifindex` (none, or one per mode), each with
/// the link holding it.
pub fn query(sock: &Socket, ifindex: u32) -> Result<Vec<XdpProgram>> {
    let req = Request::new(RTM_GETLINK, 0, &ifinfomsg(ifindex));
    let reply = sock
        .dump_one("RTM_GETLINK", &req)
        .map_err(|e| e.on(format!("ifindex {ifindex}")))?;
    let attrs = Attrs(reply.payload.get(IFINFOMSG_LEN..).unwrap_or_default());
    with_links(ifindex, parse_xdp(attrs))
}

/// Every device of the namespace, in index order, with its XDP programs.
pub fn devices(sock: &Socket) -> Result<Vec<Device>> {
    let req = Request::new(RTM_GETLINK, 0, &ifinfomsg(0));
    let mut out = Vec::new();
    for msg in sock.dump("RTM_GETLINK", &req)? {
        if msg.msg_type != RTM_NEWLINK || msg.payload.len() < IFINFOMSG_LEN {
            continue;
        }
        let p = &msg.payload;
        let ifindex = i32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as u32;
        let attrs = Attrs(&p[IFINFOMSG_LEN..]);
        let name = attrs
            .clone()
            .get(IFLA_IFNAME)
            .map(|a| a.string())
            .unwrap_or_default();
        let xdp = with_links(ifindex, parse_xdp(attrs))?;
        out.push(Device { ifindex, name, xdp });
    }
    out.sort_by_key(|d| d.ifindex);
    Ok(out)
}

/// Detaches the XDP programs of device `ifindex` in `mode` (every mode for
/// [`XdpMode::Auto`]): a program held by a bpf link through the link
/// (`BPF_LINK_DETACH`; its pin, if any, stays for the caller to remove),
/// others by netlink. Returns what was detached; nothing attached is no
/// error, as `ip link set … xdp off`.
pub fn detach(sock: &Socket, ifindex: u32, mode: XdpMode) -> Result<Vec<XdpProgram>> {
    let attached = query(sock, ifindex)?;
    let mut done = Vec::new();
    for p in attached
        .into_iter()
        .filter(|p| mode == XdpMode::Auto || p.mode == mode)
    {
        match link_of(ifindex, p.prog_id)? {
            Some((link, _)) => link::detach(&link).map_err(|e| on_dev(e.into(), ifindex, mode))?,
            None => set(sock, ifindex, None, p.mode, true)?,
        }
        done.push(p);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_carry_iproute2_words_and_kernel_flags() {
        let all = [
            XdpMode::Auto,
            XdpMode::Generic,
            XdpMode::Driver,
            XdpMode::Offload,
        ];
        let words: Vec<&str> = all.iter().map(|m| m.word()).collect();
        assert_eq!(words, ["xdp", "xdpgeneric", "xdpdrv", "xdpoffload"]);
        let flags: Vec<u32> = all.iter().map(|m| m.flags()).collect();
        assert_eq!(flags, [0, 2, 4, 8]);
        assert_eq!(XdpMode::Driver.to_string(), "driver");
    }

    #[test]
    fn parse_xdp_reads_each_modes_program_id() {
        // IFLA_XDP { ATTACHED = 2 (skb), SKB_PROG_ID = 42 }, then IFLA_IFNAME.
        let mut r = Request::new(RTM_NEWLINK, 0, &ifinfomsg(3));
        r.begin_nested(IFLA_XDP)
            .attr(2, &[2])
            .attr_u32(IFLA_XDP_SKB_PROG_ID, 42)
            .end_nested()
            .attr_str(IFLA_IFNAME, "v1");
        let bytes = r.finish(1);
        let attrs = Attrs(&bytes[16 + IFINFOMSG_LEN..]);
        assert_eq!(
            parse_xdp(attrs),
            vec![XdpProgram {
                mode: XdpMode::Generic,
                prog_id: 42,
                link_id: 0
            }]
        );
        assert!(parse_xdp(Attrs(&[])).is_empty());
    }
}

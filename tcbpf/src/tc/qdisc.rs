//! The clsact qdisc, which gives every device the ingress (`ffff:fff2`) and
//! egress (`ffff:fff3`) hooks that bpf filters attach to: add, delete, and
//! ask whether a device has one. Other qdiscs are not tcbpf's business.

use super::error::{Error, Result};
use super::handle::TcHandle;
use super::message::{flags, Attrs, Request, TcMsg, TCMSG_LEN};
use super::socket::Socket;

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_GETQDISC: u16 = 38;
const TCA_KIND: u16 = 1;

/// What [`add_clsact`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The qdisc was created now.
    Created,
    /// The device already had one; nothing changed.
    Existed,
}

fn clsact_request(msg_type: u16, nl_flags: u16, ifindex: u32) -> Request {
    let tcm = TcMsg {
        ifindex,
        handle: TcHandle::CLSACT_QDISC.0,
        parent: TcHandle::CLSACT.0,
        info: 0,
    };
    let mut req = Request::new(msg_type, nl_flags, &tcm.to_bytes());
    req.attr_str(TCA_KIND, "clsact");
    req
}

/// Adds the clsact qdisc to device `ifindex`; an existing one is fine.
pub fn add_clsact(sock: &Socket, ifindex: u32) -> Result<Added> {
    let req = clsact_request(RTM_NEWQDISC, flags::CREATE | flags::EXCL, ifindex);
    match sock.request("RTM_NEWQDISC", &req) {
        Ok(()) => Ok(Added::Created),
        Err(e) if e.errno == Some(libc::EEXIST) && has_clsact(sock, ifindex)? => Ok(Added::Existed),
        Err(e) => Err(e.on(format!("clsact on ifindex {ifindex}"))),
    }
}

/// Deletes the clsact qdisc of device `ifindex` and, with it, every filter
/// on its hooks. A device without one is an ENOENT error saying so.
pub fn delete_clsact(sock: &Socket, ifindex: u32) -> Result<()> {
    if !has_clsact(sock, ifindex)? {
        return Err(no_clsact());
    }
    let req = clsact_request(RTM_DELQDISC, 0, ifindex);
    sock.request("RTM_DELQDISC", &req)
        .map_err(|e| e.on(format!("clsact on ifindex {ifindex}")))
}

/// The error for a device without clsact.
pub(crate) fn no_clsact() -> Error {
    Error::with_message(
        "find qdisc",
        libc::ENOENT,
        "no clsact qdisc on this device (add one with 'qdisc add dev DEV clsact')",
    )
}

/// True when device `ifindex` has the clsact qdisc.
pub fn has_clsact(sock: &Socket, ifindex: u32) -> Result<bool> {
    let tcm = TcMsg {
        ifindex,
        ..Default::default()
    };
    let req = Request::new(RTM_GETQDISC, 0, &tcm.to_bytes());
    let replies = sock.dump("RTM_GETQDISC", &req)?;
    Ok(replies.iter().any(|m| {
        TcMsg::parse(&m.payload).is_some_and(|t| {
            t.ifindex == ifindex
                && t.parent == TcHandle::CLSACT.0
                && Attrs(&m.payload[TCMSG_LEN..])
                    .get(TCA_KIND)
                    .is_some_and(|k| k.string() == "clsact")
        })
    }))
}

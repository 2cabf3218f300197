//! A NETLINK_ROUTE socket that sends one request at a time and collects
//! its reply: the ack (with the kernel's extended-ack message on error) or
//! every message of a dump.
//!
//! Why a hand-written codec and not a crate such as netlink-packet-route:
//! tcbpf sends a handful of messages (clsact qdisc, cls_bpf filter, act_bpf
//! action, one link lookup) whose cls_bpf/act_bpf attributes those crates
//! model only partly, and the whole codec is smaller than the glue to adapt
//! one. The socket calls themselves are `sys::net`; nothing here knows what
//! the messages mean.

use super::error::{Error, Result};
use super::message::{self, flags, Attrs, Message, Request};
use crate::sys;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// `NLMSGERR_ATTR_MSG`: the extended ack's text.
const NLMSGERR_ATTR_MSG: u16 = 1;

static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

/// An open rtnetlink socket (close-on-exec).
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// Opens a NETLINK_ROUTE socket in the calling thread's network
    /// namespace, asking for extended acks and capped (short) error replies.
    pub fn open() -> Result<Socket> {
        let fd =
            sys::net::netlink_route_socket().map_err(|e| Error::io("socket(NETLINK_ROUTE)", e))?;
        Ok(Socket { fd })
    }

    fn send(&self, req: &Request, seq: u32) -> Result<()> {
        let bytes = req.finish(seq);
        sys::net::send(self.fd.as_fd(), &bytes).map_err(|e| Error::io("send(netlink)", e))?;
        Ok(())
    }

    fn recv(&self) -> Result<Vec<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n =
            sys::net::recv(self.fd.as_fd(), &mut buf).map_err(|e| Error::io("recv(netlink)", e))?;
        Ok(message::split_messages(&buf[..n]))
    }

    /// Sends `req` with `NLM_F_ACK` and waits for the kernel's ack. A
    /// failure carries the errno and the kernel's extended-ack message;
    /// `op` names the request in errors.
    pub fn request(&self, op: &'static str, req: &Request) -> Result<()> {
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut req = req.clone();
        req.set_flags(flags::ACK);
        self.send(&req, seq)?;
        loop {
            for msg in self.recv()? {
                if msg.seq != seq {
                    continue;
                }
                if msg.msg_type == message::NLMSG_ERROR {
                    return ack_result(op, &msg);
                }
            }
        }
    }

    /// Sends a get request (no `NLM_F_DUMP`) and returns its single reply.
    pub fn dump_one(&self, op: &'static str, req: &Request) -> Result<Message> {
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        self.send(req, seq)?;
        loop {
            for msg in self.recv()? {
                if msg.seq != seq {
                    continue;
                }
                if msg.msg_type == message::NLMSG_ERROR {
                    ack_result(op, &msg)?;
                    return Err(Error::with_message(op, libc::EIO, "acked without a reply"));
                }
                return Ok(msg);
            }
        }
    }

    /// Sends `req` as a dump (`NLM_F_DUMP`) and returns every reply message
    /// until `NLMSG_DONE`.
    pub fn dump(&self, op: &'static str, req: &Request) -> Result<Vec<Message>> {
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut req = req.clone();
        req.set_flags(flags::DUMP);
        self.send(&req, seq)?;
        let mut out = Vec::new();
        loop {
            for msg in self.recv()? {
                if msg.seq != seq {
                    continue;
                }
                match msg.msg_type {
                    message::NLMSG_DONE => return Ok(out),
                    message::NLMSG_ERROR => {
                        ack_result(op, &msg)?;
                        return Ok(out);
                    }
                    _ => out.push(msg),
                }
            }
        }
    }
}

/// Reads a `struct nlmsgerr` reply: 0 is success; otherwise the negative
/// errno, and with `NLM_F_ACK_TLVS` the kernel's message after the echoed
/// request header (or the whole request when not capped).
fn ack_result(op: &'static str, msg: &Message) -> Result<()> {
    let p = &msg.payload;
    if p.len() < 4 {
        return Err(Error::with_message(
            op,
            libc::EIO,
            "short netlink error message",
        ));
    }
    let code = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
    if code == 0 {
        return Ok(());
    }
    let errno = -code;
    let mut err = Error::from_errno(op, errno);
    if msg.flags & flags::ACK_TLVS != 0 && p.len() >= 4 + message::HEADER_LEN {
        let echoed_len = if msg.flags & flags::CAPPED != 0 {
            message::HEADER_LEN
        } else {
            u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as usize
        };
        let start = message::align(4 + echoed_len).min(p.len());
        if let Some(text) = Attrs(&p[start..]).get(NLMSGERR_ATTR_MSG) {
            let text = text.string();
            let text = text.trim().trim_end_matches('.');
            if !text.is_empty() {
                err = err.said(text.to_string());
            }
        }
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NLMSG_ERROR payload: errno, the echoed header, then attributes.
    fn error_message(errno: i32, capped: bool, text: Option<&str>) -> Message {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        let echoed = Request::new(44, 0, &[0u8; 20]).finish(5);
        payload.extend_from_slice(if capped { &echoed[..16] } else { &echoed });
        let mut flags_v = if capped { flags::CAPPED } else { 0 };
        if let Some(text) = text {
            flags_v |= flags::ACK_TLVS;
            let mut t = text.as_bytes().to_vec();
            t.push(0);
            payload.extend_from_slice(&((4 + t.len()) as u16).to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(&t);
        }
        Message {
            msg_type: message::NLMSG_ERROR,
            flags: flags_v,
            seq: 5,
            payload,
        }
    }

    #[test]
    fn ack_carries_the_kernels_extended_message() {
        let e = ack_result(
            "RTM_NEWTFILTER",
            &error_message(libc::EEXIST, true, Some("Filter already exists.")),
        )
        .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(
            e.to_string(),
            "RTM_NEWTFILTER: Filter already exists (EEXIST)"
        );
        let e =
            ack_result("X", &error_message(libc::EINVAL, false, Some("Bad parent"))).unwrap_err();
        assert_eq!(e.message, "Bad parent");
        let e = ack_result("X", &error_message(libc::ENOENT, true, None)).unwrap_err();
        assert_eq!(e.message, "No such file or directory");
        assert!(ack_result("X", &error_message(0, true, None)).is_ok());
    }
}

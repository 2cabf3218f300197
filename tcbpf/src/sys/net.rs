//! The socket and namespace calls outside bpf(2) that the tc layer, the
//! hand-off (`scm`) and the demo need: sockets and their int options, a
//! NETLINK_ROUTE socket (send, receive), switching the calling
//! thread's network namespace, and a raw ICMP socket for echo requests.
//! Bytes in, bytes out: nothing here knows what the messages mean.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;

/// socket(2), close-on-exec.
pub(crate) fn socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let raw = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// setsockopt(2) of an `int` option.
pub(crate) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: i32,
    opt: i32,
    value: i32,
) -> io::Result<()> {
    // SAFETY: the option value points at a c_int alive for the call, with its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A NETLINK_ROUTE socket (close-on-exec) in the calling thread's network
/// namespace, asking for extended acks and capped (short) error replies.
pub fn netlink_route_socket() -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
        set_int_option(fd.as_fd(), SOL_NETLINK, opt, 1)?;
    }
    Ok(fd)
}

/// send(2) of one whole message on a connected (or kernel) socket.
pub fn send(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: the buffer is valid for its length.
    let ret = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as usize)
}

/// recv(2) into `buf`, retried when a signal interrupts it.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the buffer is valid for writes of its length.
        let ret = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if ret >= 0 {
            return Ok(ret as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Moves the calling thread into the network namespace `ns` (an open
/// `/var/run/netns/NAME` or `/proc/PID/ns/net`), leaving the mount
/// namespace alone.
pub fn enter_net_namespace(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns on an open descriptor; no memory is shared.
    let ret = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A raw ICMP socket (root only), for sending echo requests.
pub fn icmp_raw_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)
}

/// sendto(2) of `bytes` to an IPv4 address (port 0: raw sockets).
pub fn send_to_v4(fd: BorrowedFd<'_>, bytes: &[u8], to: Ipv4Addr) -> io::Result<()> {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(to).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: bytes and addr are valid for the lengths given.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

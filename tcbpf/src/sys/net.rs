//! The socket and namespace calls outside bpf(2) that the tc layer, the
//! hand-off (`scm`) and the demo need: sockets and their int options, a
//! NETLINK_ROUTE socket (send, receive), switching the calling
//! thread's network namespace.
//! Bytes in, bytes out: nothing here knows what the messages mean.

use std::io;
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

/// listen(2) on a bound stream or seqpacket socket.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: listen(2) takes no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// accept4(2): the next connection, close-on-exec and non-blocking; None
/// when none is waiting (EAGAIN) or the peer went away before accept.
pub fn accept_nonblocking(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    loop {
        // SAFETY: accept4 with null address pointers fills nothing in.
        let raw = unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if raw >= 0 {
            // SAFETY: raw is a fresh descriptor nothing else owns.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) }));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::ECONNABORTED) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// The credentials of a connected AF_UNIX peer (SO_PEERCRED): pid, uid, gid
/// as they were when it connected.
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    // SAFETY: ucred is plain data; all-zero is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the option buffer is a ucred with its size in len.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// The supplementary groups of a connected AF_UNIX peer (SO_PEERGROUPS), as
/// they were when it connected: all of them. The kernel answers ERANGE with
/// the size it needs when the buffer is too small; the buffer grows to that
/// size and the call is repeated (the groups cannot change any more, they
/// were taken at connect).
pub fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    // NGROUPS_MAX is 65536 on Linux: the largest answer there can be.
    const MOST: usize = 65536;
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut len = std::mem::size_of_val(groups.as_slice()) as libc::socklen_t;
        // SAFETY: the buffer holds `len` bytes of gid_t.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ret == 0 {
            groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        let need = len as usize / std::mem::size_of::<libc::gid_t>();
        if e.raw_os_error() != Some(libc::ERANGE) || need <= groups.len() || need > MOST {
            return Err(e);
        }
        groups.resize(need, 0);
    }
}

/// getsockopt(2) of an `int` option (SO_TYPE, SO_ACCEPTCONN…).
pub fn int_option(fd: BorrowedFd<'_>, level: i32, opt: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option buffer is a c_int with its size in len.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sends one datagram to the AF_UNIX address `path` from an unconnected
/// datagram socket; a leading `@` names an abstract address (as systemd's
/// `NOTIFY_SOCKET` does).
pub fn send_to_unix(fd: BorrowedFd<'_>, bytes: &[u8], path: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let (abstract_name, name) = match path.strip_prefix(b"@") {
        Some(rest) => (true, rest),
        None => (false, path),
    };
    let offset = usize::from(abstract_name);
    if name.is_empty() || name.len() + offset >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket address is empty or longer than sun_path",
        ));
    }
    for (dst, src) in addr.sun_path[offset..].iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    // Abstract addresses are exactly their bytes; paths end with a NUL.
    let len = std::mem::size_of::<libc::sa_family_t>()
        + offset
        + name.len()
        + usize::from(!abstract_name);
    // SAFETY: bytes and addr are valid for the lengths given.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An AF_UNIX socket of `kind` (`SOCK_SEQPACKET`, `SOCK_DGRAM`),
/// close-on-exec.
pub fn unix_socket(kind: i32) -> io::Result<OwnedFd> {
    socket(libc::AF_UNIX, kind, 0)
}

/// poll(2) on `fds` for at most `timeout_ms` (-1: no limit); an
/// interruption by a signal counts as nothing ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a live array of pollfd of the stated length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// Takes ownership of inherited descriptor `raw` (systemd's LISTEN_FDS),
/// after checking it is open and a socket; marks it close-on-exec. The
/// caller must not use `raw` by number afterwards.
pub fn take_inherited_socket(raw: i32) -> io::Result<OwnedFd> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is not an inherited socket (LISTEN_FDS start at 3)"),
        ));
    }
    // SAFETY: stat is plain data; fstat writes it or fails with EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on an integer is memory safe; st is a valid buffer.
    if unsafe { libc::fstat(raw, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {raw} is not a socket"),
        ));
    }
    // SAFETY: fcntl on an open descriptor.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open, was handed to this process to own,
    // and the caller promises not to use the number again.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

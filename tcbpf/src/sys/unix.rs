//! AF_UNIX datagram sockets for the map hand-off and the keeper: address,
//! socket, bind with an exact mode, connect, `sendmsg`/`recvmsg` with
//! SCM_RIGHTS and SCM_CREDENTIALS, peer credentials, a poll that also ends
//! on a stop signal, and descriptor flags (close-on-exec, moving a received
//! descriptor above stdio).
//!
//! Bytes and descriptors only: it knows nothing of the payload format, and
//! it does not classify failures for the user (that is `scm::socket`).
//! Every descriptor it creates or receives is close-on-exec unless asked.
//!
//! Written on libc rather than rustix: rustix would replace the plain calls
//! (socket, bind, connect, fcntl, poll) but not the cmsg buffers, signalfd,
//! or the unshare(CLONE_FS) bind, so it would add a dependency to the
//! start-up path of `tcbpf map lookup` and shrink little.

use super::signal::StopSignals;
use super::{Error, Result};
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Longest socket path: `sun_path` is 108 bytes with its NUL.
pub const MAX_PATH_LEN: usize = 107;

/// Most descriptors one datagram can bring in. The kernel's own cap per
/// message is 253 (`SCM_MAX_FD`); the control buffer is sized for 64 so a
/// datagram with more is truncated (MSG_CTRUNC) and the excess is closed by
/// the kernel, never installed here.
const MAX_FDS: usize = 64;

/// Sender credentials from SCM_CREDENTIALS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Sender's process id.
    pub pid: i32,
    /// Sender's user id.
    pub uid: u32,
    /// Sender's group id.
    pub gid: u32,
}

/// One received datagram, before any interpretation.
#[derive(Debug)]
pub(crate) struct RawDatagram {
    /// The payload (cut to the buffer; see `truncated`).
    pub bytes: Vec<u8>,
    /// Descriptors from SCM_RIGHTS, owned (closed on drop).
    pub fds: Vec<OwnedFd>,
    /// True when some SCM_RIGHTS message arrived (even without room).
    pub saw_rights: bool,
    /// SCM_CREDENTIALS, when present.
    pub creds: Option<Credentials>,
    /// MSG_TRUNC: the payload was larger than the buffer.
    pub truncated: bool,
    /// MSG_CTRUNC: control data did not fit; excess descriptors were closed.
    pub ctrl_truncated: bool,
    /// Control messages that were neither SCM_RIGHTS nor SCM_CREDENTIALS.
    pub other_cmsgs: Vec<(i32, i32)>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The op of the error [`unix_addr`] gives for a path that cannot be a
/// socket address.
pub(crate) const BAD_PATH: &str = "socket path";

/// `sockaddr_un` for `path`, refusing paths that do not fit or hold a NUL.
/// A path that does not fit is an error of op [`BAD_PATH`] whose source
/// (InvalidInput) says why.
pub(crate) fn unix_addr(path: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    let bytes = path.as_os_str().as_bytes();
    let bad = |why: String| Error::new(BAD_PATH, io::Error::new(io::ErrorKind::InvalidInput, why));
    if bytes.is_empty() {
        return Err(bad("socket path is empty".into()));
    }
    if bytes.contains(&0) {
        return Err(bad(format!(
            "socket path {} holds a NUL byte",
            path.display()
        )));
    }
    if bytes.len() > MAX_PATH_LEN {
        return Err(bad(format!(
            "socket path {} is {} bytes, longer than sun_path allows ({MAX_PATH_LEN})",
            path.display(),
            bytes.len()
        )));
    }
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A new AF_UNIX datagram socket, close-on-exec.
pub(crate) fn dgram_socket() -> Result<OwnedFd> {
    crate::sys::net::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0)
        .map_err(|e| Error::new("socket", e).on("AF_UNIX"))
}

/// Sets SO_PASSCRED so every datagram brings its sender's credentials.
pub(crate) fn set_passcred(sock: BorrowedFd<'_>) -> Result<()> {
    crate::sys::net::set_int_option(sock, libc::SOL_SOCKET, libc::SO_PASSCRED, 1)
        .map_err(|e| Error::new("setsockopt", e).on("SO_PASSCRED"))
}

/// Binds `sock` at `path` so the socket file has exactly `mode` from the
/// moment it exists, without ever resolving `path` again after the bind (a
/// user who can write the directory could have swapped the socket for a
/// symlink by then, and a chmod through the path would change the link's
/// target): the socket inode gets `mode` before bind, and the kernel applies
/// the umask at bind. When the umask would take bits of `mode` away, the
/// bind runs on a short-lived thread that has its own copy of the
/// filesystem context (`unshare(CLONE_FS)`) with umask 0, so no other
/// thread of the process ever sees a changed umask.
pub(crate) fn bind_with_mode(sock: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<()> {
    let (addr, len) = unix_addr(path)?;
    let mode = mode & 0o777;
    // SAFETY: fchmod on a descriptor we hold; sockfs accepts mode changes.
    check(unsafe { libc::fchmod(sock.as_raw_fd(), mode as libc::mode_t) })
        .map_err(|e| Error::new("fchmod", e).on("socket"))?;
    let raw = sock.as_raw_fd();
    let do_bind = move || {
        // SAFETY: addr is a valid sockaddr_un of length len; raw stays
        // open for the call (borrowed by the caller).
        check(unsafe {
            libc::bind(
                raw,
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                len,
            )
        })
    };
    let bound = if current_umask().is_some_and(|u| u & mode == 0) {
        do_bind()
    } else {
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: unshare(CLONE_FS) gives this thread its own
                // fs_struct, so the umask set next is this thread's alone.
                check(unsafe { libc::unshare(libc::CLONE_FS) })?;
                // SAFETY: umask cannot fail; it changes only this thread's
                // (now private) filesystem context.
                unsafe { libc::umask(0) };
                do_bind()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("bind thread panicked")))
        })
    };
    bound
        .map(|_| ())
        .map_err(|e| Error::new("bind", e).on(path.display().to_string()))
}

/// The process umask, read from `/proc/self/status` (reading it with
/// umask(2) would change it for a moment); None when that cannot be read.
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

/// Connects `sock` to the socket bound at `path`.
pub(crate) fn connect(sock: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let (addr, len) = unix_addr(path)?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    let ret = check(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len,
        )
    });
    ret.map(|_| ())
        .map_err(|e| Error::new("connect", e).on(path.display().to_string()))
}

/// The peer's uid from SO_PEERCRED, when the kernel knows one (a connected
/// datagram socket usually has none: the kernel reports uid -1).
pub(crate) fn peer_uid(sock: BorrowedFd<'_>) -> Option<u32> {
    // SAFETY: ucred is plain data; getsockopt writes at most len bytes.
    unsafe {
        let mut cred: libc::ucred = zeroed();
        let mut len = size_of::<libc::ucred>() as libc::socklen_t;
        let rc = libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        );
        (rc == 0 && len as usize == size_of::<libc::ucred>() && cred.uid != u32::MAX)
            .then_some(cred.uid)
    }
}

/// Sends one datagram: `bytes` as payload and `fds` (if any) in one
/// SCM_RIGHTS control message, on a connected socket.
pub(crate) fn send_datagram(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let data_len = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
    let mut ctrl = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `space` bytes, enough for one
        // control message with data_len bytes; CMSG_FIRSTHDR is non-null
        // for a buffer that large, and the data copy stays within it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
            std::ptr::copy_nonoverlapping(
                raw.as_ptr() as *const u8,
                libc::CMSG_DATA(cmsg),
                data_len,
            );
        }
    }
    loop {
        // SAFETY: msg points at a live iovec and control buffer.
        let sent = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return if sent as usize == bytes.len() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short datagram send",
                ))
            };
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one datagram of at most `max_len` bytes, taking ownership of
/// every descriptor it carries (close-on-exec unless `inheritable`) before
/// looking at anything else, so no path out of here leaks one.
pub(crate) fn recv_datagram(
    sock: BorrowedFd<'_>,
    max_len: usize,
    inheritable: bool,
) -> io::Result<RawDatagram> {
    let cloexec = if inheritable {
        0
    } else {
        libc::MSG_CMSG_CLOEXEC
    };
    let mut bytes = vec![0u8; max_len];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe {
        libc::CMSG_SPACE(size_of::<libc::ucred>() as u32)
            + libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32)
    } as usize;
    let mut ctrl = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_mut_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space;
    let got = loop {
        // SAFETY: msg points at a live iovec and control buffer of the
        // stated lengths.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, cloexec | libc::MSG_DONTWAIT) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut out = RawDatagram {
        bytes: Vec::new(),
        fds: Vec::new(),
        saw_rights: false,
        creds: None,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        ctrl_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
        other_cmsgs: Vec::new(),
    };
    // SAFETY: the kernel filled msg_control up to msg_controllen with
    // well-formed control messages; CMSG_FIRSTHDR/NXTHDR stay within it,
    // and each data read is bounded by that message's cmsg_len.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            let data = libc::CMSG_DATA(cmsg);
            let data_len = (*cmsg).cmsg_len - (data as usize - cmsg as usize);
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                out.saw_rights = true;
                for i in 0..data_len / size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    // The kernel installed fd for us; we are its only owner.
                    out.fds.push(OwnedFd::from_raw_fd(fd));
                }
            } else if level == libc::SOL_SOCKET
                && kind == libc::SCM_CREDENTIALS
                && data_len >= size_of::<libc::ucred>()
            {
                let c = std::ptr::read_unaligned(data as *const libc::ucred);
                out.creds = Some(Credentials {
                    pid: c.pid,
                    uid: c.uid,
                    gid: c.gid,
                });
            } else {
                out.other_cmsgs.push((level, kind));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    bytes.truncate(got.min(max_len));
    out.bytes = bytes;
    if out.fds.iter().any(|f| f.as_raw_fd() < 3) {
        let fds = std::mem::take(&mut out.fds);
        for fd in fds {
            out.fds.push(above_stdio(fd, inheritable)?);
        }
    }
    Ok(out)
}

/// What a wait for a datagram ended with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The socket is readable.
    Readable,
    /// The time ran out.
    TimedOut,
    /// A signal arrived (its number).
    Signal(i32),
    /// poll was interrupted by some other signal; wait again.
    Again,
}

/// Waits until `sock` is readable, `timeout` passes, or `stop` reports a
/// signal.
pub(crate) fn wait_readable(
    sock: BorrowedFd<'_>,
    stop: Option<&StopSignals>,
    timeout: Option<Duration>,
) -> io::Result<Wake> {
    let mut fds = vec![libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if let Some(s) = stop {
        fds.push(libc::pollfd {
            fd: s.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    // Rounded up: a wait of 0.4 ms left must sleep 1 ms, not poll with 0
    // (and spin) until the deadline.
    let ms = match timeout {
        None => -1,
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: fds is a live array of pollfd of the stated length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(Wake::Again);
        }
        return Err(err);
    }
    if n == 0 {
        return Ok(Wake::TimedOut);
    }
    if let Some(s) = stop {
        if fds[1].revents != 0 {
            return Ok(Wake::Signal(s.take().unwrap_or(0)));
        }
    }
    Ok(Wake::Readable)
}

/// Sets or clears `FD_CLOEXEC` on `fd`. The exec proxy clears it on the map
/// descriptors it hands to the command, and nowhere else. `FD_CLOEXEC` is
/// the only descriptor flag Linux has, so one F_SETFD sets the whole state.
pub fn set_close_on_exec(fd: impl AsFd, on: bool) -> io::Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl F_SETFD on a descriptor we borrow.
    check(unsafe { libc::fcntl(raw, libc::F_SETFD, flags) }).map(|_| ())
}

/// Moves a received descriptor that landed on 0, 1 or 2 (the importer was
/// started with standard descriptors closed) to the lowest free number from
/// 3 up, keeping its close-on-exec choice: a map must never become the
/// command's stdin, stdout or stderr.
fn above_stdio(fd: OwnedFd, inheritable: bool) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let cmd = if inheritable {
        libc::F_DUPFD
    } else {
        libc::F_DUPFD_CLOEXEC
    };
    // SAFETY: fcntl F_DUPFD(_CLOEXEC) on a descriptor we own returns a new
    // descriptor that nobody else owns.
    let moved = check(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, 3) })?;
    // SAFETY: moved is a fresh descriptor from the kernel; `fd` (the low
    // one) is closed on drop.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// This process's real and effective user ids.
pub(crate) fn own_uids() -> (u32, u32) {
    // SAFETY: getuid and geteuid take no arguments and cannot fail.
    unsafe { (libc::getuid(), libc::geteuid()) }
}

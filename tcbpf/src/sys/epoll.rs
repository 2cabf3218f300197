//! epoll, for event readers that sleep until the kernel has something
//! (never spinning when idle); they stop on Ctrl-C through
//! `sys::signal::StopSignals`.

use super::{Error, Result};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

/// Readable.
pub const IN: u32 = libc::EPOLLIN as u32;
/// Writable.
pub const OUT: u32 = libc::EPOLLOUT as u32;
/// Error (a pipe whose reader went away).
pub const ERR: u32 = libc::EPOLLERR as u32;
/// Hang-up.
pub const HUP: u32 = libc::EPOLLHUP as u32;

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> Result<Epoll> {
        // SAFETY: no pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Error::new("epoll_create1", io::Error::last_os_error()));
        }
        // SAFETY: fd is fresh and owned by nothing else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for `events`, reporting `token` when they happen.
    pub fn add(&self, fd: BorrowedFd<'_>, events: u32, token: u64) -> Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event alive for the call.
        let r = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            return Err(Error::new("epoll_ctl", io::Error::last_os_error())
                .on(format!("fd {}", fd.as_raw_fd())));
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever) and returns the (token,
    /// events) pairs ready; empty on timeout or interruption.
    pub fn wait(&self, timeout_ms: i32, max: usize) -> Result<Vec<(u64, u32)>> {
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; max.max(1)];
        // SAFETY: evs has room for evs.len() events.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                evs.as_mut_ptr(),
                evs.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(Vec::new());
            }
            return Err(Error::new("epoll_wait", e));
        }
        Ok(evs[..n as usize]
            .iter()
            .map(|e| (e.u64, e.events))
            .collect())
    }
}

//! Calls only the command-line front ends make, not agents: the CLI's
//! `demo` and the exporter's test traffic send ICMP echo requests on a raw
//! socket, and the demo and the exporter's long-running loops note SIGINT
//! and SIGTERM with a flag handler (a process with threads cannot use the
//! library's signalfd stop, `sys::signal`, which blocks signals only in the
//! calling thread). They live in `sys` because they need `unsafe`; they are
//! in a module of their own so the library's API proper does not offer them.
//! `dump` reads the clocks here to put wall-clock times on kernel stamps.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// A raw ICMP socket (root only), for sending echo requests.
pub fn icmp_raw_socket() -> io::Result<OwnedFd> {
    super::net::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)
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

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM from now on: instead of dying, the process
/// notes them, for long-running commands that must clean up first. See
/// [`interrupted`].
pub fn catch_interrupts() {
    let handler = note_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// True once SIGINT or SIGTERM arrived after [`catch_interrupts`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// The wall-clock second (since the epoch) of a boot-time stamp in
/// nanoseconds (a program's `load_time`), as bpftool computes its
/// `loaded_at`: CLOCK_REALTIME − CLOCK_BOOTTIME + the stamp.
pub fn boot_time_to_epoch_secs(boot_ns: u64) -> u64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec the call fills; no other pointers.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts
    };
    let (real, boot) = (read(libc::CLOCK_REALTIME), read(libc::CLOCK_BOOTTIME));
    let secs = real.tv_sec - boot.tv_sec;
    let nanos = real.tv_nsec - boot.tv_nsec + boot_ns as i64;
    (secs + nanos / 1_000_000_000).max(0) as u64
}

/// CLOCK_MONOTONIC and CLOCK_REALTIME now, in nanoseconds: `dump` turns
/// `bpf_ktime_get_ns()` stamps into wall-clock time with their difference.
pub fn monotonic_and_realtime_ns() -> (u64, u64) {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec the call fills; no other pointers.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64)
    };
    (read(libc::CLOCK_MONOTONIC), read(libc::CLOCK_REALTIME))
}

//! Stopping on signals, one way for the whole library: the signals are
//! blocked in the calling thread and read from a signalfd, which a wait
//! polls beside its other descriptors (the hand-off's receive, the keeper's
//! serve loop, the event readers). The previous mask comes back on drop.
//! No signal handlers here (the CLI front ends' flag handler is
//! `sys::frontend`).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The signals that end a wait: every signal whose default action ends
/// the process and that a user sends to stop a program (INT, TERM, HUP,
/// QUIT, USR1, USR2, PIPE, ALRM). Each is turned into a clean stop, so a
/// socket file is removed instead of left behind.
pub const STOP_SIGNALS: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
];

/// Ctrl-C and `kill`: what an event reader stops on.
pub const INT_TERM: [i32; 2] = [libc::SIGINT, libc::SIGTERM];

/// Signals turned into a readable descriptor for the time this value
/// lives: they are blocked in the calling thread (threads it starts later
/// inherit the mask) and read from a signalfd; the previous signal mask
/// comes back on drop. A signal this process inherited as ignored
/// (`trap '' INT`, `nohup`) stays ignored.
///
/// Meant for a single-threaded process (the CLI): in a process with other
/// threads, those threads may still take the signals.
#[derive(Debug)]
pub struct StopSignals {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl StopSignals {
    /// Blocks those of `signals` that are not ignored and opens a signalfd
    /// for them.
    pub fn new(signals: &[i32]) -> io::Result<StopSignals> {
        // SAFETY: sigset_t and sigaction are plain data, initialised by
        // sigemptyset / filled by sigaction before use; pthread_sigmask and
        // signalfd get valid pointers.
        unsafe {
            let mut set: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut set);
            for &sig in signals {
                let mut now: libc::sigaction = zeroed();
                let ignored = libc::sigaction(sig, std::ptr::null(), &mut now) == 0
                    && now.sa_sigaction == libc::SIG_IGN;
                if !ignored {
                    libc::sigaddset(&mut set, sig);
                }
            }
            let mut old: libc::sigset_t = zeroed();
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let err = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Err(err);
            }
            Ok(StopSignals {
                fd: OwnedFd::from_raw_fd(fd),
                old_mask: old,
            })
        }
    }

    /// The signalfd, for a caller that polls it with other descriptors.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The pending signal's number, if one could be read.
    pub fn take(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data; read gets a buffer of its size.
        unsafe {
            let mut info: libc::signalfd_siginfo = zeroed();
            let n = libc::read(
                self.fd.as_raw_fd(),
                &mut info as *mut libc::signalfd_siginfo as *mut libc::c_void,
                size_of::<libc::signalfd_siginfo>(),
            );
            (n == size_of::<libc::signalfd_siginfo>() as isize).then_some(info.ssi_signo as i32)
        }
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in new(); old_mask is a valid sigset_t.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut());
        }
    }
}

/// The name of a signal for messages.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        n => return format!("signal {n}"),
    };
    name.into()
}

//! Replacing this process with another program: `execvpe(3)`, with the
//! argument and environment vectors given as C strings.

use std::ffi::{CStr, CString};
use std::io;

/// Replaces this process with `argv[0]` (searched in the `PATH` of the
/// *current* environment when it has no `/`, as `execvpe` does), with
/// arguments `argv` and environment `envp` exactly. Descriptors without
/// `FD_CLOEXEC` stay open. Like `std::process::Command::exec`, the signal
/// mask is emptied and SIGPIPE set back to its default first, so the program
/// starts as if from a shell (Rust programs ignore SIGPIPE). Returns only on
/// failure.
pub fn execvpe(argv: &[CString], envp: &[CString]) -> io::Error {
    let Some(program) = argv.first() else {
        return io::Error::new(io::ErrorKind::InvalidInput, "no program to run");
    };
    let args: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let env: Vec<*const libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let program: &CStr = program;
    // SAFETY: sigset_t is plain data initialised by sigemptyset; setting
    // the mask and SIGPIPE's default disposition touch no Rust state.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // SAFETY: program, args and env are NUL-terminated strings and
    // NULL-terminated pointer arrays that outlive the call.
    unsafe { libc::execvpe(program.as_ptr(), args.as_ptr(), env.as_ptr()) };
    io::Error::last_os_error()
}

/// Writes `bytes` to standard error only if that cannot block: a zero-time
/// poll for POLLOUT first (a pipe nobody reads, a stopped terminal), then
/// one write. Returns false when nothing (or not everything) was written.
/// For warnings in loops that must keep running whatever stderr is.
pub fn write_stderr_nowait(bytes: &[u8]) -> bool {
    let mut pfd = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    if ready != 1 || pfd.revents & libc::POLLOUT == 0 {
        return false;
    }
    // SAFETY: bytes is a live buffer of the given length.
    let n = unsafe {
        libc::write(
            libc::STDERR_FILENO,
            bytes.as_ptr() as *const libc::c_void,
            bytes.len(),
        )
    };
    n == bytes.len() as isize
}

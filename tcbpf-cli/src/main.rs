//! The `tcbpf` command: tc's eBPF front-end and exec proxy, in tc's words.
//!
//! The C `main` is ours (`no_main`): a one-shot command like `tcbpf map
//! lookup` starts without the Rust runtime's set-up (reading /proc/self/maps
//! for the stack guard, a signal stack, ignoring SIGPIPE), so it starts as
//! fast as a C tool and, like one, ends quietly on a closed pipe. The
//! arguments still come from `std::env::args`, which glibc hands to std.
#![cfg_attr(not(test), no_main)]
// No unsafe code: it lives in the library's `sys`, behind safe calls. The
// one exception is the `no_mangle` of the C `main` below, which the
// `unsafe_code` lint counts and which only the binary can declare; all of
// `cli` forbids it.
#![deny(unsafe_code)]

/// `eprintln!` that writes its line with one `write(2)`: the text is
/// formatted first, so processes sharing one stderr pipe never interleave
/// inside a line (`eprintln!` writes each piece of the format on its own).
/// Every line tcbpf writes to standard error goes through it.
macro_rules! eline {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stderr_line(&format!($($arg)*))
    };
}

// The unit-test build has the test harness's main instead of ours, so
// nothing there calls into `cli` from the top.
#[cfg_attr(test, allow(dead_code))]
#[forbid(unsafe_code)]
mod cli;

#[cfg(not(test))]
#[allow(unsafe_code)] // `no_mangle`: this is the process's C `main`
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::run(args) {
        Ok(()) => 0,
        Err(e) => {
            eline!("tcbpf: {e}");
            e.exit as i32
        }
    };
    std::process::exit(code);
}

//! The log of `tcbpf sync`: one line per event on standard error, each
//! written with one `write(2)` (processes sharing a pipe or the journal
//! never interleave inside a line), `tcbpf sync: ` first. `-v` adds the
//! [`debug`] lines (each retry, each watch response applied).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns the [`debug`] lines on (`-v`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Logs one event.
pub fn event(line: &str) {
    let text = format!("tcbpf sync: {line}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Logs one detail, with `-v` only.
pub fn debug(line: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        event(line);
    }
}

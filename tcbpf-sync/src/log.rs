//! The follower's log: one line per event on standard error, each
//! written with one `write(2)` (processes sharing a pipe or the journal
//! never interleave inside a line), `tcbpf sync: ` first.

use std::io::Write;

/// Logs one event.
pub fn event(line: &str) {
    let text = format!("tcbpf sync: {line}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

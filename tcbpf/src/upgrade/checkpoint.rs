//! Named points of an upgrade, for the crash tests: with
//! `TCBPF_UPGRADE_PAUSE_AT=NAME[,NAME…]` in the environment, the upgrade
//! stops at each point named, says so on stderr (`tcbpf: upgrade paused at
//! NAME`) and waits for a line on stdin (or its end) before it goes on:
//! time for a test to send traffic, look, or SIGKILL it. Without the
//! variable, or at any other point, a checkpoint does nothing. The names
//! are listed in ARCHITECTURE.md (the upgrade's state machine).

use std::io::{BufRead, Write};

/// The environment variable naming the points to pause at.
pub const PAUSE_AT: &str = "TCBPF_UPGRADE_PAUSE_AT";

/// The upgrade reached the point `name`.
pub(super) fn reached(name: &str) {
    let Some(wanted) = std::env::var_os(PAUSE_AT) else {
        return;
    };
    if !wanted.to_string_lossy().split(',').any(|w| w == name) {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "tcbpf: upgrade paused at {name}");
    let _ = err.flush();
    drop(err);
    let _ = std::io::stdin().lock().read_line(&mut String::new());
}

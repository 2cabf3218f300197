//! `tcbpf exec bpf graft MAP_FILE [ key KEY ] obj FILE [ type cls|act ] [ sec NAME ]`:
//! load a program from an object and place it in a pinned program array
//! (tc's tail-call grafting).
//!
//! Grafting needs the object loader, which lives on another branch; until it
//! is wired in here, this command refuses clearly instead of pretending.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf exec bpf graft …` (the words after `graft`).
pub fn graft(_g: &Global, w: &mut Words) -> Result<(), CliError> {
    let _ = w.rest();
    Err(CliError::failure(
        "exec bpf graft is not available yet in this build: it needs the object loader (tcbpf::load)",
    ))
}

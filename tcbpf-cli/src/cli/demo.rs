//! `tcbpf demo …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf demo …`.
pub fn run(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'demo' is not built yet"))
}

//! `tcbpf obj …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf obj …`.
pub fn run(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'obj' is not built yet"))
}

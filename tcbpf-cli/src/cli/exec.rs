//! `tcbpf exec …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf exec …`.
pub fn run(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'exec' is not built yet"))
}

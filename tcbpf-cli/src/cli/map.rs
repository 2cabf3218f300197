//! `tcbpf map …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf map …`.
pub fn run(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'map' is not built yet"))
}

//! `tcbpf map export UDS MAP [MAP…] [obj NAME]`: send maps to an importer.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf map export …` (the words after `export`).
#[allow(dead_code)]
pub fn run(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'map export' is not built yet"))
}

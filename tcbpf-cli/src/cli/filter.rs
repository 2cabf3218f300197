//! `tcbpf filter …` and `tcbpf qdisc …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf filter …`.
pub fn run_filter(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'filter' is not built yet"))
}

/// Runs `tcbpf qdisc …`.
pub fn run_qdisc(_g: &Global, _w: &mut Words) -> Result<(), CliError> {
    Err(CliError::failure("'qdisc' is not built yet"))
}

//! `tcbpf map …`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// Runs `tcbpf map …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek() == Some("export") {
        w.next();
        return super::map_export::run(g, w);
    }
    Err(CliError::failure("'map' is not built yet"))
}

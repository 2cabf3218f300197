//! Output modes: readable text by default, `-j` JSON, `-p` pretty JSON.

use serde_json::Value;
use std::io::Write;

/// Global options that every command sees.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `-j`: JSON output.
    pub json: bool,
    /// `-p`: pretty JSON (implies `-j`).
    pub pretty: bool,
    /// `-v`: verbose.
    pub verbose: bool,
    /// `-d`: details (`filter show` prints what `tc -d` prints).
    pub details: bool,
    /// `-n NETNS`: the named network namespace the command ran in.
    pub netns: Option<String>,
    /// Standard input is taken: `map batch` reads its commands there, so a
    /// command it runs may not read it (`load` without `from FILE`).
    pub stdin_taken: bool,
}

impl Global {
    /// Prints `value` as JSON, compact or pretty, on one write.
    pub fn print_json(&self, value: &Value) -> std::io::Result<()> {
        let text = if self.pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        }
        .map_err(std::io::Error::other)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
    }
}

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

/// Writes `line` and a newline to standard error with one `write(2)` (a
/// line under the pipe buffer's 4 KiB is then atomic on a shared pipe).
/// Errors writing stderr are ignored, as `eprintln!` would panic on them.
pub fn write_stderr_line(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

//! The error of a rejected object file: what was wrong, and where (file,
//! section, symbol), in one line.

use std::fmt;

/// Why an ELF file is not a loadable eBPF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file, as the caller named it.
    pub file: String,
    /// The section the problem is in, when there is one.
    pub section: Option<String>,
    /// The symbol the problem is about, when there is one.
    pub symbol: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The BTF error behind it, when the BTF parser found the problem.
    cause: Option<Box<crate::btf::Error>>,
}

impl ParseError {
    /// An error about the file as a whole.
    pub fn new(file: &str, reason: impl Into<String>) -> Self {
        ParseError {
            file: file.to_string(),
            section: None,
            symbol: None,
            reason: reason.into(),
            cause: None,
        }
    }

    /// Keeps the BTF error the reason was made from, as `source()`.
    pub(crate) fn with_cause(mut self, cause: crate::btf::Error) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Names the section.
    pub(crate) fn in_section(mut self, section: impl Into<String>) -> Self {
        self.section = Some(section.into());
        self
    }

    /// Names the symbol.
    pub(crate) fn at_symbol(mut self, symbol: impl Into<String>) -> Self {
        self.symbol = Some(symbol.into());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.file.clone();
        if let Some(s) = &self.section {
            text.push_str(&format!(": section '{s}'"));
        }
        if let Some(s) = &self.symbol {
            text.push_str(&format!(": symbol '{s}'"));
        }
        text.push_str(": ");
        text.push_str(&self.reason);
        // Names come from the file: keep the message on one printable line.
        for c in text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as _)
    }
}

impl ParseError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_section_and_symbol() {
        let e = ParseError::new("x.o", "bad")
            .in_section("maps")
            .at_symbol("counters");
        assert_eq!(e.to_string(), "x.o: section 'maps': symbol 'counters': bad");
    }
}

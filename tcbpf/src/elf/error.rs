//! The error of a rejected object file: what was wrong, and where (file,
//! section, symbol), in one line.

use std::fmt;

/// Why an ELF file is not a loadable eBPF object.
#[derive(Debug)]
pub struct ParseError {
    /// The file, as the caller named it.
    pub file: String,
    /// The section the problem is in, when there is one.
    pub section: Option<String>,
    /// The symbol the problem is about, when there is one.
    pub symbol: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The typed error behind it, when the reason was made from one.
    cause: Option<Box<ParseCause>>,
}

/// What found the problem an object has, kept as `source()`.
#[derive(Debug)]
pub enum ParseCause {
    /// The file could not be read (missing, not a regular file, too large).
    Read(std::io::Error),
    /// The ELF reader refused a header, a table, a name or relocations.
    Elf(object::read::Error),
    /// The BTF parser.
    Btf(crate::btf::Error),
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

    /// An object file that could not be read, said as the reader says it
    /// (the io::Error kept: a missing file is not found, anything else
    /// that is no readable regular file is bad input).
    pub fn read(file: &str, e: std::io::Error) -> Self {
        let mut err = ParseError::new(file, crate::sys::strip_os(&e));
        err.cause = Some(Box::new(ParseCause::Read(e)));
        err
    }

    /// Keeps the BTF error the reason was made from, as `source()`.
    pub(crate) fn with_cause(mut self, cause: crate::btf::Error) -> Self {
        self.cause = Some(Box::new(ParseCause::Btf(cause)));
        self
    }

    /// Keeps the ELF reader's error the reason was made from.
    pub(crate) fn with_elf(mut self, cause: object::read::Error) -> Self {
        self.cause = Some(Box::new(ParseCause::Elf(cause)));
        self
    }

    /// The typed error behind the reason, when there is one.
    pub fn cause(&self) -> Option<&ParseCause> {
        self.cause.as_deref()
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
        match self.cause.as_deref()? {
            ParseCause::Read(e) => Some(e),
            ParseCause::Elf(e) => Some(e),
            ParseCause::Btf(e) => Some(e),
        }
    }
}

impl ParseError {
    /// The class of failure: not found for an object file that is not
    /// there, else bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        match self.cause.as_deref() {
            Some(ParseCause::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::ErrorKind::NotFound
            }
            _ => crate::ErrorKind::BadInput,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_there_is_not_found_and_keeps_the_io_error() {
        use std::error::Error as _;
        let path = std::path::Path::new("/nonexistent/tcbpf-object.o");
        let e = crate::elf::ObjectSpec::from_file(path).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert!(matches!(e.cause(), Some(ParseCause::Read(_))), "{e:?}");
        assert!(e.to_string().contains("No such file"), "{e}");
        assert!(e.source().is_some());
        let dir = crate::elf::ObjectSpec::from_file(&std::env::temp_dir()).unwrap_err();
        assert_eq!(dir.kind(), crate::ErrorKind::BadInput, "{dir}");
    }

    #[test]
    fn a_table_the_elf_reader_refuses_keeps_its_error() {
        let mut data = [0u8; 64];
        data[..4].copy_from_slice(b"\x7fELF");
        data[4] = 2; // ELFCLASS64
        data[5] = 1; // little-endian
        data[6] = 1; // EV_CURRENT
        data[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        data[18..20].copy_from_slice(&247u16.to_le_bytes()); // EM_BPF
        data[40..48].copy_from_slice(&0xffff_fff0u64.to_le_bytes()); // e_shoff
        data[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        data[60..62].copy_from_slice(&4u16.to_le_bytes()); // e_shnum
        let e = crate::elf::ObjectSpec::parse("x.o", &data).unwrap_err();
        assert!(matches!(e.cause(), Some(ParseCause::Elf(_))), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::BadInput);
        assert!(e.to_string().starts_with("x.o: bad section table: "), "{e}");
    }

    #[test]
    fn display_names_file_section_and_symbol() {
        let e = ParseError::new("x.o", "bad")
            .in_section("maps")
            .at_symbol("counters");
        assert_eq!(e.to_string(), "x.o: section 'maps': symbol 'counters': bad");
    }
}

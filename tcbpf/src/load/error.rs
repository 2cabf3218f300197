//! The error of a failed load: which file, which map or section, and why,
//! in one line (with the tail of the verifier log for rejected programs).

use crate::elf::ParseError;
use crate::sys;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// How many lines of the verifier log a rejection error shows.
pub const LOG_TAIL_LINES: usize = 20;

/// Why an object could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Read {
        /// The object file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a valid eBPF object.
    Parse(ParseError),
    /// The requested program is not in the object.
    NoProgram {
        /// The object file.
        file: String,
        /// What was asked for (`section 'classifier'`, `program 'x'`).
        wanted: String,
        /// The program sections the object has.
        available: Vec<String>,
    },
    /// The object is well-formed but cannot be loaded as asked (an outer
    /// map without its inner map, a tail call to a missing array…).
    Invalid {
        /// The object file.
        file: String,
        /// The map or section concerned.
        what: String,
        /// Why.
        reason: String,
    },
    /// The object is fine but the running kernel lacks something it
    /// needs (a strong kfunc or kernel symbol it does not have): a missing
    /// kernel feature, a system failure (exit 4), not bad input.
    Unsupported {
        /// The object file.
        file: String,
        /// What the object needs.
        what: String,
        /// What the kernel lacks.
        reason: String,
    },
    /// A kernel or filesystem operation failed.
    Sys {
        /// The object file.
        file: String,
        /// The map, program, pin or directory concerned.
        what: String,
        /// The failed operation.
        source: sys::Error,
    },
    /// A pinned map exists with a definition other than the object's.
    PinMismatch(Box<PinMismatch>),
    /// The verifier rejected a program.
    Verifier(Box<VerifierRejection>),
    /// CO-RE could not relocate a program: the target BTF, a relocation
    /// record, or a relocation the verifier reached unresolved.
    Core(Box<CoreFailure>),
}

/// A CO-RE failure: the object, what it concerns (the target BTF, a
/// program, `.BTF.ext`) and the typed cause.
#[derive(Debug)]
pub struct CoreFailure {
    /// The object file.
    pub file: String,
    /// What it concerns (`target BTF PATH`, `program 'x'`, …).
    pub what: String,
    /// Why.
    pub cause: CoreCause,
}

/// Why CO-RE failed, kept typed (each is bad input: the object or the
/// `btf FILE` given does not fit).
#[derive(Debug)]
pub enum CoreCause {
    /// The target BTF could not be read.
    ReadTarget(io::Error),
    /// The target BTF does not parse.
    ParseTarget(crate::btf::Error),
    /// A relocation record is out of bounds, or a relocation failed.
    Relocation(crate::btf::core::CoreError),
    /// The verifier reached an instruction poisoned by a relocation that
    /// has no match in the target BTF.
    Unresolved {
        /// The instruction (in its section).
        insn: u32,
        /// The relocation (`<field_byte_offset> [7] struct iphdr.ttl`).
        relocation: String,
        /// The rejection that reached it.
        rejection: Box<VerifierRejection>,
    },
}

impl fmt::Display for CoreCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreCause::ReadTarget(e) => {
                write!(f, "cannot read it: {e} (give another with 'btf FILE')")
            }
            CoreCause::ParseTarget(e) => write!(f, "{e}"),
            CoreCause::Relocation(e) => write!(f, "{e}"),
            CoreCause::Unresolved {
                insn, relocation, ..
            } => write!(
                f,
                "CO-RE relocation at insn #{insn} could not be resolved: {relocation} has no match in the target BTF, and the verifier reached it"
            ),
        }
    }
}

impl CoreCause {
    /// The typed error behind it.
    fn source(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            CoreCause::ReadTarget(e) => e,
            CoreCause::ParseTarget(e) => e,
            CoreCause::Relocation(e) => e,
            CoreCause::Unresolved { rejection, .. } => &rejection.source,
        }
    }
}

/// A pinned map whose definition differs from the object's.
#[derive(Debug)]
pub struct PinMismatch {
    /// The object file.
    pub file: String,
    /// The map.
    pub map: String,
    /// The pin.
    pub path: PathBuf,
    /// The pinned map's definition.
    pub pinned: String,
    /// The object's definition.
    pub wanted: String,
}

/// A program the verifier refused.
#[derive(Debug)]
pub struct VerifierRejection {
    /// The object file.
    pub file: String,
    /// The program's section.
    pub section: String,
    /// The program's name.
    pub program: String,
    /// The failed BPF_PROG_LOAD.
    pub source: sys::Error,
    /// The whole verifier log.
    pub log: String,
}

impl LoadError {
    /// The errno behind the error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LoadError::Read { source, .. } => source.raw_os_error(),
            LoadError::Sys { source, .. } => source.errno(),
            LoadError::Verifier(v) => v.source.errno(),
            _ => None,
        }
    }

    /// True for errors about the object's contents or the request (bad
    /// input), as opposed to the system refusing: parse errors, invalid
    /// requests, pin mismatches, and programs the verifier rejects
    /// (EACCES/EINVAL/E2BIG, not EPERM).
    pub fn is_bad_input(&self) -> bool {
        match self {
            LoadError::Parse(_)
            | LoadError::Invalid { .. }
            | LoadError::PinMismatch(_)
            | LoadError::Core(_) => true,
            LoadError::Read { source, .. } => source.kind() == io::ErrorKind::InvalidInput,
            LoadError::Verifier(v) => {
                // EACCES/EINVAL for most rejections, E2BIG for a call stack
                // too deep or a program too large to verify.
                matches!(
                    v.source.errno(),
                    Some(libc::EACCES) | Some(libc::EINVAL) | Some(libc::E2BIG)
                )
            }
            _ => false,
        }
    }

    /// True when the file or the requested program is not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            LoadError::NoProgram { .. } => true,
            LoadError::Read { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// The class of failure: not found ([`is_not_found`](Self::is_not_found)),
    /// bad input ([`is_bad_input`](Self::is_bad_input)), else the errno's
    /// class (EPERM is permission).
    pub fn kind(&self) -> crate::ErrorKind {
        if self.is_not_found() {
            crate::ErrorKind::NotFound
        } else if let LoadError::Unsupported { .. } = self {
            crate::ErrorKind::System
        } else if self.is_bad_input() {
            crate::ErrorKind::BadInput
        } else {
            match crate::ErrorKind::from_errno(self.errno()) {
                // A missing map or pin directory met mid-load is a system
                // failure of the load, not a missing object file.
                crate::ErrorKind::NotFound => crate::ErrorKind::System,
                k => k,
            }
        }
    }

    /// The last `n` non-empty lines of the verifier log.
    pub fn log_tail(log: &str, n: usize) -> String {
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => {
                write!(f, "{}: {}", path.display(), crate::sys::strip_os(source))
            }
            LoadError::Parse(e) => write!(f, "{e}"),
            LoadError::NoProgram {
                file,
                wanted,
                available,
            } => {
                write!(f, "{file}: no {wanted} in the object")?;
                if available.is_empty() {
                    write!(f, " (it has no program sections)")
                } else {
                    write!(f, " (program sections: {})", available.join(", "))
                }
            }
            LoadError::Invalid { file, what, reason }
            | LoadError::Unsupported { file, what, reason } => {
                write!(f, "{file}: {what}: {reason}")
            }
            LoadError::Sys { file, what, source } => write!(f, "{file}: {what}: {source}"),
            LoadError::Core(c) => write!(f, "{}: {}: {}", c.file, c.what, c.cause),
            LoadError::PinMismatch(m) => write!(
                f,
                "{}: map '{}': the map pinned at {} is {}, the object defines {}",
                m.file,
                m.map,
                m.path.display(),
                m.pinned,
                m.wanted
            ),
            LoadError::Verifier(v) => {
                write!(
                    f,
                    "{}: section '{}': program '{}' rejected: {}",
                    v.file, v.section, v.program, v.source
                )?;
                let tail = LoadError::log_tail(&v.log, LOG_TAIL_LINES);
                if !tail.is_empty() {
                    write!(f, "\nverifier log (last lines):\n{tail}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Read { source, .. } => Some(source),
            LoadError::Parse(e) => Some(e),
            LoadError::Sys { source, .. } => Some(source),
            LoadError::Verifier(v) => Some(&v.source),
            LoadError::Core(c) => Some(c.cause.source()),
            LoadError::NoProgram { .. }
            | LoadError::Invalid { .. }
            | LoadError::Unsupported { .. }
            | LoadError::PinMismatch(_) => None,
        }
    }
}

impl From<ParseError> for LoadError {
    fn from(e: ParseError) -> Self {
        LoadError::Parse(e)
    }
}

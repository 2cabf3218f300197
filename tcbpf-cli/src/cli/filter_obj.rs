//! `filter … bpf obj FILE [type cls|act] [sec NAME] [export UDS] [verbose]`:
//! load the object, attach its program, then export its maps.
//!
//! The object loader and the exporter live on other branches; this file is
//! where they are wired in, through [`attach_object`].

use super::error::CliError;
use super::filter::AttachTarget;
use super::output::Global;
use std::path::PathBuf;

/// The environment variable that names the export socket, as for tc.
pub const ENV_UDS: &str = "TC_BPF_UDS";

/// The program type the object's section is loaded as (`type cls|act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgKind {
    /// `BPF_PROG_TYPE_SCHED_CLS` (the default for filters).
    Cls,
    /// `BPF_PROG_TYPE_SCHED_ACT`.
    Act,
}

/// The words after `bpf … obj`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjArgs {
    /// The ELF object file.
    pub file: PathBuf,
    /// `type cls|act`.
    pub kind: ProgKind,
    /// `sec NAME` (None: tc's default section for the type).
    pub section: Option<String>,
    /// `export UDS`, else `$TC_BPF_UDS`: where to send the maps after attaching.
    pub export: Option<PathBuf>,
    /// `verbose`: print the verifier log.
    pub verbose: bool,
}

/// Loads `obj`, attaches its program to `target` (with
/// [`super::filter::attach_program`]) and exports its maps. Not wired yet.
pub fn attach_object(_g: &Global, _target: &AttachTarget, _obj: &ObjArgs) -> Result<(), CliError> {
    Err(CliError::failure(
        "loading objects is not wired yet (use 'pinned PATH')",
    ))
}

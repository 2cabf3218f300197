//! Live upgrade: replace the program running at a tc hook with a new build
//! of it, carrying its map state across a changed layout, all or nothing.
//!
//! - [`plan`]: per map, reuse / migrate / fresh / refuse, from both
//!   sides' definitions and BTF (pure).
//! - [`convert`]: old value bytes → new value bytes, compiled once per map
//!   from the two BTF types (pure).
//! - `find`: what runs at the hook, its maps and the plan ([`prepare`],
//!   reads only); `report`: what was found and done ([`Report`]).
//! - `run`: load beside it, copy, swap, in order ([`Prepared::execute`]);
//!   `migrate` fills and reconciles migrated maps (with `entries`' flat
//!   batch tables); `pins` makes the temporary pins and renames them.
//! - `txn`: the transaction directory on the bpffs that lets a rerun undo
//!   or finish an upgrade that was killed; [`checkpoint`]: the named steps
//!   a crash test can stop an upgrade at; `recover`: [`recover`], which
//!   the other commands that change a hook call first, so they complete
//!   a killed upgrade of it (and [`pending`] for `filter show`).
pub mod checkpoint;
pub mod convert;
mod entries;
mod find;
mod migrate;
mod pins;
pub mod plan;
mod recover;
mod report;
mod run;
mod sum_add;
mod txn;

pub use find::{prepare, Hook, Prepared, Request};
pub use migrate::wait_for_old_programs;
pub use recover::{pending, recover, Recovered, Scope};
pub use report::{MapReport, Outcome, Report};

use std::fmt;

/// The step of an upgrade that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Finding the program at the hook and its maps.
    Find,
    /// Planning (a refused map, a `map NAME` the object lacks).
    Plan,
    /// Loading the new object (verifier, map creation).
    Load,
    /// Copying the old maps' entries into the new maps.
    Copy,
    /// Pinning the new maps at temporary names.
    Pin,
    /// Swapping the program at the hook.
    Swap,
}

impl Step {
    /// The step's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Find => "find",
            Step::Plan => "plan",
            Step::Load => "load",
            Step::Copy => "copy",
            Step::Pin => "pin",
            Step::Swap => "swap",
        }
    }
}

/// Why an upgrade did not happen. Every step before the swap leaves the
/// hook, the pins and the maps as they were.
#[derive(Debug)]
pub struct Error {
    /// The step that failed.
    pub step: Step,
    /// The map concerned, when one is.
    pub map: Option<String>,
    kind: crate::ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    fn new(step: Step, map: Option<String>, kind: crate::ErrorKind, message: String) -> Error {
        Error {
            step,
            map,
            kind,
            message,
            source: None,
        }
    }

    fn sys(step: Step, map: Option<String>, what: String, e: crate::sys::Error) -> Error {
        Error {
            step,
            map,
            kind: e.kind(),
            message: format!("{what}: {e}"),
            source: Some(Box::new(e)),
        }
    }

    fn tc(step: Step, e: crate::tc::Error) -> Error {
        Error {
            step,
            map: None,
            kind: e.kind(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    fn maps(step: Step, map: &str, e: crate::maps::Error) -> Error {
        Error {
            step,
            map: Some(map.to_string()),
            kind: e.kind(),
            message: format!("map '{map}': {e}"),
            source: Some(Box::new(e)),
        }
    }

    fn load(e: crate::load::LoadError) -> Error {
        Error {
            step: Step::Load,
            map: None,
            kind: e.kind(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> crate::ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upgrade step '{}': {}", self.step.name(), self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

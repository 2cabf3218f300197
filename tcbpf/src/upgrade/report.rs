//! What an upgrade found and did: the [`Report`] of a plan or of an
//! executed upgrade, and the [`Outcome`] that carries the new object.

use std::path::PathBuf;
use std::time::Duration;

use super::entries::Entries;
use super::find::{Attached, OldMap, Prepared, Request};
use super::plan::{self, Action, MapPlan};
use super::{Error, Step};
use crate::load::{self, LoadedObject};
use crate::sys::map as sysmap;

/// One map's line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapReport {
    /// The map's plan.
    pub plan: MapPlan,
    /// Entries in the old map (migrated maps).
    pub entries: Option<usize>,
    /// The new map's id (after an executed upgrade).
    pub new_id: Option<u32>,
    /// Where it is pinned (after an executed upgrade).
    pub pin: Option<PathBuf>,
}

/// What an upgrade found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The program that ran: id and kernel name.
    pub old_prog: (u32, String),
    /// How it was attached: `pref N handle H` or `link ID`.
    pub attachment: String,
    /// The old program's object file name, from the filter's name
    /// (`FILE:[SECTION]`); None for tcx links, which carry no name.
    pub old_object: Option<String>,
    /// The new object file and program (`FILE:[SECTION]`).
    pub new_name: String,
    /// Per map of the new object.
    pub maps: Vec<MapReport>,
    /// Maps of the old program the new object does not have.
    pub dropped: Vec<String>,
    /// The new program's id, once swapped in.
    pub new_prog: Option<u32>,
    /// How long the wait for the old program to finish took.
    pub wait: Option<Duration>,
    /// The hook runs the new object's program already (the same tag) with
    /// the same maps: nothing was changed.
    pub nothing_to_do: bool,
    /// What the steps after the swap could not do, and other remarks.
    pub notes: Vec<String>,
}

impl Report {
    /// The first refused map: its name and why.
    pub fn refusal(&self) -> Option<(&str, &str)> {
        self.maps.iter().find_map(|m| match &m.plan.action {
            Action::Refuse(why) => Some((m.plan.name.as_str(), why.as_str())),
            _ => None,
        })
    }
}

/// An executed upgrade: the report and the new object (its maps open, for
/// `export UDS`).
#[derive(Debug)]
pub struct Outcome {
    /// What was done.
    pub report: Report,
    /// The new object (None when there was nothing to do: the hook runs
    /// the new object's program already).
    pub object: Option<LoadedObject>,
}

impl Prepared {
    /// The report of the plan (nothing executed yet).
    pub fn report(&self) -> Report {
        let dropped = self
            .old_maps
            .iter()
            .filter(|o| {
                !self
                    .plans
                    .iter()
                    .any(|p| plan::same_name(&o.info.name, &p.name))
            })
            .map(|o| o.info.name.clone())
            .collect();
        Report {
            old_prog: (self.prog_id, self.prog_name.clone()),
            old_object: match &self.attached {
                Attached::Filter(f) => f
                    .bpf
                    .as_ref()
                    .and_then(|b| b.name.as_deref())
                    .and_then(|n| n.rsplit_once(":[").map(|(file, _)| file.to_string())),
                Attached::Link { .. } => None,
            },
            attachment: match &self.attached {
                Attached::Filter(f) => format!("pref {} handle {:#x}", f.pref, f.handle),
                Attached::Link { id, .. } => format!("link {id}"),
            },
            new_name: String::new(),
            maps: self
                .plans
                .iter()
                .zip(&self.entries)
                .map(|(p, n)| MapReport {
                    plan: p.clone(),
                    entries: *n,
                    new_id: None,
                    pin: None,
                })
                .collect(),
            dropped,
            new_prog: None,
            wait: None,
            nothing_to_do: false,
            notes: self.pending.iter().map(|p| p.describe()).collect(),
        }
    }

    /// Counts the entries each migrated map holds now (for `plan`; an
    /// upgrade counts them as it copies).
    pub fn count_entries(&mut self) -> Result<(), Error> {
        for (p, n) in self.plans.iter().zip(self.entries.iter_mut()) {
            if !matches!(p.action, Action::Migrate(_)) {
                continue;
            }
            let Some(old) = self
                .old_maps
                .iter()
                .find(|o| plan::same_name(&o.info.name, &p.name))
            else {
                continue;
            };
            let sizes = sysmap::ElemSizes::of(&old.fd).map_err(|e| {
                Error::sys(
                    Step::Plan,
                    Some(p.name.clone()),
                    format!("map '{}'", p.name),
                    e,
                )
            })?;
            *n = Some(
                Entries::read(&old.fd, &sizes)
                    .map_err(|e| Error::maps(Step::Plan, &p.name, e))?
                    .len(),
            );
        }
        Ok(())
    }

    /// The new program's name as tc shows it (`FILE:[SECTION]`).
    pub(super) fn new_name(&self, req: &Request) -> String {
        let file = req
            .object
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let section = load::select_program(&self.spec, &req.load)
            .map(|i| self.spec.programs[i].section.clone())
            .unwrap_or_default();
        format!("{file}:[{section}]")
    }

    pub(super) fn old_map(&self, name: &str) -> Option<&OldMap> {
        self.old_maps
            .iter()
            .find(|o| plan::same_name(&o.info.name, name))
    }
}

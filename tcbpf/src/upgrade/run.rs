//! Doing the upgrade ([`Prepared::execute`], after `find` planned it): load the new object beside it (reused maps
//! given by id, the others created unpinned), fill the migrated maps while
//! the old program runs, pin the new maps at temporary names, swap the
//! program in one kernel operation (cls_bpf replace of the same
//! pref/handle, or BPF_LINK_UPDATE with the old program expected), rename
//! the pins over the old ones, wait until the old program can no longer
//! run, and reconcile. A rerun after a SIGKILL between the swap and the
//! renames finds the temporary pins of the running program's maps and
//! completes the renames.
//!
//! Everything before the swap is undone by closing descriptors and
//! removing the temporary pins: a failure there leaves hook, pins and maps
//! as they were. After the swap nothing fails half-way: reconciliation
//! and renames report what they could not do as notes.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::find::{Attached, Prepared, Request};
use super::migrate::{copy, reconcile, wait_for_old_programs, Snapshot};
use super::pins::PendingPins;
use super::plan::Action;
use super::report::Outcome;
use super::{Error, Step};
use crate::load;
use crate::sys;
use crate::tc::attach::{self, AttachTarget};
use crate::tc::filter::{cls_flags, Mode as FilterMode};

impl Prepared {
    /// Carries the upgrade out, all or nothing up to the swap.
    pub fn execute(self, req: &Request) -> Result<Outcome, Error> {
        let mut report = self.report();
        report.new_name = self.new_name(req);
        if !self.interrupted.is_empty() {
            // Complete the upgrade that was killed after its swap.
            let pins = PendingPins {
                pending: self.interrupted.clone(),
                dirs: Vec::new(),
                done: false,
            };
            report.notes.extend(pins.commit());
            report.notes.push(format!(
                "completed an interrupted upgrade: {} pins renamed; program {} stays",
                self.interrupted.len(),
                self.prog_id
            ));
            report.new_prog = Some(self.prog_id);
            return Ok(Outcome {
                report,
                object: None,
            });
        }
        if let Some((map, why)) = report.refusal() {
            return Err(Error::new(
                Step::Plan,
                Some(map.to_string()),
                crate::ErrorKind::BadInput,
                format!("map '{map}': {why} (map {map} fresh starts it empty)"),
            ));
        }
        // 1. Load the new object beside the running one.
        let mut opts = req.load.clone();
        opts.defer_pins = true;
        opts.given_maps = self
            .plans
            .iter()
            .filter(|p| p.action == Action::Reuse)
            .filter_map(|p| Some((p.name.clone(), p.old_id?)))
            .collect();
        let object = load::load_spec(&self.spec, &self.identity, &opts).map_err(Error::load)?;
        // 2. Fill the migrated maps from the old ones.
        let mut snapshots: Vec<Option<Snapshot>> = Vec::new();
        for p in &self.plans {
            let Action::Migrate(mig) = &p.action else {
                snapshots.push(None);
                continue;
            };
            let old = self
                .old_map(&p.name)
                .expect("migrated maps have an old map");
            let new = object.map(&p.name).expect("the object has its maps");
            let snap = copy(&p.name, mig, &old.fd, &new.fd)?;
            if let Some(m) = report.maps.iter_mut().find(|m| m.plan.name == p.name) {
                m.entries = Some(snap.entries.len());
            }
            snapshots.push(Some(snap));
        }
        // 3. Pin the new maps at temporary names beside their pins.
        let mut pins = PendingPins::default();
        for (p, report_map) in self.plans.iter().zip(report.maps.iter_mut()) {
            let new = object.map(&p.name).expect("the object has its maps");
            let Some(path) = load::pin::pin_path(
                &opts.bpffs,
                &self.identity.sha1_hex,
                &new.spec,
                &load::pin::read_pinning_db(&opts.pinning_db),
            ) else {
                continue;
            };
            let old_id = self.old_map(&p.name).map(|o| o.info.id);
            pins.prepare(&opts.bpffs, &p.name, &new.fd, &path, old_id)?;
            report_map.pin = Some(path);
        }
        // 4. The swap: one kernel operation.
        let new_prog = &object.main_program().fd;
        let swapped = match &self.attached {
            Attached::Filter(f) => {
                let bpf = f.bpf.as_ref().expect("a bpf filter");
                let target = AttachTarget {
                    mode: FilterMode::Replace,
                    pref: f.pref,
                    handle: f.handle,
                    protocol: f.protocol,
                    chain: f.chain,
                    direct_action: bpf.direct_action,
                    classid: bpf.classid,
                    skip_flags: bpf.flags_gen.unwrap_or(0)
                        & (cls_flags::SKIP_HW | cls_flags::SKIP_SW),
                    ..AttachTarget::new(req.ifindex, attach::Hook::Parent(f.parent))
                };
                attach::attach(&target, new_prog.as_fd().into(), &report.new_name)
                    .map(|_| ())
                    .map_err(|e| {
                        Error::new(
                            Step::Swap,
                            None,
                            attach_kind(&e),
                            format!("replacing the filter: {e}"),
                        )
                    })
            }
            Attached::Link { link, id } => {
                sys::link::update(link, new_prog.as_fd(), Some(self.prog.as_fd()))
                    .map_err(|e| Error::sys(Step::Swap, None, format!("updating link {id}"), e))
            }
        };
        if let Err(e) = swapped {
            pins.abandon();
            return Err(e);
        }
        report.new_prog = sys::info::prog_info(new_prog).ok().map(|i| i.id);
        // 5. Pins to the new maps, at once: the window in which the pins
        // still name the old maps is a few renames long.
        report.notes.extend(pins.commit());
        // 6. Wait until the old program cannot run any more.
        let started = Instant::now();
        if let Err(e) = wait_for_old_programs() {
            report.notes.push(format!(
                "waiting for the old program: {e}; reconciling after 100 ms instead"
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        report.wait = Some(started.elapsed());
        // 7. Reconcile what the old program wrote since the copy.
        for ((p, snap), report_map) in self
            .plans
            .iter()
            .zip(&snapshots)
            .zip(report.maps.iter_mut())
        {
            let new = object.map(&p.name).expect("the object has its maps");
            report_map.new_id = sys::info::map_info(&new.fd).ok().map(|i| i.id);
            let (Action::Migrate(mig), Some(snap)) = (&p.action, snap) else {
                continue;
            };
            let old = self
                .old_map(&p.name)
                .expect("migrated maps have an old map");
            if let Err(e) = reconcile(mig, snap, &old.fd, &new.fd) {
                report
                    .notes
                    .push(format!("map '{}': reconciling: {e}", p.name));
            }
        }
        Ok(Outcome {
            report,
            object: Some(object),
        })
    }
}

fn attach_kind(e: &attach::AttachError) -> crate::ErrorKind {
    match e {
        attach::AttachError::Attach(t) | attach::AttachError::Socket(t) => t.kind(),
        attach::AttachError::Action { source, .. } | attach::AttachError::LinkInfo(source) => {
            source.kind()
        }
        attach::AttachError::ClassicOnTcx => crate::ErrorKind::BadInput,
    }
}

//! Doing the upgrade ([`Prepared::execute`], after `find` planned it):
//! finish or undo an upgrade of the hook that was killed (`txn`), load the
//! new object beside the running one (reused maps given by id, the others
//! created unpinned), stop when it is the running build (same tag, every
//! map reused), fill the migrated maps while the old program runs, record
//! the transaction and pin the new maps at temporary names, swap the
//! program in one kernel operation (cls_bpf replace of the same
//! pref/handle, or BPF_LINK_UPDATE with the old program expected), rename
//! the pins over the old ones, wait until the old program can no longer
//! run, reconcile, and remove the transaction.
//!
//! Everything before the swap is undone by closing descriptors and
//! removing the temporary pins: a failure there leaves hook, pins and maps
//! as they were. After the swap nothing fails half-way: reconciliation
//! and renames report what they could not do as notes.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::checkpoint;
use super::find::{running, Attached, Prepared, Request};
use super::migrate::{copy, reconcile, wait_for_old_programs, Snapshot};
use super::pins::{remove_old_namespace_pins, PendingPins};
use super::plan::Action;
use super::report::Outcome;
use super::txn::{self, hook_id, Txn};
use super::{Error, Step};
use crate::attach::cls_bpf::{cls_flags, Mode as FilterMode};
use crate::attach::{self, AttachTarget};
use crate::load;
use crate::sys::{self, ProgFd};

impl Prepared {
    /// Carries the upgrade out, all or nothing up to the swap. An upgrade
    /// of this hook that was killed is undone or finished first.
    pub fn execute(self, req: &Request) -> Result<Outcome, Error> {
        let mut report = self.report();
        report.new_name = self.new_name(req);
        report.notes.clear();
        // One upgrade at a time: what was found before the lock is looked
        // at again under it.
        let _lock = txn::lock(&req.load.bpffs)?;
        let hook = hook_id(req.ifindex, &self.attached);
        if let Some(pending) = txn::Pending::find(&req.load.bpffs, &hook) {
            report.notes.push(pending.resume(self.prog_id)?);
        }
        let (now, _) = running(req)?;
        if now != self.prog_id {
            return Err(Error::new(
                Step::Find,
                None,
                crate::ErrorKind::System,
                format!(
                    "the hook runs program {now} now, not {} as when the upgrade was planned: run it again",
                    self.prog_id
                ),
            ));
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
        checkpoint::reached("loaded");
        let new_prog = &object.main_program().fd;
        if report.dropped.is_empty()
            && self.plans.iter().all(|p| p.action == Action::Reuse)
            && same_tag(&self.prog, new_prog)
        {
            // The same build runs: dropping the object frees its program.
            report.nothing_to_do = true;
            report.new_prog = Some(self.prog_id);
            return Ok(Outcome {
                report,
                object: None,
            });
        }
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
            checkpoint::reached(&format!("copied:{}", p.name));
        }
        // 3. The transaction directory: what a rerun needs if this process
        // is killed from here on.
        let mut txn = Txn::begin(&opts.bpffs, &hook, &self.prog, new_prog)?;
        let mut done_maps = Vec::new();
        for (p, snap) in self.plans.iter().zip(&snapshots) {
            let (Action::Migrate(mig), Some(snap)) = (&p.action, snap) else {
                done_maps.push(None);
                continue;
            };
            let old = self
                .old_map(&p.name)
                .expect("migrated maps have an old map");
            let new = object.map(&p.name).expect("the object has its maps");
            let fd = txn.add_map(&p.name, mig.mode, (&old.fd, &old.info), &new.fd, snap)?;
            done_maps.push(Some(fd));
        }
        // 4. Pin the new maps at temporary names beside their pins.
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
            txn.add_pin(&p.name, &path)?;
            let old_id = self.old_map(&p.name).map(|o| o.info.id);
            pins.prepare(&opts.bpffs, &p.name, &new.fd, &path, old_id)?;
            report_map.pin = Some(path);
            checkpoint::reached(&format!("pinned:{}", p.name));
        }
        txn.ready()?;
        // 5. The swap: one kernel operation.
        if let Err(e) = self.swap(req, new_prog, &report.new_name) {
            pins.abandon();
            return Err(e);
        }
        txn.swapped();
        report.new_prog = sys::info::prog_info(new_prog).ok().map(|i| i.id);
        checkpoint::reached("swapped");
        // 6. Pins to the new maps, at once: the window in which the pins
        // still name the old maps is a few renames long.
        report.notes.extend(pins.commit());
        let old_ids: Vec<u32> = self.old_maps.iter().map(|o| o.info.id).collect();
        report.notes.extend(remove_old_namespace_pins(
            &opts.bpffs,
            &self.identity.sha1_hex,
            &old_ids,
            [self.prog_id, report.new_prog.unwrap_or(0)],
        ));
        // 7. Wait until the old program cannot run any more.
        let started = Instant::now();
        if let Err(e) = wait_for_old_programs() {
            report.notes.push(format!(
                "waiting for the old program: {e}; reconciling after 100 ms instead"
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        report.wait = Some(started.elapsed());
        checkpoint::reached("waited");
        // 8. Reconcile what the old program wrote since the copy.
        for (((p, snap), done), report_map) in self
            .plans
            .iter()
            .zip(&snapshots)
            .zip(&done_maps)
            .zip(report.maps.iter_mut())
        {
            let new = object.map(&p.name).expect("the object has its maps");
            report_map.new_id = sys::info::map_info(&new.fd).ok().map(|i| i.id);
            let (Action::Migrate(mig), Some(snap), Some(done)) = (&p.action, snap, done) else {
                continue;
            };
            let old = self
                .old_map(&p.name)
                .expect("migrated maps have an old map");
            let point = format!("reconciling:{}", p.name);
            if let Err(e) = reconcile(mig, snap, &old.fd, &new.fd, done, &point) {
                report
                    .notes
                    .push(format!("map '{}': reconciling: {e}", p.name));
            }
            checkpoint::reached(&format!("reconciled:{}", p.name));
            txn.map_done(&p.name);
        }
        txn.finish();
        Ok(Outcome {
            report,
            object: Some(object),
        })
    }

    /// Puts `new_prog` at the hook in place of the running program.
    fn swap(&self, req: &Request, new_prog: &ProgFd, name: &str) -> Result<(), Error> {
        match &self.attached {
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
                attach::attach(&target, new_prog.as_fd().into(), name)
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
        }
    }
}

/// True when both programs have the same tag: the kernel's hash of the
/// instructions as loaded, map references left out (`bpf_prog_calc_tag`).
/// The new build is loaded (not attached) to learn its tag; together with
/// every map reused, that is the running build.
fn same_tag(running: &ProgFd, new: &ProgFd) -> bool {
    match (sys::info::prog_info(running), sys::info::prog_info(new)) {
        (Ok(a), Ok(b)) => a.tag == b.tag,
        _ => false,
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

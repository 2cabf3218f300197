//! Doing the upgrade: find what runs at the hook ([`prepare`]: the
//! program, its maps by the kernel's `map_ids`, their BTF, the plan), then
//! ([`Prepared::execute`]) load the new object beside it (reused maps
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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entries::Entries;
use super::migrate::{copy, reconcile, wait_for_old_programs, Snapshot};
use super::pins::{temp_pin, PendingPins};
use super::plan::{self, Action, MapPlan, MapSide, Mode};
use super::{Error, Step};
use crate::attach::cls_bpf::{
    self as filter, cls_flags, FilterEntry, FilterSelector, Mode as FilterMode,
};
use crate::attach::tcx::{self, Direction};
use crate::attach::{self, AttachTarget};
use crate::btf::Btf;
use crate::elf::{MapOrigin, ObjectSpec};
use crate::load::{self, LoadOptions, LoadedObject, ObjectIdentity};
use crate::sys::{self, info::MapInfo, map as sysmap, LinkFd, MapFd, ProgFd};
use crate::tc::{Socket, TcHandle};

/// Where the program to upgrade runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// A cls_bpf filter under `parent` (pref and handle 0: the only bpf
    /// filter there).
    Filter {
        /// The clsact hook or class.
        parent: TcHandle,
        /// The filter's pref (0: any).
        pref: u16,
        /// The filter's handle (0: any).
        handle: u32,
    },
    /// A tcx link on one side of the device: the one pinned at `link`, or
    /// the only link there.
    Tcx {
        /// The side.
        direction: Direction,
        /// The link's pin.
        link: Option<PathBuf>,
    },
}

/// One upgrade: where, the new object, how to load it and the per-map
/// modes the user chose.
#[derive(Debug, Clone)]
pub struct Request {
    /// The device's index (in the caller's network namespace).
    pub ifindex: u32,
    /// The hook.
    pub hook: Hook,
    /// The new object file.
    pub object: PathBuf,
    /// How to load it (section or program, bpffs, pinning table).
    pub load: LoadOptions,
    /// `map NAME { copy | sum | fresh }`.
    pub modes: Vec<(String, Mode)>,
}

/// What runs at the hook now.
#[derive(Debug)]
enum Attached {
    Filter(FilterEntry),
    Link { link: LinkFd, id: u32 },
}

/// A map of the running program.
#[derive(Debug)]
struct OldMap {
    info: MapInfo,
    fd: MapFd,
    btf: Option<Arc<Btf>>,
}

/// The plan, with everything found to make it: nothing has changed yet.
#[derive(Debug)]
pub struct Prepared {
    prog: ProgFd,
    prog_id: u32,
    prog_name: String,
    attached: Attached,
    old_maps: Vec<OldMap>,
    spec: ObjectSpec,
    identity: ObjectIdentity,
    plans: Vec<MapPlan>,
    entries: Vec<Option<usize>>,
    /// Temporary pins of an upgrade killed after its swap: the running
    /// program uses their maps; renaming them completes that upgrade.
    interrupted: Vec<(PathBuf, PathBuf)>,
}

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
    /// The new object (None when the upgrade only completed an earlier
    /// one that was interrupted after its swap).
    pub object: Option<LoadedObject>,
}

fn find_err(message: String, kind: crate::ErrorKind) -> Error {
    Error::new(Step::Find, None, kind, message)
}

/// Finds what runs at the hook and plans the upgrade; changes nothing.
pub fn prepare(req: &Request) -> Result<Prepared, Error> {
    let (prog_id, attached) = running(req)?;
    let prog = sys::obj::prog_by_id(prog_id)
        .map_err(|e| Error::sys(Step::Find, None, format!("program {prog_id}"), e))?;
    let info = sys::info::prog_info(&prog)
        .map_err(|e| Error::sys(Step::Find, None, format!("program {prog_id}"), e))?;
    let mut old_maps = Vec::new();
    for id in &info.map_ids {
        let err = |e| Error::sys(Step::Find, None, format!("map id {id}"), e);
        let fd = sys::obj::map_by_id(*id, 0).map_err(err)?;
        let minfo = sys::info::map_info(&fd).map_err(err)?;
        let btf = kernel_btf(&minfo).map_err(|e| {
            Error::new(
                Step::Find,
                Some(minfo.name.clone()),
                crate::ErrorKind::System,
                format!("BTF of map id {id}: {e}"),
            )
        })?;
        old_maps.push(OldMap {
            info: minfo,
            fd,
            btf,
        });
    }
    let bytes = sys::file::read_regular(&req.object, sys::file::MAX_OBJECT_BYTES).map_err(|e| {
        Error::new(
            Step::Load,
            None,
            crate::ErrorKind::from_io(&e),
            format!("{}: {e}", req.object.display()),
        )
    })?;
    let identity = ObjectIdentity::of(&req.object, &bytes).map_err(Error::load)?;
    let spec = ObjectSpec::parse(&req.object.display().to_string(), &bytes)
        .map_err(|e| Error::load(e.into()))?;
    load::select_program(&spec, &req.load).map_err(Error::load)?;
    for (name, _) in &req.modes {
        if !spec.maps.iter().any(|m| &m.name == name) {
            return Err(Error::new(
                Step::Plan,
                Some(name.clone()),
                crate::ErrorKind::BadInput,
                format!("map '{name}' is not in {}", req.object.display()),
            ));
        }
    }
    let mut notes = Vec::new();
    let mut plans = Vec::new();
    let mut entries = Vec::new();
    for m in &spec.maps {
        let m = load::map_defaults::apply(m, &mut notes).map_err(|reason| {
            Error::new(
                Step::Plan,
                Some(m.name.clone()),
                crate::ErrorKind::BadInput,
                reason,
            )
        })?;
        let new_btf = spec
            .btf
            .as_ref()
            .filter(|_| m.btf_value_type_id != 0)
            .map(|b| (b, m.btf_key_type_id, m.btf_value_type_id));
        let new_side = MapSide {
            name: &m.name,
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
            btf: new_btf,
            global_data: m.origin == MapOrigin::GlobalData,
        };
        let old = old_maps
            .iter()
            .find(|o| plan::same_name(&o.info.name, &m.name));
        let old_side = old.and_then(|o| {
            Some(MapSide {
                name: &o.info.name,
                map_type: o.info.kind()?,
                key_size: o.info.key_size,
                value_size: o.info.value_size,
                max_entries: o.info.max_entries,
                flags: o.info.map_flags,
                btf: o
                    .btf
                    .as_deref()
                    .map(|b| (b, o.info.btf_key_type_id, o.info.btf_value_type_id)),
                global_data: false,
            })
        });
        let asked = req
            .modes
            .iter()
            .find(|(n, _)| *n == m.name)
            .map(|(_, md)| *md);
        let action = plan::plan_map(old_side.as_ref(), &new_side, asked);
        entries.push(None);
        plans.push(MapPlan {
            name: m.name.clone(),
            old_id: old.map(|o| o.info.id),
            action,
        });
    }
    // Temporary pins whose maps the running program uses: an upgrade was
    // killed after its swap, before its renames.
    let db = load::pin::read_pinning_db(&req.load.pinning_db);
    let mut interrupted = Vec::new();
    for m in &spec.maps {
        let Some(path) = load::pin::pin_path(&req.load.bpffs, &identity.sha1_hex, m, &db) else {
            continue;
        };
        let temp = temp_pin(&path);
        if temp.symlink_metadata().is_err() {
            continue;
        }
        let id = sys::obj::get_pinned_map(&temp, sys::obj::open::RDONLY)
            .and_then(|fd| sys::info::map_info(&fd))
            .map(|i| i.id);
        if matches!(id, Ok(id) if info.map_ids.contains(&id)) {
            interrupted.push((temp, path));
        }
    }
    Ok(Prepared {
        prog,
        prog_id,
        prog_name: info.name,
        attached,
        old_maps,
        spec,
        identity,
        plans,
        entries,
        interrupted,
    })
}

/// The BTF of a map, from the kernel.
fn kernel_btf(info: &MapInfo) -> Result<Option<Arc<Btf>>, String> {
    if info.btf_id == 0 || info.btf_value_type_id == 0 {
        return Ok(None);
    }
    let fd = sys::obj::btf_by_id(info.btf_id).map_err(|e| e.to_string())?;
    let data = sys::info::btf_data(&fd).map_err(|e| e.to_string())?;
    Btf::parse(&data)
        .map(|b| Some(Arc::new(b)))
        .map_err(|e| e.to_string())
}

/// The program at the hook and how it is attached.
fn running(req: &Request) -> Result<(u32, Attached), Error> {
    match &req.hook {
        Hook::Filter {
            parent,
            pref,
            handle,
        } => {
            let sock = Socket::open().map_err(|e| Error::tc(Step::Find, e))?;
            let sel = FilterSelector {
                ifindex: req.ifindex,
                parent: *parent,
                pref: *pref,
                protocol: None,
                handle: 0,
                chain: None,
            };
            let all = filter::list(&sock, &sel).map_err(|e| Error::tc(Step::Find, e))?;
            let found: Vec<FilterEntry> = all
                .into_iter()
                .filter(|f| f.handle != 0 && (*handle == 0 || f.handle == *handle))
                .filter(|f| f.bpf.as_ref().and_then(|b| b.prog_id).is_some())
                .collect();
            let where_ = format!(
                "parent {parent}{}{}",
                if *pref != 0 {
                    format!(" pref {pref}")
                } else {
                    String::new()
                },
                if *handle != 0 {
                    format!(" handle {handle:#x}")
                } else {
                    String::new()
                }
            );
            match found.as_slice() {
                [] => Err(find_err(
                    format!("no bpf filter at {where_}"),
                    crate::ErrorKind::NotFound,
                )),
                [f] => {
                    let opts = f.bpf.as_ref().expect("filtered on bpf");
                    if opts.has_actions {
                        return Err(find_err(
                            format!("the filter at {where_} carries actions; upgrade replaces filters without"),
                            crate::ErrorKind::BadInput,
                        ));
                    }
                    Ok((
                        opts.prog_id.expect("filtered on prog_id"),
                        Attached::Filter(f.clone()),
                    ))
                }
                many => Err(find_err(
                    format!(
                        "{} bpf filters at {where_}: name one with pref and handle",
                        many.len()
                    ),
                    crate::ErrorKind::BadInput,
                )),
            }
        }
        Hook::Tcx { direction, link } => {
            let (link, info) = match link {
                Some(pin) => tcx::open_pinned(pin).map_err(|e| Error::tc(Step::Find, e))?,
                None => {
                    let progs =
                        tcx::list(req.ifindex, *direction).map_err(|e| Error::tc(Step::Find, e))?;
                    let linked: Vec<_> = progs.iter().filter(|p| p.link_id != 0).collect();
                    let [one] = linked.as_slice() else {
                        return Err(find_err(
                            format!(
                                "{} tcx links on {direction}: name one with link PATH",
                                linked.len()
                            ),
                            if linked.is_empty() {
                                crate::ErrorKind::NotFound
                            } else {
                                crate::ErrorKind::BadInput
                            },
                        ));
                    };
                    let fd = sys::obj::link_by_id(one.link_id).map_err(|e| {
                        Error::sys(Step::Find, None, format!("link {}", one.link_id), e)
                    })?;
                    let info = sys::link::link_info(&fd).map_err(|e| {
                        Error::sys(Step::Find, None, format!("link {}", one.link_id), e)
                    })?;
                    (fd, info)
                }
            };
            if info.ifindex != req.ifindex
                || Direction::from_attach_type(info.attach_type) != Some(*direction)
            {
                return Err(find_err(
                    format!(
                        "link {} is not on this device's tcx {direction} hook",
                        info.id
                    ),
                    crate::ErrorKind::BadInput,
                ));
            }
            Ok((info.prog_id, Attached::Link { link, id: info.id }))
        }
    }
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
            notes: self
                .interrupted
                .iter()
                .map(|(temp, _)| {
                    format!(
                        "{} is the running program's map: an earlier upgrade stopped after its swap",
                        temp.display()
                    )
                })
                .collect(),
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
    fn new_name(&self, req: &Request) -> String {
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

    fn old_map(&self, name: &str) -> Option<&OldMap> {
        self.old_maps
            .iter()
            .find(|o| plan::same_name(&o.info.name, name))
    }

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

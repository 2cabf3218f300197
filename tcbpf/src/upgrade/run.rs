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

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::convert::Converter;
use super::entries::Entries;
use super::plan::{self, Action, MapPlan, MapSide, Migration, Mode};
use super::{Error, Step};
use crate::abi::MapType;
use crate::btf::Btf;
use crate::elf::{MapOrigin, ObjectSpec};
use crate::load::{self, LoadOptions, LoadedObject, ObjectIdentity};
use crate::sys::{self, info::MapInfo, map as sysmap, LinkFd, MapFd, ProgFd};
use crate::tc::attach::{self, AttachTarget};
use crate::tc::filter::{self, cls_flags, FilterEntry, FilterSelector, Mode as FilterMode};
use crate::tc::tcx::{self, Direction};
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

/// The temporary name of the pin at `path` while an upgrade runs (bpffs
/// takes no '.' in names).
fn temp_pin(path: &Path) -> PathBuf {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{file}__upgrading"))
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
            let snap = copy(&p.name, mig, old, &new.fd)?;
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
        report.notes.extend(object.notes.iter().cloned());
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

/// The old map's entries at the time of the copy.
#[derive(Debug)]
struct Snapshot {
    entries: Entries,
    old_sizes: sysmap::ElemSizes,
    new_sizes: sysmap::ElemSizes,
}

/// Converts a whole value buffer (every CPU's copy) of the old map into
/// `out` (zeroed, the new map's whole value size).
fn convert_into(
    conv: &Converter,
    old: &[u8],
    out: &mut [u8],
    old_sizes: &sysmap::ElemSizes,
    new_sizes: &sysmap::ElemSizes,
) -> Result<(), super::convert::DoesNotFit> {
    let (os, ns) = (old_sizes.cpu_stride(), new_sizes.cpu_stride());
    for cpu in 0..old_sizes.cpus().max(1) {
        conv.convert(&old[cpu * os..], &mut out[cpu * ns..])?;
    }
    Ok(())
}

/// [`convert_into`] a new buffer.
fn convert_value(
    conv: &Converter,
    old: &[u8],
    old_sizes: &sysmap::ElemSizes,
    new_sizes: &sysmap::ElemSizes,
) -> Result<Vec<u8>, super::convert::DoesNotFit> {
    let mut out = vec![0u8; new_sizes.value()];
    convert_into(conv, old, &mut out, old_sizes, new_sizes)?;
    Ok(out)
}

/// Copies every entry of `old` into `new` through the converter, checking
/// first that they fit; returns the snapshot for reconciliation.
fn copy(name: &str, mig: &Migration, old: &OldMap, new: &MapFd) -> Result<Snapshot, Error> {
    let sys_err = |e| Error::sys(Step::Copy, Some(name.into()), format!("map '{name}'"), e);
    let old_sizes = sysmap::ElemSizes::of(&old.fd).map_err(sys_err)?;
    let new_sizes = sysmap::ElemSizes::of(new).map_err(sys_err)?;
    let new_info = sys::info::map_info(new).map_err(sys_err)?;
    let entries =
        Entries::read(&old.fd, &old_sizes).map_err(|e| Error::maps(Step::Copy, name, e))?;
    let not_fit = |reason: String| {
        Error::new(
            Step::Copy,
            Some(name.into()),
            crate::ErrorKind::BadInput,
            format!("map '{name}': {reason}"),
        )
    };
    let is_array = matches!(
        new_info.kind(),
        Some(MapType::Array) | Some(MapType::PercpuArray)
    );
    let mut converted = Entries::with_sizes(&new_sizes, entries.len());
    for i in 0..entries.len() {
        let (k, v) = (entries.key(i), entries.value(i));
        if is_array && mig.shrinks_array {
            let index = u32::from_ne_bytes(k[..4].try_into().expect("array keys are 4 bytes"));
            if index >= new_info.max_entries {
                if v.iter().any(|b| *b != 0) {
                    return Err(not_fit(format!(
                        "index {index} holds a value but the new array has {} entries",
                        new_info.max_entries
                    )));
                }
                continue;
            }
        }
        let out = converted.push_zeroed(k);
        convert_into(&mig.value, v, out, &old_sizes, &new_sizes)
            .map_err(|e| not_fit(format!("the value at key {}: {e}", hex(k))))?;
    }
    if !is_array && converted.len() > new_info.max_entries as usize {
        return Err(not_fit(format!(
            "{} entries do not fit in {} (max_entries of the new map)",
            converted.len(),
            new_info.max_entries
        )));
    }
    converted
        .write(new, &new_sizes)
        .map_err(|e| Error::maps(Step::Copy, name, e))?;
    Ok(Snapshot {
        entries,
        old_sizes,
        new_sizes,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until every non-sleepable BPF program that was running when it
/// was called has finished: an update of a map-in-map slot makes the
/// bpf(2) call wait for an RCU grace period (the kernel's
/// `maybe_wait_bpf_programs`). tc programs run inside an RCU read-side
/// section, so after this returns a program swapped out before the call
/// runs nowhere.
pub fn wait_for_old_programs() -> sys::Result<()> {
    let inner = sysmap::create(&sysmap::MapCreate {
        map_type: MapType::Array as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "tcbpf_rcu_in",
        ..Default::default()
    })?;
    let outer = sysmap::create(&sysmap::MapCreate {
        map_type: MapType::ArrayOfMaps as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "tcbpf_rcu",
        inner_map_fd: Some(inner.as_fd()),
        ..Default::default()
    })?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&inner) as u32;
    sysmap::update(
        &outer,
        &0u32.to_ne_bytes(),
        &fd.to_ne_bytes(),
        sysmap::update::ANY,
    )
}

/// Adds the old program's writes since the copy to the new map.
fn reconcile(mig: &Migration, snap: &Snapshot, old: &MapFd, new: &MapFd) -> Result<(), String> {
    let fin = Entries::read(old, &snap.old_sizes).map_err(|e| e.to_string())?;
    match mig.mode {
        Mode::Sum => reconcile_sum(mig, snap, &fin, new),
        Mode::Copy => reconcile_copy(mig, snap, &fin, new),
        Mode::Fresh => Ok(()),
    }
}

fn read_uint(b: &[u8], size: usize) -> u64 {
    let mut v = [0u8; 8];
    if cfg!(target_endian = "little") {
        v[..size].copy_from_slice(&b[..size]);
        u64::from_le_bytes(v)
    } else {
        v[8 - size..].copy_from_slice(&b[..size]);
        u64::from_be_bytes(v)
    }
}

fn write_uint(b: &mut [u8], size: usize, x: u64) {
    if cfg!(target_endian = "little") {
        b[..size].copy_from_slice(&x.to_le_bytes()[..size]);
    } else {
        b[..size].copy_from_slice(&x.to_be_bytes()[8 - size..]);
    }
}

/// `sum`: new += convert(final − snapshot), counter by counter, with the
/// kernel's atomic add so the new program's own increments are kept.
fn reconcile_sum(
    mig: &Migration,
    snap: &Snapshot,
    fin: &Entries,
    new: &MapFd,
) -> Result<(), String> {
    let (os, ns) = (&snap.old_sizes, &snap.new_sizes);
    let old_value = mig.value.old_size();
    let mut adders: HashMap<(usize, usize), crate::atomic::AtomicAdd> = HashMap::new();
    let zero = vec![0u8; os.value()];
    // The walk order of an unchanged map is the same: compare by position,
    // and index the snapshot only when a key is not where it was.
    let mut index = None;
    for i in 0..fin.len() {
        let (k, fv) = (fin.key(i), fin.value(i));
        let sv = if i < snap.entries.len() && snap.entries.key(i) == k {
            snap.entries.value(i)
        } else {
            let index = index.get_or_insert_with(|| snap.entries.index());
            match index.get(k) {
                Some(&j) => snap.entries.value(j),
                None => &zero,
            }
        };
        if sv == fv {
            continue;
        }
        // The delta of every counter, summed over CPUs, in the old layout.
        let mut delta = vec![0u8; old_value];
        let mut any = false;
        for &(off, size) in &mig.old_counters {
            let mut d: u64 = 0;
            for cpu in 0..os.cpus().max(1) {
                let base = cpu * os.cpu_stride() + off;
                let f = read_uint(&fv[base..], size);
                let s = read_uint(&sv[base..], size);
                d = d.wrapping_add(f.wrapping_sub(s));
            }
            if size < 8 {
                d &= (1u64 << (size * 8)) - 1;
            }
            any |= d != 0;
            write_uint(&mut delta[off..], size, d);
        }
        if !any {
            continue;
        }
        let mut nd = vec![0u8; mig.value.new_size()];
        mig.value
            .convert(&delta, &mut nd)
            .map_err(|e| e.to_string())?;
        // A key the new map lacks gets the delta as its value (on CPU 0).
        let mut whole = vec![0u8; ns.value()];
        whole[..nd.len()].copy_from_slice(&nd);
        match sysmap::update(new, k, &whole, sysmap::update::NOEXIST) {
            Ok(()) => continue,
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e.to_string()),
        }
        for &(off, size) in &mig.new_counters {
            let d = read_uint(&nd[off..], size);
            if d == 0 {
                continue;
            }
            let width = match size {
                4 => crate::atomic::Width::U32,
                8 => crate::atomic::Width::U64,
                _ => {
                    return Err(format!(
                        "a {size}-byte counter at offset {off} cannot be added atomically"
                    ))
                }
            };
            let adder = match adders.entry((off, size)) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    crate::atomic::AtomicAdd::new(
                        new.as_fd(),
                        ns.key() as u32,
                        mig.value.new_size() as u32,
                        off as u32,
                        width,
                    )
                    .map_err(|e| e.to_string())?,
                ),
            };
            adder.add(k, d).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `copy`: for every key whose old value changed since the copy, the old
/// final value goes in unless the new map no longer holds what was copied
/// (the new program wrote it since the swap).
fn reconcile_copy(
    mig: &Migration,
    snap: &Snapshot,
    fin: &Entries,
    new: &MapFd,
) -> Result<(), String> {
    let (os, ns) = (&snap.old_sizes, &snap.new_sizes);
    let snap_index = snap.entries.index();
    let fin_index = fin.index();
    let mut keys: Vec<&[u8]> = (0..fin.len()).map(|i| fin.key(i)).collect();
    keys.extend(
        (0..snap.entries.len())
            .map(|i| snap.entries.key(i))
            .filter(|k| !fin_index.contains_key(k)),
    );
    let mut current = vec![0u8; ns.value()];
    for k in keys {
        let before = snap_index.get(k).map(|&j| snap.entries.value(j));
        let after = fin_index.get(k).map(|&j| fin.value(j));
        if before == after {
            continue;
        }
        let expected = match before {
            Some(v) => Some(convert_value(&mig.value, v, os, ns).map_err(|e| e.to_string())?),
            None => None,
        };
        let now = match sysmap::lookup(new, k, &mut current, 0) {
            Ok(()) => Some(current.clone()),
            Err(e) if e.errno() == Some(libc::ENOENT) => None,
            Err(e) => return Err(e.to_string()),
        };
        if now != expected {
            continue; // the new program wrote it: its value wins
        }
        match after {
            Some(v) => {
                let nv = convert_value(&mig.value, v, os, ns).map_err(|e| e.to_string())?;
                sysmap::update(new, k, &nv, sysmap::update::ANY).map_err(|e| e.to_string())?;
            }
            None => match sysmap::delete(new, k) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e.to_string()),
            },
        }
    }
    Ok(())
}

/// New pins made at temporary names before the swap, renamed over the
/// real ones after it; removed again when the upgrade stops before.
#[derive(Debug, Default)]
struct PendingPins {
    /// (temporary, final) paths.
    pending: Vec<(PathBuf, PathBuf)>,
    /// Directories made for them.
    dirs: Vec<PathBuf>,
    done: bool,
}

impl PendingPins {
    fn prepare(
        &mut self,
        bpffs: &Path,
        name: &str,
        fd: &MapFd,
        path: &Path,
        old_id: Option<u32>,
    ) -> Result<(), Error> {
        let fail =
            |kind, message: String| Error::new(Step::Pin, Some(name.to_string()), kind, message);
        let new_id = sys::info::map_info(fd)
            .map_err(|e| Error::sys(Step::Pin, Some(name.into()), format!("map '{name}'"), e))?
            .id;
        if path.symlink_metadata().is_ok() {
            let pinned = sys::obj::get_pinned_map(path, sys::obj::open::RDONLY)
                .and_then(|m| sys::info::map_info(&m))
                .map(|i| i.id);
            match pinned {
                Ok(id) if id == new_id => return Ok(()), // a reused map, pinned already
                Ok(id) if Some(id) == old_id => {}
                _ => {
                    return Err(fail(
                        crate::ErrorKind::BadInput,
                        format!(
                            "map '{name}': a pin in the way at {} (not the running program's map)",
                            path.display()
                        ),
                    ))
                }
            }
        }
        if path.starts_with(bpffs) {
            sys::fs::ensure_bpffs(bpffs).map_err(|e| {
                Error::sys(
                    Step::Pin,
                    Some(name.into()),
                    format!("bpffs {}", bpffs.display()),
                    e,
                )
            })?;
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut missing = Vec::new();
        for d in dir.ancestors() {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
        }
        for d in missing.into_iter().rev() {
            std::fs::create_dir(&d).map_err(|e| {
                fail(
                    crate::ErrorKind::from_io(&e),
                    format!("mkdir {}: {e}", d.display()),
                )
            })?;
            self.dirs.push(d);
        }
        let temp = temp_pin(path);
        // A temporary pin left by an upgrade killed before its swap.
        let _ = std::fs::remove_file(&temp);
        sys::obj::pin(fd, &temp)
            .map_err(|e| Error::sys(Step::Pin, Some(name.into()), format!("map '{name}'"), e))?;
        self.pending.push((temp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every temporary pin over its final path; what fails is
    /// returned as notes.
    fn commit(mut self) -> Vec<String> {
        self.done = true;
        let mut notes = Vec::new();
        for (temp, path) in std::mem::take(&mut self.pending) {
            if let Err(e) = std::fs::rename(&temp, &path) {
                notes.push(format!(
                    "pin {}: rename from {}: {e}",
                    path.display(),
                    temp.display()
                ));
            }
        }
        notes
    }

    fn abandon(&mut self) {
        for (temp, _) in self.pending.drain(..) {
            let _ = std::fs::remove_file(temp);
        }
        for d in self.dirs.drain(..).rev() {
            let _ = std::fs::remove_dir(d);
        }
        self.done = true;
    }
}

impl Drop for PendingPins {
    fn drop(&mut self) {
        if !self.done {
            self.abandon();
        }
    }
}

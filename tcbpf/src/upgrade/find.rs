//! Finding what runs at the hook ([`prepare`]): the program, how it is
//! attached, its maps by the kernel's `map_ids` with their BTF, and the
//! plan for every map of the new object. Reads only: nothing changes here.

use std::path::PathBuf;
use std::sync::Arc;

use super::plan::{self, MapPlan, MapSide, Mode};
use super::{Error, Step};
use crate::attach::cls_bpf::{self as filter, FilterEntry, FilterSelector};
use crate::attach::tcx::{self, Direction};
use crate::btf::Btf;
use crate::elf::{MapOrigin, ObjectSpec};
use crate::load::{self, LoadOptions, ObjectIdentity};
use crate::sys::{self, info::MapInfo, LinkFd, MapFd, ProgFd};
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
pub(super) enum Attached {
    Filter(FilterEntry),
    Link { link: LinkFd, id: u32 },
}

/// A map of the running program.
#[derive(Debug)]
pub(super) struct OldMap {
    pub(super) info: MapInfo,
    pub(super) fd: MapFd,
    pub(super) btf: Option<Arc<Btf>>,
}

/// The plan, with everything found to make it: nothing has changed yet.
#[derive(Debug)]
pub struct Prepared {
    pub(super) prog: ProgFd,
    pub(super) prog_id: u32,
    pub(super) prog_name: String,
    pub(super) attached: Attached,
    pub(super) old_maps: Vec<OldMap>,
    pub(super) spec: ObjectSpec,
    pub(super) identity: ObjectIdentity,
    pub(super) plans: Vec<MapPlan>,
    pub(super) entries: Vec<Option<usize>>,
    /// The transaction directory of an upgrade of this hook that was
    /// killed: [`Prepared::execute`] undoes or finishes it first.
    pub(super) pending: Option<super::txn::Pending>,
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
    let pending = super::txn::Pending::find(
        &req.load.bpffs,
        &super::txn::hook_id(req.ifindex, &attached),
    );
    super::checkpoint::reached("found");
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
        pending,
    })
}

/// The BTF of a map, from the kernel.
pub(super) fn kernel_btf(info: &MapInfo) -> Result<Option<Arc<Btf>>, String> {
    if info.btf_id == 0 || info.btf_value_type_id == 0 {
        return Ok(None);
    }
    let fd = sys::obj::btf_by_id(info.btf_id).map_err(|e| e.to_string())?;
    let data = sys::info::btf_data(&fd).map_err(|e| e.to_string())?;
    Btf::parse(&data)
        .map(|b| Some(Arc::new(b)))
        .map_err(|e| e.to_string())
}

/// The filters under `parent` at `pref` (0: every pref) on `ifindex`, as
/// rtnetlink lists them.
pub(super) fn filters_at(
    ifindex: u32,
    parent: TcHandle,
    pref: u16,
) -> Result<Vec<FilterEntry>, Error> {
    let sock = Socket::open().map_err(|e| Error::tc(Step::Find, e))?;
    let sel = FilterSelector {
        ifindex,
        parent,
        pref,
        protocol: None,
        handle: 0,
        chain: None,
    };
    filter::list(&sock, &sel).map_err(|e| Error::tc(Step::Find, e))
}

/// The program at the hook and how it is attached.
pub(super) fn running(req: &Request) -> Result<(u32, Attached), Error> {
    match &req.hook {
        Hook::Filter {
            parent,
            pref,
            handle,
        } => {
            let found: Vec<FilterEntry> = filters_at(req.ifindex, *parent, *pref)?
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

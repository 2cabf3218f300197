//! What runs at a device's hooks, for `map watch dev DEV` and the
//! exporter's `dev DEV`: the cls_bpf filters and tcx programs of each
//! direction asked ([`crate::attach::discover`]) and, with ingress, the
//! device's XDP programs ([`crate::attach::xdp::query`]), each with its
//! place on the device and its program info (the ids of the maps it uses,
//! its tag, its run statistics). Reads only: nothing here attaches,
//! detaches or opens a map.

use super::words::Error;
use crate::attach::discover::{self, Hook};
use crate::attach::tcx::Direction;
use crate::attach::xdp::{self, XdpMode};
use crate::sys::info::ProgInfo;
use crate::tc::{device, Socket};
use crate::ErrorKind;

/// Where on a device a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A cls_bpf filter on the clsact qdisc.
    Filter {
        /// The hook's direction.
        direction: Direction,
        /// The filter's pref.
        pref: u16,
        /// The filter's handle.
        handle: u32,
    },
    /// A tcx program.
    Tcx {
        /// The hook's direction.
        direction: Direction,
        /// Its place in the hook's run order, from 0.
        position: usize,
        /// The link holding it (0 when attached without a link).
        link_id: u32,
    },
    /// An XDP program (it runs on receive: ingress).
    Xdp {
        /// The mode it runs in (never [`XdpMode::Auto`]).
        mode: XdpMode,
        /// The bpf link holding it (0: attached by netlink).
        link_id: u32,
    },
}

impl Place {
    /// The direction of the traffic the program sees (XDP: ingress).
    pub fn direction(&self) -> Direction {
        match *self {
            Place::Filter { direction, .. } | Place::Tcx { direction, .. } => direction,
            Place::Xdp { .. } => Direction::Ingress,
        }
    }

    /// The hook's kind and direction in `map watch`'s words: `cls_bpf
    /// ingress`, `tcx egress`, `xdpgeneric`….
    pub fn hook_words(&self) -> String {
        match self {
            Place::Filter { direction, .. } => format!("cls_bpf {direction}"),
            Place::Tcx { direction, .. } => format!("tcx {direction}"),
            Place::Xdp { mode, .. } => mode.word().to_string(),
        }
    }
}

/// One program found on a device: where, and what the kernel says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// Where it runs.
    pub place: Place,
    /// The program's info, read when it was found.
    pub prog: ProgInfo,
}

/// One program found at a hook, with the maps it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookProgram {
    /// Where it runs: `cls_bpf ingress`, `tcx egress`, `xdpgeneric`….
    pub place: String,
    /// The program's id.
    pub prog_id: u32,
    /// The program's name.
    pub prog_name: String,
    /// The ids of the maps it uses, in the kernel's order.
    pub map_ids: Vec<u32>,
}

/// Every program on device `dev`'s `directions` hooks, once per place it
/// holds (cls_bpf filters, then tcx programs in run order, per direction;
/// then XDP when `directions` holds ingress). A device that is not there
/// is [`ErrorKind::NotFound`]; a program detached while we look is left
/// out.
pub fn attached(dev: &str, directions: &[Direction]) -> Result<Vec<Attached>, Error> {
    let tc_err = |e: crate::tc::Error| {
        let kind = match e.errno {
            Some(libc::ENODEV) => ErrorKind::NotFound,
            _ => e.kind(),
        };
        Error::caused(kind, format!("dev {dev}: {e}"), e)
    };
    let sock = Socket::open().map_err(tc_err)?;
    let ifindex = device::ifindex(&sock, dev).map_err(|e| {
        let message = e.message.clone();
        let kind = match e.errno {
            Some(libc::ENODEV) => ErrorKind::NotFound,
            _ => e.kind(),
        };
        Error::caused(kind, message, e)
    })?;
    let mut found: Vec<(Place, u32)> = Vec::new();
    // tcx programs by their place in the run order of their hook.
    let mut tcx_at = [0usize; 2];
    for a in discover::attachments(&sock, ifindex, directions).map_err(tc_err)? {
        let place = match a.hook {
            Hook::Filter { pref, handle, .. } => Place::Filter {
                direction: a.direction,
                pref,
                handle,
            },
            Hook::Tcx { link_id } => {
                let at = &mut tcx_at[usize::from(a.direction == Direction::Egress)];
                *at += 1;
                Place::Tcx {
                    direction: a.direction,
                    position: *at - 1,
                    link_id,
                }
            }
        };
        found.push((place, a.prog_id));
    }
    if directions.contains(&Direction::Ingress) {
        for p in xdp::query(&sock, ifindex).map_err(tc_err)? {
            let place = Place::Xdp {
                mode: p.mode,
                link_id: p.link_id,
            };
            found.push((place, p.prog_id));
        }
    }
    let mut out = Vec::new();
    for (place, prog_id) in found {
        match discover::program(prog_id) {
            Ok(prog) => out.push(Attached { place, prog }),
            Err(e) if e.errno == Some(libc::ENOENT) => continue,
            Err(e) => return Err(tc_err(e)),
        }
    }
    Ok(out)
}

/// The programs on device `dev`'s `directions` hooks ([`attached`]), each
/// once per hook (a program attached twice on one hook is listed once).
pub fn programs_on(dev: &str, directions: &[Direction]) -> Result<Vec<HookProgram>, Error> {
    let mut out: Vec<HookProgram> = Vec::new();
    for a in attached(dev, directions)? {
        let place = a.place.hook_words();
        if out
            .iter()
            .any(|p| p.place == place && p.prog_id == a.prog.id)
        {
            continue;
        }
        out.push(HookProgram {
            place,
            prog_id: a.prog.id,
            prog_name: a.prog.name,
            map_ids: a.prog.map_ids,
        });
    }
    Ok(out)
}

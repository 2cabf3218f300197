//! The maps of what runs at a device's hooks, for `map watch dev DEV`: the
//! cls_bpf filters and tcx programs of each direction asked
//! ([`crate::attach::discover`], as the exporter finds them) and, with ingress,
//! the device's XDP programs ([`crate::attach::xdp::query`]), each with the
//! ids of the maps it uses. Reads only: nothing here attaches, detaches or
//! opens a map.

use super::words::Error;
use crate::attach::discover::{self, Hook};
use crate::attach::tcx::Direction;
use crate::attach::xdp;
use crate::tc::{device, Socket};
use crate::ErrorKind;

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

/// The programs on device `dev`'s `directions` hooks (cls_bpf, then tcx,
/// per direction; then XDP when `directions` holds ingress), each once per
/// place. A device that is not there is [`ErrorKind::NotFound`]; a program
/// detached while we look is left out.
pub fn programs_on(dev: &str, directions: &[Direction]) -> Result<Vec<HookProgram>, Error> {
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
    let mut found: Vec<(String, u32)> = Vec::new();
    for a in discover::attachments(&sock, ifindex, directions).map_err(tc_err)? {
        let kind = match a.hook {
            Hook::Filter { .. } => "cls_bpf",
            Hook::Tcx { .. } => "tcx",
        };
        found.push((format!("{kind} {}", a.direction), a.prog_id));
    }
    if directions.contains(&Direction::Ingress) {
        for p in xdp::query(&sock, ifindex).map_err(tc_err)? {
            found.push((p.mode.word().to_string(), p.prog_id));
        }
    }
    let mut out: Vec<HookProgram> = Vec::new();
    for (place, prog_id) in found {
        if out.iter().any(|p| p.place == place && p.prog_id == prog_id) {
            continue;
        }
        let info = match discover::program(prog_id) {
            Ok(info) => info,
            Err(e) if e.errno == Some(libc::ENOENT) => continue,
            Err(e) => return Err(tc_err(e)),
        };
        out.push(HookProgram {
            place,
            prog_id,
            prog_name: info.name.clone(),
            map_ids: info.map_ids.clone(),
        });
    }
    Ok(out)
}

//! What runs on a device: every cls_bpf filter on its clsact hooks (a
//! netlink filter dump; the program id comes from `TCA_BPF_ID`) and every
//! program on its tcx hooks (BPF_PROG_QUERY), with each program's info —
//! name, tag, the ids of the maps it uses and its run statistics.
//!
//! Used by the exporter and `map watch` to find maps with no configuration.
//! It reads only: nothing here attaches, detaches or opens a map.

use super::cls_bpf::{self, FilterSelector};
use super::tcx::{self, Direction};
use crate::sys::{self, info::ProgInfo};
use crate::tc::error::{Error, Result};
use crate::tc::handle::TcHandle;
use crate::tc::socket::Socket;

/// How a program is attached to the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// A cls_bpf filter on the clsact qdisc.
    Filter {
        /// The filter's pref.
        pref: u16,
        /// The filter's handle.
        handle: u32,
        /// `TCA_BPF_NAME` (`FILE:[SECTION]`), when the filter has one.
        name: Option<String>,
        /// `da`: the program's return value is a tc action (without it, a
        /// classid).
        direct_action: bool,
    },
    /// A tcx program.
    Tcx {
        /// The link holding it (0 when attached without a link).
        link_id: u32,
    },
}

/// One program found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The device's index.
    pub ifindex: u32,
    /// The hook's direction.
    pub direction: Direction,
    /// Filter or tcx.
    pub hook: Hook,
    /// The program's id.
    pub prog_id: u32,
}

/// The programs on the `directions` hooks of device `ifindex`: cls_bpf
/// filters first (in the kernel's order), then tcx programs (in run order).
/// A device without clsact simply has no filters.
pub fn attachments(
    sock: &Socket,
    ifindex: u32,
    directions: &[Direction],
) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for &direction in directions {
        let parent = match direction {
            Direction::Ingress => TcHandle::INGRESS,
            Direction::Egress => TcHandle::EGRESS,
        };
        let sel = FilterSelector {
            ifindex,
            parent,
            pref: 0,
            protocol: None,
            handle: 0,
            chain: None,
        };
        let filters = match cls_bpf::list(sock, &sel) {
            Ok(f) => f,
            Err(e) if e.errno == Some(libc::ENOENT) => Vec::new(),
            Err(e) => return Err(e),
        };
        for f in filters {
            let Some(prog_id) = f.bpf.as_ref().and_then(|o| o.prog_id) else {
                continue;
            };
            let direct_action = f.bpf.as_ref().is_some_and(|o| o.direct_action);
            out.push(Attachment {
                ifindex,
                direction,
                hook: Hook::Filter {
                    pref: f.pref,
                    handle: f.handle,
                    name: f.bpf.and_then(|o| o.name),
                    direct_action,
                },
                prog_id,
            });
        }
        for p in tcx::list(ifindex, direction)? {
            out.push(Attachment {
                ifindex,
                direction,
                hook: Hook::Tcx { link_id: p.link_id },
                prog_id: p.prog_id,
            });
        }
    }
    Ok(out)
}

/// The info of program `id` (name, tag, map ids, run statistics). A
/// program that went away in the meantime is an ENOENT error.
pub fn program(id: u32) -> Result<ProgInfo> {
    let fd = sys::obj::prog_by_id(id).map_err(Error::from)?;
    sys::info::prog_info(&fd).map_err(Error::from)
}

//! `tcbpf net show [ dev DEV ]`: every program attached to the devices of
//! the namespace — XDP (netlink or link), cls_bpf filters on the clsact
//! hooks and tcx programs — with program ids, names and maps, as `bpftool
//! net show` lists them (its JSON field names, plus `name`, `map_ids` and
//! `link_id`). Read-only: built on `attach::xdp::devices` and
//! `attach::discover::attachments`; `prog show` reuses [`attachments`] for its
//! attach points.

use super::error::CliError;
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::{json, Value};
use tcbpf::attach::discover::{self, Hook as TcHook};
use tcbpf::attach::tcx::Direction;
use tcbpf::attach::xdp::{self, XdpMode};
use tcbpf::tc::Socket;

/// Usage of `tcbpf net`, printed by `tcbpf net help`.
pub const USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] net show [ dev DEV ]
       tcbpf net help

  Lists every XDP program, cls_bpf filter (clsact) and tcx program on the
  devices of the namespace (or on DEV), with program id, name and map ids.
";

keywords! {
    /// The verbs of `tcbpf net`.
    pub(crate) enum NetVerb("net command") {
        Show = "show" | "list",
    }
}

/// Where a program is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// The device's XDP hook.
    Xdp {
        /// The mode it runs in.
        mode: XdpMode,
        /// The link holding it (0: netlink).
        link_id: u32,
    },
    /// A cls_bpf filter on a clsact hook.
    Clsact {
        /// Ingress or egress.
        direction: Direction,
        /// The filter's pref.
        pref: u16,
        /// The filter's handle.
        handle: u32,
        /// `FILE:[SECTION]`, when the filter has a name.
        name: Option<String>,
    },
    /// A tcx hook.
    Tcx {
        /// Ingress or egress.
        direction: Direction,
        /// The link holding it (0: none).
        link_id: u32,
    },
}

impl Point {
    /// bpftool's `kind` (`clsact/ingress`, `tcx/egress`) or XDP mode.
    pub fn kind(&self) -> String {
        match self {
            Point::Xdp { mode, .. } => format!("xdp/{mode}"),
            Point::Clsact { direction, .. } => format!("clsact/{direction}"),
            Point::Tcx { direction, .. } => format!("tcx/{direction}"),
        }
    }
}

/// One program attached to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The device's name.
    pub devname: String,
    /// The device's index.
    pub ifindex: u32,
    /// Where on it.
    pub point: Point,
    /// The program's id.
    pub prog_id: u32,
}

/// Every attachment on the namespace's devices (only `dev`'s, when given):
/// XDP first, then clsact filters and tcx programs, device by device.
pub fn attachments(sock: &Socket, dev: Option<&str>) -> Result<Vec<Attached>, CliError> {
    let mut devices = xdp::devices(sock)?;
    if let Some(dev) = dev {
        devices.retain(|d| d.name == dev);
        if devices.is_empty() {
            return Err(CliError::not_found(format!("no such device '{dev}'")));
        }
    }
    let mut out = Vec::new();
    for d in &devices {
        for p in &d.xdp {
            out.push(Attached {
                devname: d.name.clone(),
                ifindex: d.ifindex,
                point: Point::Xdp {
                    mode: p.mode,
                    link_id: p.link_id,
                },
                prog_id: p.prog_id,
            });
        }
    }
    for d in &devices {
        let found =
            discover::attachments(sock, d.ifindex, &[Direction::Ingress, Direction::Egress])
                .map_err(|e| CliError::from(e).context(format!("dev '{}'", d.name)))?;
        for a in found {
            let point = match a.hook {
                TcHook::Filter {
                    pref, handle, name, ..
                } => Point::Clsact {
                    direction: a.direction,
                    pref,
                    handle,
                    name,
                },
                TcHook::Tcx { link_id } => Point::Tcx {
                    direction: a.direction,
                    link_id,
                },
            };
            out.push(Attached {
                devname: d.name.clone(),
                ifindex: d.ifindex,
                point,
                prog_id: a.prog_id,
            });
        }
    }
    Ok(out)
}

/// Runs `tcbpf net …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    match NetVerb::choose(&w.expect("a net command")?)? {
        NetVerb::Show => {
            let dev = if w.eat("dev") {
                Some(w.expect("a device name after 'dev'")?)
            } else {
                None
            };
            w.finish()?;
            show(g, dev.as_deref())
        }
    }
}

fn show(g: &Global, dev: Option<&str>) -> Result<(), CliError> {
    let sock = Socket::open()?;
    let found = attachments(&sock, dev)?;
    // A program that went away since the listing shows without name and maps.
    let info = |id: u32| discover::program(id).ok();
    if g.json {
        let mut xdp = Vec::new();
        let mut tc = Vec::new();
        for a in &found {
            let i = info(a.prog_id);
            let mut v = json!({
                "devname": a.devname,
                "ifindex": a.ifindex,
            });
            match &a.point {
                Point::Xdp { mode, link_id } => {
                    v["mode"] = json!(mode.to_string());
                    v["id"] = json!(a.prog_id);
                    if *link_id != 0 {
                        v["link_id"] = json!(link_id);
                    }
                }
                Point::Clsact {
                    pref, handle, name, ..
                } => {
                    v["kind"] = json!(a.point.kind());
                    if let Some(n) = name {
                        v["name"] = json!(n);
                    }
                    v["pref"] = json!(pref);
                    v["handle"] = json!(handle);
                    v["id"] = json!(a.prog_id);
                }
                Point::Tcx { link_id, .. } => {
                    v["kind"] = json!(a.point.kind());
                    v["id"] = json!(a.prog_id);
                    if *link_id != 0 {
                        v["link_id"] = json!(link_id);
                    }
                }
            }
            if let Some(i) = &i {
                v["prog_name"] = json!(i.name);
                v["map_ids"] = json!(i.map_ids);
            }
            match a.point {
                Point::Xdp { .. } => xdp.push(v),
                _ => tc.push(v),
            }
        }
        let out: Value = json!([{ "xdp": xdp, "tc": tc }]);
        return g.print_json(&out).map_err(CliError::from);
    }
    let mut text = String::new();
    for (title, want_xdp) in [("xdp:", true), ("tc:", false)] {
        text.push_str(title);
        text.push('\n');
        for a in found
            .iter()
            .filter(|a| matches!(a.point, Point::Xdp { .. }) == want_xdp)
        {
            text.push_str(&line(a, info(a.prog_id).as_ref()));
            text.push('\n');
        }
        if want_xdp {
            text.push('\n');
        }
    }
    print!("{text}");
    Ok(())
}

/// One attachment as a text line: `v1(3) driver id 42 name xdp_verdict
/// maps 12,13`.
fn line(a: &Attached, info: Option<&tcbpf::sys::info::ProgInfo>) -> String {
    let mut s = format!("{}({}) ", a.devname, a.ifindex);
    match &a.point {
        Point::Xdp { mode, .. } => s += &mode.to_string(),
        Point::Clsact {
            name, pref, handle, ..
        } => {
            s += &a.point.kind();
            if let Some(n) = name {
                s += &format!(" {n}");
            }
            s += &format!(" pref {pref} handle {handle:#x}");
        }
        Point::Tcx { .. } => s += &a.point.kind(),
    }
    s += &format!(" id {}", a.prog_id);
    if let Some(i) = info {
        s += &format!(" name {}", i.name);
        if !i.map_ids.is_empty() {
            let ids: Vec<String> = i.map_ids.iter().map(u32::to_string).collect();
            s += &format!(" maps {}", ids.join(","));
        }
    }
    match a.point {
        Point::Xdp { link_id, .. } | Point::Tcx { link_id, .. } if link_id != 0 => {
            s += &format!(" link {link_id}")
        }
        _ => {}
    }
    s
}

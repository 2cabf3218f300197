//! `filter add|del|show dev DEV tcx { ingress | egress } …`: tcx links,
//! pinned so the attachment outlives the command (default pin
//! `BPFFS/tc/links/tcx-DEV-DIR-LINKID`), detached and unpinned by `del`.

use super::super::error::CliError;
use super::super::output::Global;
use super::{direction_word, prog_details, AttachTarget};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use tcbpf::sys::{self, link};
use tcbpf::tc::bpffs;
use tcbpf::tc::tcx::{self, Direction};

/// Attaches `prog` with a tcx link and pins the link; when pinning fails
/// the link is dropped, which detaches it.
pub fn attach(
    g: &Global,
    target: &AttachTarget,
    direction: Direction,
    prog: BorrowedFd<'_>,
) -> Result<(), CliError> {
    if let Some(path) = &target.link {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !bpffs::is_bpffs(dir) {
            return Err(CliError::usage(format!(
                "link '{}': {} is not on a bpffs",
                path.display(),
                dir.display()
            )));
        }
    }
    let link_fd = tcx::attach(target.ifindex, direction, prog)?;
    let id = link::link_info(&link_fd)?.id;
    let pin = match &target.link {
        Some(p) => p.clone(),
        None => bpffs::links_dir()?.join(format!(
            "tcx-{}-{}-{id}",
            target.dev,
            direction_word(direction)
        )),
    };
    sys::obj::pin(&link_fd, &pin).map_err(|e| CliError::from(e).context("pinning the tcx link"))?;
    if g.json {
        g.print_json(&json!({"link_id": id, "pinned": pin.display().to_string()}))?;
    } else {
        println!("tcx link {id} pinned at {}", pin.display());
    }
    Ok(())
}

/// Detaches the tcx links on the hook (or only the one pinned at `pin`)
/// and removes their pins under BPFFS/tc/links (and `pin`).
pub fn delete(
    _g: &Global,
    dev: &str,
    ifindex: u32,
    direction: Direction,
    pin: Option<&Path>,
) -> Result<(), CliError> {
    let hook = format!("dev '{dev}' tcx {}", direction_word(direction));
    if let Some(pin) = pin {
        let (link_fd, info) = tcx::open_pinned(pin)?;
        // A link detached earlier (ifindex 0) only needs its pin removed.
        let detached = info.ifindex == 0;
        if !detached
            && (info.ifindex != ifindex
                || Direction::from_attach_type(info.attach_type) != Some(direction))
        {
            return Err(CliError::usage(format!(
                "link '{}' is not attached to {hook}",
                pin.display()
            )));
        }
        if !detached {
            tcx::detach(&link_fd)?;
        }
        std::fs::remove_file(pin)
            .map_err(|e| CliError::from(e).context(format!("unpin '{}'", pin.display())))?;
        return Ok(());
    }
    let attached = tcx::list(ifindex, direction)?;
    if attached.is_empty() {
        return Err(CliError::not_found(format!("no programs on {hook}")));
    }
    let mut detached = BTreeSet::new();
    for p in attached.iter().filter(|p| p.link_id != 0) {
        let link_fd = sys::obj::link_by_id(p.link_id)?;
        tcx::detach(&link_fd)?;
        detached.insert(p.link_id);
    }
    let unlinked = attached.len() - detached.len();
    if unlinked > 0 {
        eprintln!("tcbpf: {unlinked} program(s) on {hook} were attached without a link and stay");
    }
    remove_pins_of(&detached);
    Ok(())
}

/// Removes the pins under BPFFS/tc/links that hold one of `ids`.
fn remove_pins_of(ids: &BTreeSet<u32>) {
    let dir: PathBuf = bpffs::root().join("tc").join("links");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok((fd, info)) = tcx::open_pinned(&path) else {
            continue;
        };
        drop(fd);
        if ids.contains(&info.id) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Lists the programs on the hook, in run order.
pub fn show(g: &Global, ifindex: u32, direction: Direction) -> Result<(), CliError> {
    let attached = tcx::list(ifindex, direction)?;
    let dir = direction_word(direction);
    if g.json {
        let list: Vec<Value> = attached
            .iter()
            .map(|p| {
                let mut prog = json!({"id": p.prog_id});
                if let Some(d) = prog_details(p.prog_id) {
                    prog["name"] = json!(d.name);
                    prog["tag"] = json!(d.tag);
                    prog["jited"] = json!(d.jited as u32);
                }
                json!({"tcx": dir, "prog": prog, "link_id": p.link_id})
            })
            .collect();
        g.print_json(&Value::Array(list))?;
        return Ok(());
    }
    for p in &attached {
        let mut line = format!("tcx {dir} prog id {} ", p.prog_id);
        if let Some(d) = prog_details(p.prog_id) {
            line += &format!("name {} tag {} ", d.name, d.tag);
            if d.jited {
                line += "jited ";
            }
        }
        line += &format!("link {}", p.link_id);
        println!("{line}");
    }
    Ok(())
}

//! `filter add|replace|del|show dev DEV tcx { ingress | egress } …`: tcx
//! links, pinned so the attachment outlives the command (default pin
//! `BPFFS/tc/links/tcx-DEV-DIR-LINKID`), placed at a position (head, tail,
//! before/after a program or link) with an optional revision check,
//! swapped in place by `replace … link PATH`, detached and unpinned by
//! `del`, listed in run order with the hook's revision by `show`.

use super::super::error::CliError;
use super::super::output::Global;
use super::args::{Position, Relative};
use super::Mode;
use super::{direction_word, prog_details, AttachTarget};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use tcbpf::attach as tc_attach;
use tcbpf::attach::tcx::{self, Direction};
use tcbpf::sys::{self, link};
use tcbpf::tc::bpffs;

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
    if target.attach.mode == Mode::Replace {
        return replace(g, target, direction, prog);
    }
    // Open what the position names before attaching anything.
    let opened = match &target.position {
        Some(Position::Before(r)) | Some(Position::After(r)) => Some(open_relative(r)?),
        _ => None,
    };
    let relative = opened.as_ref().map(|o| match o {
        Opened::Id(id) => tcx::Relative::ProgId(*id),
        Opened::Prog(fd) => tcx::Relative::Prog(fd.as_fd()),
        Opened::Link(fd) => tcx::Relative::Link(fd.as_fd()),
    });
    let anchor = match (&target.position, relative) {
        (Some(Position::Head), _) => tcx::Anchor::Head,
        (Some(Position::Before(_)), Some(r)) => tcx::Anchor::Before(r),
        (Some(Position::After(_)), Some(r)) => tcx::Anchor::After(r),
        _ => tcx::Anchor::Tail,
    };
    let lib = tc_attach::AttachTarget {
        anchor,
        ..target.attach.clone()
    };
    let (link_fd, id) = tc_attach::attach(&lib, prog.into(), "")
        .map_err(CliError::from)?
        .into_link()
        .expect("a tcx hook attaches a link");
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

/// What `before|after` names, opened.
enum Opened {
    Id(u32),
    Prog(sys::ProgFd),
    Link(sys::LinkFd),
}

fn open_relative(r: &Relative) -> Result<Opened, CliError> {
    Ok(match r {
        Relative::Id(id) => Opened::Id(*id),
        Relative::Pinned(p) => Opened::Prog(
            sys::obj::get_pinned_prog(p)
                .map_err(|e| CliError::from(e).context(format!("pinned '{}'", p.display())))?,
        ),
        Relative::Link(p) => Opened::Link(
            tcx::open_pinned(p)
                .map_err(|e| CliError::from(e).context(format!("link '{}'", p.display())))?
                .0,
        ),
    })
}

/// `replace … tcx DIR link PATH bpf PROG`: swaps the program behind the
/// link pinned at PATH (which must be on this hook) in place.
fn replace(
    g: &Global,
    target: &AttachTarget,
    direction: Direction,
    prog: BorrowedFd<'_>,
) -> Result<(), CliError> {
    let Some(path) = &target.link else {
        return Err(CliError::usage("replace on a tcx hook needs 'link PATH'"));
    };
    let (link_fd, info) = tcx::open_pinned(path)?;
    if info.ifindex != target.attach.ifindex
        || Direction::from_attach_type(info.attach_type) != Some(direction)
    {
        return Err(CliError::usage(format!(
            "link '{}' is not attached to dev '{}' tcx {}",
            path.display(),
            target.dev,
            direction_word(direction)
        )));
    }
    tcx::update(&link_fd, prog)
        .map_err(|e| CliError::from(e).context(format!("link '{}'", path.display())))?;
    let now = link::link_info(&link_fd)?;
    if g.json {
        g.print_json(&json!({
            "link_id": now.id,
            "pinned": path.display().to_string(),
            "old_prog_id": info.prog_id,
            "prog_id": now.prog_id,
        }))?;
    } else {
        println!(
            "tcx link {} at {}: program {} replaced by {}",
            now.id,
            path.display(),
            info.prog_id,
            now.prog_id
        );
    }
    Ok(())
}

/// Detaches the tcx links on the hook (or only the one pinned at `pin`)
/// and removes their pins under BPFFS/tc/links and BPFFS/tc/chains/*/
/// (and `pin`).
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
        remove_pins_of(&BTreeSet::from([info.id]));
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
        eline!("tcbpf: {unlinked} program(s) on {hook} were attached without a link and stay");
    }
    remove_pins_of(&detached);
    Ok(())
}

/// Removes the pins tcbpf made (see [`link_pin_dirs`]) that hold one of
/// `ids`: `filter del … tcx` leaves no pin of a link it detached, whether
/// `filter add` or `chain apply` pinned it.
fn remove_pins_of(ids: &BTreeSet<u32>) {
    for dir in link_pin_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
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
}

/// Where tcbpf pins tcx links: BPFFS/tc/links (`filter add`'s default)
/// and BPFFS/tc/chains/*/ (`chain apply`'s).
fn link_pin_dirs() -> Vec<PathBuf> {
    let tc = bpffs::root().join("tc");
    let mut dirs = vec![tc.join("links")];
    if let Ok(rd) = std::fs::read_dir(tc.join("chains")) {
        dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    dirs
}

/// The pins under [`link_pin_dirs`], by link id.
fn known_pins() -> std::collections::BTreeMap<u32, PathBuf> {
    let mut out = std::collections::BTreeMap::new();
    for dir in link_pin_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok((_, info)) = tcx::open_pinned(&path) {
                out.entry(info.id).or_insert(path);
            }
        }
    }
    out
}

/// Lists the programs on the hook in run order, each with its link (and
/// the link's pin when it is under BPFFS/tc/links or tc/chains), then the hook's
/// revision (text: a last line `revision N`; JSON: a `revision` key in
/// each element).
pub fn show(g: &Global, ifindex: u32, direction: Direction) -> Result<(), CliError> {
    let (attached, revision) = tcx::list_with_revision(ifindex, direction)?;
    let pins = known_pins();
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
                let mut v =
                    json!({"tcx": dir, "prog": prog, "link_id": p.link_id, "revision": revision});
                if let Some(pin) = pins.get(&p.link_id).filter(|_| p.link_id != 0) {
                    v["pinned"] = json!(pin.display().to_string());
                }
                v
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
        if let Some(pin) = pins.get(&p.link_id).filter(|_| p.link_id != 0) {
            line += &format!(" pinned {}", pin.display());
        }
        println!("{line}");
    }
    if !attached.is_empty() {
        println!("revision {revision}");
    }
    Ok(())
}

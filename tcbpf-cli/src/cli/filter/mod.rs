//! `tcbpf filter …` and `tcbpf qdisc …`: tc's words for the clsact qdisc,
//! cls_bpf filters and tcx links. Parsing is in [`args`], tc-compatible
//! output in [`show`], tcx in [`tcx`]; [`attach_program`] is the one place a
//! program descriptor gets attached, for `pinned PATH` here and for
//! `obj FILE` in `filter_obj`. The attaching itself is the library's
//! `tc::attach::attach`; this module turns the words into its target,
//! pins tcx links and prints.

mod args;
pub(crate) mod keywords;
mod show;
mod tcx;
mod upgrade;

use super::error::CliError;
use super::filter_obj;
use super::output::Global;
use super::words::Words;
pub(crate) use args::TcxHook;
use args::{FilterArgs, ProgSource, Verb};
pub use args::{Hook, FILTER_USAGE, QDISC_USAGE};
// For `tcbpf gen` (man pages, completions).
pub(super) use keywords::{FilterOption, FilterVerb, QdiscVerb};
use serde_json::Value;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use tcbpf::sys;
use tcbpf::tc::attach as tc_attach;
use tcbpf::tc::classic::{parse_bytecode, ClassicInsn};
use tcbpf::tc::filter::{self, FilterProg, FilterSelector, Mode};
use tcbpf::tc::tcx::Direction;
use tcbpf::tc::{device, qdisc, Protocol, Socket, TcHandle};

/// Where and how [`attach_program`] attaches: everything of a
/// `filter add|replace` line except the program itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTarget {
    /// `dev DEV`, for messages.
    pub dev: String,
    /// Its interface index (in the command's network namespace).
    pub ifindex: u32,
    /// The clsact hook, parent class, or tcx hook.
    pub hook: Hook,
    /// `add` or `replace`.
    pub mode: Mode,
    /// `pref N` (0: the kernel picks).
    pub pref: u16,
    /// `handle H` (0: the kernel picks).
    pub handle: u32,
    /// `protocol P` (default `all`).
    pub protocol: Protocol,
    /// `chain N`.
    pub chain: Option<u32>,
    /// `da`.
    pub direct_action: bool,
    /// `classid H:M`.
    pub classid: Option<TcHandle>,
    /// `skip_sw` / `skip_hw`.
    pub skip_flags: u32,
    /// `action bpf pinned PATH`…
    pub actions: Vec<PathBuf>,
    /// `link PATH` for tcx (default under BPFFS/tc/links/); for replace,
    /// the link whose program is swapped.
    pub link: Option<PathBuf>,
    /// tcx: where on the hook (None: tail).
    pub position: Option<args::Position>,
    /// tcx: the hook revision the attach expects.
    pub revision: Option<u64>,
}

/// The name tc shows for a pinned program: `BASENAME:[*fsobj]`.
pub fn pinned_name(path: &Path) -> String {
    tc_attach::pinned_name(path)
}

/// The library's description of `target` on `hook` (tcx: at the tail;
/// [`tcx::attach`] sets the anchor it opened).
fn library_target(target: &AttachTarget, hook: Hook) -> tc_attach::AttachTarget<'static> {
    tc_attach::AttachTarget {
        mode: target.mode,
        pref: target.pref,
        handle: target.handle,
        protocol: target.protocol,
        chain: target.chain,
        direct_action: target.direct_action,
        classid: target.classid,
        skip_flags: target.skip_flags,
        actions: target.actions.clone(),
        revision: target.revision,
        ..tc_attach::AttachTarget::new(target.ifindex, hook)
    }
}

/// Attaches `prog` to `target` under `name` (`FILE:[SECTION]` for objects):
/// a cls_bpf filter (creating the clsact qdisc when needed, and removing it
/// again if the filter fails) or a pinned tcx link.
pub fn attach_program(
    g: &Global,
    target: &AttachTarget,
    prog: BorrowedFd<'_>,
    name: &str,
) -> Result<(), CliError> {
    let on_dev = |e: CliError| e.context(format!("dev '{}'", target.dev));
    match target.hook {
        Hook::Tcx(direction) => tcx::attach(g, target, direction, prog).map_err(on_dev),
        Hook::Parent(parent) => attach_filter(target, parent, prog.into(), name),
        Hook::Xdp { .. } => Err(xdp_is_link_set()),
    }
}

/// The filter grammar has no XDP hook: XDP is `tcbpf link set … xdp`.
fn xdp_is_link_set() -> CliError {
    CliError::usage("XDP programs attach with 'tcbpf link set dev DEV xdp …'")
}

/// Attaches a cls_bpf filter running `prog` (eBPF or classic) under `parent`.
fn attach_filter(
    target: &AttachTarget,
    parent: TcHandle,
    prog: FilterProg<'_>,
    name: &str,
) -> Result<(), CliError> {
    let on_dev = |e: CliError| e.context(format!("dev '{}'", target.dev));
    match tc_attach::attach(&library_target(target, Hook::Parent(parent)), prog, name) {
        Ok(_) => Ok(()),
        Err(e @ tc_attach::AttachError::Attach(_)) => Err(on_dev(e.into())),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn open_socket_and_device(dev: &str) -> Result<(Socket, u32), CliError> {
    let sock = Socket::open()?;
    let ifindex = device::ifindex(&sock, dev)?;
    Ok((sock, ifindex))
}

/// Runs `tcbpf filter …`.
pub fn run_filter(g: &Global, w: &mut Words) -> Result<(), CliError> {
    // `filter upgrade` has a usage of its own, help included.
    if let Some(verb) = w.peek() {
        if keywords::FilterVerb::choose(verb).ok() == Some(keywords::FilterVerb::Upgrade) {
            w.next();
            return upgrade::run(g, w).map_err(|e| e.with_usage(upgrade::UPGRADE_USAGE));
        }
    }
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    let a = args::parse_filter(w)?;
    let (sock, ifindex) = open_socket_and_device(&a.dev)?;
    match (a.verb, a.hook) {
        (Verb::Add | Verb::Replace, _) => add(g, &a, ifindex),
        (Verb::Delete, Hook::Tcx(d)) => tcx::delete(g, &a.dev, ifindex, d, a.link.as_deref()),
        (Verb::Show, Hook::Tcx(d)) => tcx::show(g, ifindex, d),
        (Verb::Delete, Hook::Parent(parent)) => {
            filter::delete(&sock, &selector(&a, ifindex, parent))
                .map_err(|e| CliError::from(e).context(format!("dev '{}'", a.dev)))
        }
        (Verb::Show, Hook::Parent(parent)) => show_filters(g, &sock, &a, ifindex, parent),
        (_, Hook::Xdp { .. }) => Err(xdp_is_link_set()),
    }
}

fn selector(a: &FilterArgs, ifindex: u32, parent: TcHandle) -> FilterSelector {
    FilterSelector {
        ifindex,
        parent,
        pref: a.pref.unwrap_or(0),
        protocol: a.protocol,
        handle: a.handle.unwrap_or(0),
        chain: a.chain,
    }
}

fn add(g: &Global, a: &FilterArgs, ifindex: u32) -> Result<(), CliError> {
    let Some(bpf) = &a.bpf else {
        return Err(CliError::usage("expected 'bpf …'"));
    };
    let target = AttachTarget {
        dev: a.dev.clone(),
        ifindex,
        hook: a.hook,
        mode: if a.verb == Verb::Replace {
            Mode::Replace
        } else {
            Mode::Add
        },
        pref: a.pref.unwrap_or(0),
        handle: a.handle.unwrap_or(0),
        protocol: a.protocol.unwrap_or(Protocol::ALL),
        chain: a.chain,
        direct_action: bpf.direct_action || matches!(a.hook, Hook::Tcx(_)),
        classid: bpf.classid,
        skip_flags: bpf.skip_flags,
        actions: bpf.actions.clone(),
        link: a.link.clone(),
        position: a.position.clone(),
        revision: a.revision,
    };
    match &bpf.source {
        ProgSource::Obj(obj) => filter_obj::attach_object(g, &target, obj),
        ProgSource::Pinned(path) => {
            let prog = sys::obj::get_pinned_prog(path)
                .map_err(|e| CliError::from(e).context(format!("pinned '{}'", path.display())))?;
            attach_program(g, &target, prog.as_fd(), &pinned_name(path))
        }
        ProgSource::Classic(insns) => attach_classic(&target, insns),
        ProgSource::ClassicFile(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                CliError::from(e).context(format!("bytecode-file '{}'", file.display()))
            })?;
            let insns = parse_bytecode(&text)
                .map_err(|e| CliError::usage(format!("bytecode-file '{}': {e}", file.display())))?;
            attach_classic(&target, &insns)
        }
    }
}

/// Attaches a classic BPF program (tc sends it without a name).
fn attach_classic(target: &AttachTarget, insns: &[ClassicInsn]) -> Result<(), CliError> {
    match target.hook {
        Hook::Parent(parent) => attach_filter(target, parent, FilterProg::Classic(insns), ""),
        Hook::Tcx(_) => Err(CliError::usage(
            "tcx hooks take eBPF programs, not classic bytecode",
        )),
        Hook::Xdp { .. } => Err(xdp_is_link_set()),
    }
}

/// The name, tag and JIT state of program `id`, when it can be opened.
fn prog_details(id: u32) -> Option<show::ProgDetails> {
    let fd = sys::obj::prog_by_id(id).ok()?;
    let info = sys::info::prog_info(&fd).ok()?;
    Some(show::ProgDetails {
        name: info.name.clone(),
        tag: info.tag_hex(),
        jited: info.jited,
        load_time: info.load_time,
        created_by_uid: info.created_by_uid,
        btf_id: info.btf_id,
    })
}

fn show_filters(
    g: &Global,
    sock: &Socket,
    a: &FilterArgs,
    ifindex: u32,
    parent: TcHandle,
) -> Result<(), CliError> {
    let entries = filter::list(sock, &selector(a, ifindex, parent))
        .map_err(|e| CliError::from(e).context(format!("dev '{}'", a.dev)))?;
    let given = show::Given {
        pref: a.pref.is_some(),
        protocol: a.protocol.is_some(),
        chain: a.chain.is_some(),
        details: g.details,
    };
    if g.json {
        let list: Vec<Value> = entries
            .iter()
            .map(|e| show::json_entry(e, given, &prog_details))
            .collect();
        g.print_json(&Value::Array(list))?;
    } else {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for e in &entries {
            writeln!(out, "{}", show::text_line(e, given, &prog_details))?;
        }
    }
    Ok(())
}

/// Runs `tcbpf qdisc { add | del } dev DEV clsact`.
pub fn run_qdisc(_g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    let (add, dev) = args::parse_qdisc(w)?;
    let (sock, ifindex) = open_socket_and_device(&dev)?;
    let on_dev = |e: tcbpf::tc::Error| CliError::from(e).context(format!("dev '{dev}'"));
    if add {
        match qdisc::add_clsact(&sock, ifindex).map_err(on_dev)? {
            qdisc::Added::Created => Ok(()),
            qdisc::Added::Existed => Err(CliError::failure(format!(
                "dev '{dev}' already has a clsact qdisc"
            ))),
        }
    } else {
        qdisc::delete_clsact(&sock, ifindex).map_err(on_dev)
    }
}

/// `Direction` words for messages and paths.
fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_names_are_written_as_tc_writes_them() {
        assert_eq!(pinned_name(Path::new("/sys/fs/bpf/tc/p")), "p:[*fsobj]");
    }
}

//! `tcbpf filter …` and `tcbpf qdisc …`: tc's words for the clsact qdisc,
//! cls_bpf filters and tcx links. Parsing is in [`args`], tc-compatible
//! output in [`show`], tcx in [`tcx`]; [`attach_program`] is the one place a
//! program descriptor gets attached, for `pinned PATH` here and for
//! `obj FILE` in `filter_obj`. The attaching itself is the library's
//! `attach::attach`; this module turns the words into its target,
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
use tcbpf::attach as tc_attach;
use tcbpf::attach::cls_bpf::{self, FilterProg, FilterSelector, Mode};
use tcbpf::attach::tcx::Direction;
use tcbpf::sys;
use tcbpf::tc::classic::{parse_bytecode, ClassicInsn};
use tcbpf::tc::{device, qdisc, Protocol, Socket, TcHandle};
use tcbpf::upgrade as txn;

/// Where [`attach_program`] attaches: the library's target (hook, mode and
/// the cls_bpf or tcx options) plus what only the command line has.
#[derive(Debug, Clone)]
pub struct AttachTarget {
    /// `dev DEV`, for messages.
    pub dev: String,
    /// Where and how, as the library takes it (a tcx anchor is opened from
    /// `position` when attaching).
    pub attach: tc_attach::AttachTarget<'static>,
    /// `link PATH` for tcx (default under BPFFS/tc/links/); for replace,
    /// the link whose program is swapped.
    pub link: Option<PathBuf>,
    /// tcx: where on the hook (None: tail).
    pub position: Option<args::Position>,
}

/// The name tc shows for a pinned program: `BASENAME:[*fsobj]`.
pub fn pinned_name(path: &Path) -> String {
    tc_attach::pinned_name(path)
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
    if let Hook::Tcx(direction) = target.attach.hook {
        let on_dev = |e: CliError| e.context(format!("dev '{}'", target.dev));
        return tcx::attach(g, target, direction, prog).map_err(on_dev);
    }
    attach_filter(target, prog.into(), name)
}

/// Attaches `prog` (eBPF or classic) where `target` says, by the library's
/// one attach call (a cls_bpf filter from the filter grammar).
fn attach_filter(target: &AttachTarget, prog: FilterProg<'_>, name: &str) -> Result<(), CliError> {
    let on_dev = |e: CliError| e.context(format!("dev '{}'", target.dev));
    match tc_attach::attach(&target.attach, prog, name) {
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
    // A killed upgrade of the hook is completed first (the lock it holds
    // keeps upgrades out until this command is done).
    let _recovered = match a.verb {
        Verb::Add | Verb::Replace | Verb::Delete => {
            Some(recover_upgrade(&a.dev, ifindex, upgrade_scope(&a))?)
        }
        Verb::Show => None,
    };
    match (a.verb, a.hook) {
        (Verb::Add | Verb::Replace, _) => add(g, &a, ifindex),
        (Verb::Delete, Hook::Tcx(d)) => tcx::delete(g, &a.dev, ifindex, d, a.link.as_deref()),
        (Verb::Show, Hook::Tcx(d)) => {
            tcx::show(g, ifindex, d)?;
            show_pending(&a, ifindex);
            Ok(())
        }
        (Verb::Delete, Hook::Parent(parent)) => {
            cls_bpf::delete(&sock, &selector(&a, ifindex, parent))
                .map_err(|e| CliError::from(e).context(format!("dev '{}'", a.dev)))
        }
        (Verb::Show, Hook::Parent(parent)) => show_filters(g, &sock, &a, ifindex, parent),
        // The filter grammar names tc parents and tcx hooks only (XDP is
        // `tcbpf link set`); a hook of another kind never reaches here.
        (_, hook) => Err(CliError::usage(format!(
            "'filter' has no verb for the hook {hook:?}"
        ))),
    }
}

/// The hooks `filter …` with these words changes (or shows).
fn upgrade_scope(a: &FilterArgs) -> txn::Scope {
    match a.hook {
        Hook::Parent(parent) => txn::Scope::Filter {
            parent,
            pref: a.pref.unwrap_or(0),
            handle: a.handle.unwrap_or(0),
        },
        _ => txn::Scope::Tcx,
    }
}

/// Completes the upgrades of `scope` that were killed, saying so on
/// stderr; one that cannot be completed stops the command (exit 4).
pub(crate) fn recover_upgrade(
    dev: &str,
    ifindex: u32,
    scope: txn::Scope,
) -> Result<txn::Recovered, CliError> {
    let done = txn::recover(&sys::fs::bpffs_root(), ifindex, scope)
        .map_err(|e| CliError::from(e).context(format!("dev '{dev}'")))?;
    for n in &done.notes {
        eline!("tcbpf: {n}");
    }
    Ok(done)
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
        attach: tc_attach::AttachTarget {
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
            revision: a.revision,
            ..tc_attach::AttachTarget::new(ifindex, a.hook)
        },
        link: a.link.clone(),
        position: a.position.clone(),
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

/// Attaches a classic BPF program (tc sends it without a name; the library
/// refuses it on a hook that takes only eBPF).
fn attach_classic(target: &AttachTarget, insns: &[ClassicInsn]) -> Result<(), CliError> {
    attach_filter(target, FilterProg::Classic(insns), "")
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
    let entries = cls_bpf::list(sock, &selector(a, ifindex, parent))
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
    show_pending(a, ifindex);
    Ok(())
}

/// Notes on stderr (stdout stays tc's) the upgrades of the shown hooks
/// that were killed and wait for completion.
fn show_pending(a: &FilterArgs, ifindex: u32) {
    for p in txn::pending(&sys::fs::bpffs_root(), ifindex, upgrade_scope(a)) {
        eline!("tcbpf: note: {p}");
    }
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
        let _recovered = recover_upgrade(&dev, ifindex, txn::Scope::Clsact)?;
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

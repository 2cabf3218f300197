//! Completing a killed upgrade before another command changes its hook
//! ([`recover`]): `filter add|replace|del`, `chain apply` and
//! `qdisc del … clsact` call it first,
//! so a transaction directory never outlives the filter or link it is
//! about, and its records never describe a hook changed behind it.
//! [`pending`] lists the waiting transactions for `filter show`.

use std::path::{Path, PathBuf};

use super::txn::{self, HookName, Pending};
use super::{Error, Step};
use crate::sys;
use crate::tc::TcHandle;

/// The hooks a command is about to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// cls_bpf filters under `parent`; pref and handle 0 stand for any.
    Filter {
        /// The clsact hook or class.
        parent: TcHandle,
        /// The pref (0: any).
        pref: u16,
        /// The handle (0: any).
        handle: u32,
    },
    /// The tcx links of the device.
    Tcx,
    /// Every cls_bpf filter of the device's clsact qdisc, ingress and
    /// egress (`qdisc del … clsact`).
    Clsact,
}

/// What [`recover`] did; holds the upgrade lock of the bpffs until
/// dropped, so no upgrade starts while the command changes the hook.
#[derive(Debug, Default)]
pub struct Recovered {
    /// One line per transaction completed or undone.
    pub notes: Vec<String>,
    _lock: Option<sys::fs::DirLock>,
}

/// Completes (or, killed before its swap, undoes) every upgrade of the
/// hooks in `scope` on device `ifindex` (this network namespace) that
/// left a transaction directory under `<bpffs>/tcbpf/upgrade`, under the
/// upgrade lock, which the result keeps. Without that directory nothing
/// is looked at, locked or mounted. A transaction that cannot be
/// completed is an error naming its directory and the remedy
/// ([`crate::ErrorKind::System`]); nothing is changed then.
pub fn recover(bpffs: &Path, ifindex: u32, scope: Scope) -> Result<Recovered, Error> {
    if !txn::root(bpffs).is_dir() {
        return Ok(Recovered::default());
    }
    let lock = txn::lock(bpffs)?;
    let mut notes = Vec::new();
    for (name, pending) in matching(bpffs, ifindex, scope) {
        let dir = pending.dir().to_path_buf();
        let done = program_at(ifindex, &name).and_then(|running| pending.resume(running));
        match done {
            Ok(note) => notes.push(format!("{}: {note}", dir.display())),
            Err(e) => {
                return Err(Error::new(
                    Step::Find,
                    None,
                    crate::ErrorKind::System,
                    format!(
                        "a killed upgrade of this hook waits in {} and cannot be completed: {}; nothing was changed. Rerun the same 'filter upgrade' once the hook runs its old or new program again, or remove that directory (rm -r) to give the upgrade up",
                        dir.display(),
                        e.message
                    ),
                ))
            }
        }
    }
    Ok(Recovered {
        notes,
        _lock: Some(lock),
    })
}

/// The waiting transactions of the hooks in `scope`, described; reads
/// only.
pub fn pending(bpffs: &Path, ifindex: u32, scope: Scope) -> Vec<String> {
    matching(bpffs, ifindex, scope)
        .into_iter()
        .map(|(_, p)| p.describe())
        .collect()
}

/// The transactions under `<bpffs>/tcbpf/upgrade` of this namespace's
/// device `ifindex` in `scope`, by name.
fn matching(bpffs: &Path, ifindex: u32, scope: Scope) -> Vec<(HookName, Pending)> {
    let Ok(dir) = std::fs::read_dir(txn::root(bpffs)) else {
        return Vec::new();
    };
    let netns = txn::netns();
    let mut names: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|path| {
            let file = path.file_name()?.to_string_lossy().into_owned();
            let name = HookName::parse(file.trim_end_matches(txn::PREPARING))?;
            let ours = name.netns == netns
                && name.ifindex == ifindex
                && match (name.kind, scope) {
                    (
                        txn::HookKind::Filter {
                            parent,
                            pref,
                            handle,
                        },
                        Scope::Filter {
                            parent: p,
                            pref: want_pref,
                            handle: want_handle,
                        },
                    ) => {
                        parent == p.0
                            && (want_pref == 0 || pref == want_pref)
                            && (want_handle == 0 || handle == want_handle)
                    }
                    (txn::HookKind::Link(_), Scope::Tcx) => true,
                    (txn::HookKind::Filter { parent, .. }, Scope::Clsact) => {
                        parent == TcHandle::INGRESS.0 || parent == TcHandle::EGRESS.0
                    }
                    _ => false,
                };
            let pending = Pending::at(path.clone(), !file.ends_with(txn::PREPARING));
            ours.then_some((name, pending))
        })
        .collect()
}

/// The program at the hook a transaction is about: 0 when there is none
/// (the filter or link is gone).
fn program_at(ifindex: u32, name: &HookName) -> Result<u32, Error> {
    match name.kind {
        txn::HookKind::Filter {
            parent,
            pref,
            handle,
        } => Ok(super::find::filters_at(ifindex, TcHandle(parent), pref)?
            .iter()
            .find(|f| f.handle == handle)
            .and_then(|f| f.bpf.as_ref()?.prog_id)
            .unwrap_or(0)),
        txn::HookKind::Link(id) => Ok(sys::obj::link_by_id(id)
            .and_then(|l| sys::link::link_info(&l))
            .map(|i| i.prog_id)
            .unwrap_or(0)),
    }
}

//! `tcbpf filter upgrade …`: replace the program running at a hook with a
//! new build, carrying its maps across (the library's `upgrade`). This
//! module parses the words and prints the plan and what was done, in text
//! and `-j`; `plan` prints and changes nothing.

use super::super::error::CliError;
use super::super::output::Global;
use super::super::words::Words;
use super::args::TcxHook;
use super::keywords::{UpgradeMode, UpgradeOption};
use super::open_socket_and_device;
use serde_json::{json, Value};
use std::path::PathBuf;
use tcbpf::load::{LoadOptions, ProgKind};
use tcbpf::tc::TcHandle;
use tcbpf::upgrade::plan::{Action, Mode};
use tcbpf::upgrade::{self, Hook, Report, Request};

/// Usage of `tcbpf filter upgrade`.
pub const UPGRADE_USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] filter upgrade dev DEV HOOK [ pref N ] [ handle H ] [ link PATH ]
              bpf obj FILE [ type cls|act ] [ sec NAME ] [ program FUNC ] [ plan ]
              [ map NAME { copy | sum | fresh } ]… [ export UDS ] [ verbose ]
HOOK := { ingress | egress | parent H:M | tcx { ingress | egress } }

Replaces the program running at the hook (the cls_bpf filter at pref/handle,
or the only one there; the tcx link pinned at link PATH, or the only one)
with the program of FILE, in one kernel step, carrying its maps across:
each map of FILE is matched by name with a map of the running program and
reused (same definition and BTF), migrated (a new map filled from the old:
struct members added or dropped by name, integers widened, enums by name,
max_entries changed when the entries fit, hash <-> lru_hash), fresh (new,
program arrays, global data, or 'map NAME fresh') or refused (a member's
kind changed, an integer narrowed, the key changed: exit 2, nothing done).
Migrated maps: 'sum' (default when every value member is an integer) adds
the old program's increments made after the copy; 'copy' gives the old
final value to every key the new program has not written since the swap.
'plan' prints the plan and changes nothing. When FILE's program has the
running program's tag and every map is reused: 'nothing to do', exit 0.
An upgrade of the hook that was killed is undone or finished first (its
record: BPFFS/tcbpf/upgrade/). 'export UDS' sends the new
maps to an importer, as filter add … export does, under the old filter's
object name: a keeper holding that set replaces it (generation + 1).
";

/// The parsed words.
#[derive(Debug)]
struct UpgradeArgs {
    dev: String,
    hook: Hook,
    object: PathBuf,
    kind: ProgKind,
    section: Option<String>,
    program: Option<String>,
    plan: bool,
    modes: Vec<(String, Mode)>,
    export: Option<PathBuf>,
    verbose: bool,
}

fn parse(w: &mut Words) -> Result<UpgradeArgs, CliError> {
    let mut dev = None;
    let mut hook: Option<(Option<TcHandle>, Option<tcbpf::attach::tcx::Direction>)> = None;
    let (mut pref, mut handle, mut link) = (None, None, None);
    let (mut object, mut kind, mut section, mut program) = (None, ProgKind::Cls, None, None);
    let (mut plan, mut export, mut verbose) = (false, None, false);
    let mut modes: Vec<(String, Mode)> = Vec::new();
    let one_hook = || CliError::usage("give one hook: ingress, egress, parent H:M or tcx DIR");
    while let Some(word) = w.next() {
        match UpgradeOption::choose(&word)? {
            UpgradeOption::Dev => dev = Some(w.expect("a device name after 'dev'")?),
            UpgradeOption::Ingress | UpgradeOption::Egress | UpgradeOption::Parent => {
                let parent = match UpgradeOption::choose(&word)? {
                    UpgradeOption::Ingress => TcHandle::INGRESS,
                    UpgradeOption::Egress => TcHandle::EGRESS,
                    _ => {
                        let text = w.expect("a handle after 'parent'")?;
                        TcHandle::parse(&text).ok_or_else(|| {
                            CliError::usage(format!(
                                "parent: '{text}' is not a tc handle (MAJ:MIN in hex)"
                            ))
                        })?
                    }
                };
                if hook.replace((Some(parent), None)).is_some() {
                    return Err(one_hook());
                }
            }
            UpgradeOption::Tcx => {
                let d = TcxHook::direction(&w.expect("ingress or egress after 'tcx'")?)?;
                if hook.replace((None, Some(d))).is_some() {
                    return Err(one_hook());
                }
            }
            UpgradeOption::Pref => pref = Some(w.number::<u16>("pref")?),
            UpgradeOption::Handle => handle = Some(w.number::<u32>("handle")?),
            UpgradeOption::Link => link = Some(PathBuf::from(w.expect("a path after 'link'")?)),
            UpgradeOption::Bpf => {}
            UpgradeOption::Obj => object = Some(PathBuf::from(w.expect("a file after 'obj'")?)),
            UpgradeOption::Type => {
                let t = w.expect("cls or act after 'type'")?;
                kind = ProgKind::from_word(&t)
                    .ok_or_else(|| CliError::usage(format!("type: '{t}' is not cls or act")))?;
            }
            UpgradeOption::Section => section = Some(w.expect("a section after 'sec'")?),
            UpgradeOption::Program => program = Some(w.expect("a function after 'program'")?),
            UpgradeOption::Plan => plan = true,
            UpgradeOption::Map => {
                let name = w.expect("a map name after 'map'")?;
                let mode =
                    match UpgradeMode::choose(&w.expect("copy, sum or fresh after 'map NAME'")?)? {
                        UpgradeMode::Copy => Mode::Copy,
                        UpgradeMode::Sum => Mode::Sum,
                        UpgradeMode::Fresh => Mode::Fresh,
                    };
                if modes.iter().any(|(n, _)| *n == name) {
                    return Err(CliError::usage(format!("map '{name}' is named twice")));
                }
                modes.push((name, mode));
            }
            UpgradeOption::Export => {
                export = Some(PathBuf::from(w.expect("a socket after 'export'")?))
            }
            UpgradeOption::Verbose => verbose = true,
        }
    }
    let dev = dev.ok_or_else(|| CliError::usage("expected 'dev DEV'"))?;
    let object = object.ok_or_else(|| CliError::usage("expected 'bpf obj FILE'"))?;
    let hook = match hook {
        Some((Some(parent), None)) => {
            if link.is_some() {
                return Err(CliError::usage(
                    "'link PATH' names a tcx link: use it with tcx DIR",
                ));
            }
            if handle.is_some() && pref.is_none() {
                return Err(CliError::usage("'handle H' needs 'pref N'"));
            }
            Hook::Filter {
                parent,
                pref: pref.unwrap_or(0),
                handle: handle.unwrap_or(0),
            }
        }
        Some((None, Some(direction))) => {
            if pref.is_some() || handle.is_some() {
                return Err(CliError::usage(
                    "tcx hooks have no pref or handle: name the link with 'link PATH'",
                ));
            }
            Hook::Tcx {
                direction,
                link: link.map(|l| tcbpf::tc::bpffs::tc_path(&l.to_string_lossy())),
            }
        }
        _ => {
            return Err(CliError::usage(
                "expected a hook: ingress, egress, parent H:M or tcx { ingress | egress }",
            ))
        }
    };
    Ok(UpgradeArgs {
        dev,
        hook,
        object,
        kind,
        section,
        program,
        plan,
        modes,
        export,
        verbose,
    })
}

/// Runs `tcbpf filter upgrade …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    let a = parse(w)?;
    let (_sock, ifindex) = open_socket_and_device(&a.dev)?;
    let req = Request {
        ifindex,
        hook: a.hook.clone(),
        object: a.object.clone(),
        load: LoadOptions {
            prog_type: a.kind,
            section: a.section.clone(),
            program: a.program.clone(),
            verbose: a.verbose || g.verbose,
            ..LoadOptions::default()
        },
        modes: a.modes.clone(),
    };
    let on_dev = |e: upgrade::Error| CliError::from(e).context(format!("dev '{}'", a.dev));
    let mut prepared = upgrade::prepare(&req).map_err(on_dev)?;
    if a.plan {
        prepared.count_entries().map_err(on_dev)?;
        let mut report = prepared.report();
        report.new_name = a.object.display().to_string();
        print(g, &a, &report, true)?;
        return match report.refusal() {
            Some((map, why)) => Err(CliError::usage(format!("map '{map}': {why}"))),
            None => Ok(()),
        };
    }
    let outcome = prepared.execute(&req).map_err(on_dev)?;
    if let (true, Some(object)) = (req.load.verbose, &outcome.object) {
        super::super::obj::print_load_log(object);
    }
    print(g, &a, &outcome.report, false)?;
    if let (Some(uds), Some(object)) = (&a.export, &outcome.object) {
        // Under the old object's name, so that a keeper holding the old
        // set replaces it (and counts a generation).
        let mut id = object.object_id();
        if let Some(old) = &outcome.report.old_object {
            id.name = old.clone();
        }
        tcbpf::scm::send_maps_with(
            uds,
            &id,
            &object.map_descs(),
            &tcbpf::scm::SendOptions::default(),
        )
        .map_err(|e| {
            CliError::from(e).context(format!(
                "upgraded, but the new maps were not exported to {}",
                uds.display()
            ))
        })?;
    }
    Ok(())
}

fn hook_words(a: &UpgradeArgs) -> String {
    match &a.hook {
        Hook::Filter { parent, .. } if *parent == TcHandle::INGRESS => "ingress".into(),
        Hook::Filter { parent, .. } if *parent == TcHandle::EGRESS => "egress".into(),
        Hook::Filter { parent, .. } => format!("parent {parent}"),
        Hook::Tcx { direction, .. } => format!("tcx {direction}"),
    }
}

fn mode_of(action: &Action) -> Option<&'static str> {
    match action {
        Action::Migrate(m) => Some(m.mode.word()),
        _ => None,
    }
}

fn print(g: &Global, a: &UpgradeArgs, r: &Report, plan_only: bool) -> Result<(), CliError> {
    if g.json {
        let maps: Vec<Value> = r
            .maps
            .iter()
            .map(|m| {
                let (reason, changes, definition) = match &m.plan.action {
                    Action::Fresh(why) | Action::Refuse(why) => (Some(why.clone()), None, vec![]),
                    Action::Migrate(mig) => (None, Some(&mig.changes), mig.definition.clone()),
                    Action::Reuse => (None, None, vec![]),
                };
                let list = |f: fn(&tcbpf::upgrade::convert::Changes) -> &Vec<String>| {
                    changes.map(f).cloned().unwrap_or_default()
                };
                json!({
                    "name": m.plan.name,
                    "action": m.plan.action.word(),
                    "mode": mode_of(&m.plan.action),
                    "reason": reason,
                    "added": list(|c| &c.added),
                    "dropped": list(|c| &c.dropped),
                    "widened": list(|c| &c.widened),
                    "renumbered": list(|c| &c.renumbered),
                    "definition": definition,
                    "entries": m.entries,
                    "old_id": m.plan.old_id,
                    "new_id": m.new_id,
                    "pin": m.pin.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        g.print_json(&json!({
            "dev": a.dev,
            "hook": hook_words(a),
            "attachment": r.attachment,
            "old_prog": {"id": r.old_prog.0, "name": r.old_prog.1},
            "new": r.new_name,
            "plan": plan_only,
            "maps": maps,
            "dropped_maps": r.dropped,
            "new_prog": r.new_prog,
            "nothing_to_do": r.nothing_to_do,
            "wait_ns": r.wait.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            "notes": r.notes,
        }))?;
        return Ok(());
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if r.nothing_to_do {
        writeln!(
            out,
            "nothing to do: dev {} {} {} runs program {} ({}), the same build as {} (same tag, every map reused)",
            a.dev,
            hook_words(a),
            r.attachment,
            r.old_prog.0,
            r.old_prog.1,
            r.new_name
        )?;
        for n in &r.notes {
            writeln!(out, "  note: {n}")?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{} dev {} {} {}: program {} ({}) -> {}",
        if plan_only { "plan" } else { "upgraded" },
        a.dev,
        hook_words(a),
        r.attachment,
        r.old_prog.0,
        r.old_prog.1,
        r.new_name
    )?;
    for m in &r.maps {
        let mut line = format!("  map {}: {}", m.plan.name, m.plan.action.word());
        match &m.plan.action {
            Action::Fresh(why) | Action::Refuse(why) => line += &format!(" ({why})"),
            Action::Reuse => {}
            Action::Migrate(mig) => {
                line += &format!(" ({})", mig.mode.word());
                if let Some(n) = m.entries {
                    line += &format!(", {n} entries");
                }
                let c = &mig.changes;
                for (what, list) in [
                    ("added", &c.added),
                    ("dropped", &c.dropped),
                    ("widened", &c.widened),
                    ("renumbered", &c.renumbered),
                ] {
                    if !list.is_empty() {
                        line += &format!("; {what} {}", list.join(", "));
                    }
                }
                if !mig.definition.is_empty() {
                    line += &format!("; {}", mig.definition.join(", "));
                }
            }
        }
        if let Some(id) = m.new_id {
            line += &format!(" -> map id {id}");
        }
        if let Some(pin) = &m.pin {
            line += &format!(", pinned at {}", pin.display());
        }
        writeln!(out, "{line}")?;
    }
    for name in &r.dropped {
        writeln!(out, "  map {name}: dropped (not in the new object)")?;
    }
    if let (Some(id), Some(wait)) = (r.new_prog, r.wait) {
        writeln!(
            out,
            "  program {id} runs; the old one was done within {} us",
            wait.as_micros()
        )?;
    }
    for n in &r.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn filter_words_give_the_filter_hook_and_modes() {
        let a = parse(&mut words(
            "dev v0 egress pref 1 handle 1 bpf obj new.o plan map counters copy map sizes fresh",
        ))
        .unwrap();
        assert_eq!(
            a.hook,
            Hook::Filter {
                parent: TcHandle::EGRESS,
                pref: 1,
                handle: 1
            }
        );
        assert!(a.plan);
        assert_eq!(
            a.modes,
            vec![
                ("counters".into(), Mode::Copy),
                ("sizes".into(), Mode::Fresh)
            ]
        );
    }

    #[test]
    fn bad_words_are_usage_errors() {
        for line in [
            "dev v0 bpf obj new.o",
            "dev v0 ingress",
            "dev v0 ingress bpf obj x.o map m swap",
            "dev v0 tcx ingress pref 1 bpf obj x.o",
            "dev v0 ingress link /x bpf obj x.o",
            "dev v0 ingress bpf obj x.o map m sum map m copy",
        ] {
            let e = parse(&mut words(line)).unwrap_err();
            assert_eq!(
                e.exit,
                super::super::super::error::Exit::Usage,
                "{line}: {e}"
            );
        }
    }
}

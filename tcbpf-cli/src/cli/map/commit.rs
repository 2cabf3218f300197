//! `commit OUTER [slot N] { key TYPES value TYPES | json [partial] } [from FILE|-] [keep N]`
//! (`plan`: print what it would do, change nothing)
//! and `commit OUTER [slot N] previous`: a whole policy swapped in one
//! step through a map-in-map slot, as a numbered generation
//! ([`tcbpf::maps::generation`]). The entries are read as `map load` reads
//! them, against the inner map in force (its sizes, its BTF) or, for an
//! empty slot, an unpublished one made from the inner definition in the
//! BTF of a program using the outer map, every one checked before
//! anything is published; then the library builds the new inner map and
//! publishes it with one update of the slot.

use super::super::error::CliError;
use super::super::mapref::MapRef;
use super::super::output::Global;
use super::super::words::{keywords, Words};
use super::load::{parse_lines, read_input};
use super::typed::types;
use super::{args, OpenMap};
use serde_json::json;
use tcbpf::maps::generation::{self as gen, InForce, Kept};
use tcbpf::sys;
use tcbpf::value::typed::MapTypes;
use tcbpf::value::FieldType;

keywords! {
    /// The words of `map commit`.
    pub(crate) enum CommitOption("commit option") {
        Slot = "slot",
        Key = "key",
        Value = "value",
        Json = "json",
        Partial = "partial",
        From = "from",
        Keep = "keep",
        Previous = "previous",
        Plan = "plan",
    }
}

/// What the words asked for.
#[derive(Default)]
struct Request {
    slot: u32,
    key: Option<Vec<FieldType>>,
    value: Option<Vec<FieldType>>,
    json: bool,
    partial: bool,
    source: Option<String>,
    keep: Option<usize>,
    previous: bool,
    plan: bool,
}

/// Runs `tcbpf map commit …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let outer_ref = MapRef::parse(w)?;
    let mut r = Request::default();
    while let Some(word) = w.next() {
        match CommitOption::choose(&word)? {
            CommitOption::Slot => r.slot = w.number("a slot number after 'slot'")?,
            CommitOption::Key => r.key = Some(args::types(w, "key")?),
            CommitOption::Value => r.value = Some(args::types(w, "value")?),
            CommitOption::Json => r.json = true,
            CommitOption::Partial => r.partial = true,
            CommitOption::From => r.source = Some(w.expect("a file name (or -) after 'from'")?),
            CommitOption::Keep => r.keep = Some(w.number("a number of generations after 'keep'")?),
            CommitOption::Previous => r.previous = true,
            CommitOption::Plan => r.plan = true,
        }
    }
    let typed_words = r.key.is_some() || r.value.is_some();
    if r.previous && (typed_words || r.json || r.source.is_some() || r.partial) {
        return Err(CliError::usage(
            "commit: 'previous' takes no entries (no key, value, json or from)",
        ));
    }
    if r.plan && r.previous {
        return Err(CliError::usage(
            "commit: 'plan' goes with entries, not 'previous'",
        ));
    }
    if r.partial && !r.json {
        return Err(CliError::usage("commit: 'partial' goes with 'json'"));
    }
    if !r.previous && r.json == typed_words {
        return Err(CliError::usage(
            "commit: expected 'key TYPES value TYPES', 'json' or 'previous'",
        ));
    }
    let outer = OpenMap::open(&outer_ref, sys::obj::open::RDWR)?;
    gen::check_outer(&outer.info).map_err(|e| maps_err(&outer, e))?;
    let kept = match (&outer_ref, r.keep.is_some() || r.previous) {
        (MapRef::Pinned(pin), _) => Some(Kept::beside(pin, r.slot)),
        (_, false) => None,
        (_, true) => {
            return Err(CliError::usage(format!(
                "commit: 'keep' and 'previous' need the outer map as 'pinned PATH' \
                 (kept generations are pinned beside it), not '{outer_ref}'"
            )))
        }
    };
    let current = gen::in_force(&outer.fd, r.slot).map_err(|e| maps_err(&outer, e))?;
    if r.previous {
        let current = current.ok_or_else(|| {
            CliError::not_found(format!(
                "{}: slot {} holds no inner map (no generation to go back from)",
                outer.label, r.slot
            ))
        })?;
        return previous(g, &outer, r.slot, &current, kept.as_ref());
    }
    commit(g, &outer, &r, current.as_ref(), kept.as_ref())
}

/// Builds and publishes a new generation from the input.
fn commit(
    g: &Global,
    outer: &OpenMap,
    r: &Request,
    current: Option<&InForce>,
    kept: Option<&Kept>,
) -> Result<(), CliError> {
    let template = match current {
        Some(c) => gen::InnerTemplate::from_info(&c.info),
        None => gen::template_from_users(&outer.info).and_then(|t| {
            t.ok_or_else(|| {
                tcbpf::maps::Error::Typed(tcbpf::value::typed::TypedError::new(
                    "",
                    format!(
                        "slot {} holds no inner map, and no program using the map carries \
                         the BTF definition of its inner map (fill the slot, or load the map \
                         with a program whose object defines it)",
                        r.slot
                    ),
                ))
            })
        }),
    }
    .map_err(|e| maps_err(outer, e))?;
    // The entries are typed by the inner map in force, or by an empty
    // one made from the template (never published).
    let (in_force, replaces_id) = current.map_or((0, 0), |c| (c.generation, c.info.id));
    let empty = match current {
        Some(_) => None,
        None => {
            let plan = gen::plan_commit(template.clone(), r.slot, 0, 0, &[], &[])
                .map_err(|e| maps_err(outer, e))?;
            Some(gen::build(&plan, &[], &[]).map_err(|e| maps_err(outer, e))?)
        }
    };
    let inner_id = match &empty {
        Some(m) => sys::info::map_info(m)?.id,
        None => replaces_id,
    };
    let inner = OpenMap::open(&MapRef::Id(inner_id), sys::obj::open::RDONLY)?;
    let input = read_input(g, r.source.as_deref())?;
    let (keys, values) = if r.json {
        let untyped;
        let t = match types(g.verbose, &inner) {
            Some(t) => t,
            None => {
                untyped = MapTypes::untyped(
                    inner.info.key_size as usize,
                    inner.info.value_size as usize,
                    None,
                );
                &untyped
            }
        };
        let p = super::load_json::parse(&input, t, r.partial)?;
        (p.keys, p.values)
    } else {
        let key_types = r
            .key
            .as_ref()
            .ok_or_else(|| CliError::usage("commit: expected 'key TYPES'"))?;
        let value_types = r
            .value
            .as_ref()
            .ok_or_else(|| CliError::usage("commit: expected 'value TYPES'"))?;
        let key = args::layout(key_types, inner.info.key_size, "key")?;
        let value = args::layout(value_types, inner.info.value_size, "value")?;
        parse_lines(&input, &key, &value, &inner)?.packed()
    };
    let newest = match kept {
        Some(k) => k.list().map_err(|e| maps_err(outer, e))?.first().copied(),
        None => None,
    };
    let plan = gen::plan_commit(
        template,
        r.slot,
        in_force,
        newest.unwrap_or(0),
        &keys,
        &values,
    )
    .map_err(|e| maps_err(outer, e))?;
    if r.plan {
        return print_plan(g, &plan, replaces_id);
    }
    let new = gen::build(&plan, &keys, &values).map_err(|e| maps_err(outer, e))?;
    // The replaced generation is pinned before the swap: a crash between
    // the two leaves an extra kept generation, never a lost one.
    let keep = r.keep.filter(|&n| n > 0);
    if let (Some(k), Some(_), Some(c)) = (kept, keep, current) {
        k.keep(c.generation, &c.map)
            .map_err(|e| maps_err(outer, e))?;
    }
    gen::publish(&outer.fd, r.slot, &new).map_err(|e| maps_err(outer, e))?;
    let still_kept = match (kept, r.keep) {
        (Some(k), Some(n)) => k
            .prune(n, plan.generation)
            .map_err(|e| maps_err(outer, e))?,
        (Some(k), None) => k.list().map_err(|e| maps_err(outer, e))?,
        (None, _) => Vec::new(),
    };
    let id = sys::info::map_info(&new)?.id;
    report(
        g,
        r.slot,
        plan.generation,
        plan.replaces,
        Some(plan.entries),
        id,
        &still_kept,
    )
}

/// Publishes the newest kept generation older than the one in force; the
/// one it replaces stays kept.
fn previous(
    g: &Global,
    outer: &OpenMap,
    slot: u32,
    current: &InForce,
    kept: Option<&Kept>,
) -> Result<(), CliError> {
    let kept = kept.ok_or_else(|| CliError::usage("commit previous: no kept generations"))?;
    let all = kept.list().map_err(|e| maps_err(outer, e))?;
    let Some(&older) = all.iter().find(|&&g| g < current.generation) else {
        return Err(CliError::not_found(format!(
            "{}: no generation older than {} is kept in {} (commit with 'keep N' keeps them)",
            outer.label,
            current.generation,
            kept.dir.display()
        )));
    };
    let map = kept.open(older).map_err(|e| maps_err(outer, e))?;
    let info = sys::info::map_info(&map)?;
    if gen::generation_of(&map, &info).map_err(|e| maps_err(outer, e))? != older {
        return Err(CliError::failure(format!(
            "{}: the pin of generation {older} holds another generation",
            kept.dir.display()
        )));
    }
    kept.keep(current.generation, &current.map)
        .map_err(|e| maps_err(outer, e))?;
    gen::publish(&outer.fd, slot, &map).map_err(|e| maps_err(outer, e))?;
    // In force again: the slot holds it, its pin goes.
    let still_kept = kept
        .prune(usize::MAX, older)
        .map_err(|e| maps_err(outer, e))?;
    report(
        g,
        slot,
        older,
        current.generation,
        None,
        info.id,
        &still_kept,
    )
}

/// `plan`: what the commit would do, checked, with nothing created.
fn print_plan(g: &Global, plan: &gen::CommitPlan, in_force_id: u32) -> Result<(), CliError> {
    let t = &plan.template;
    if g.json {
        g.print_json(&json!({
            "slot": plan.slot,
            "generation": plan.generation,
            "replaces": plan.replaces,
            "replaces_map_id": in_force_id,
            "entries": plan.entries,
            "inner": {
                "type": tcbpf::abi::MapType::from_u32(t.map_type).map_or("unknown", |k| k.name()),
                "bytes_key": t.key_size,
                "bytes_value": t.value_size,
                "max_entries": t.max_entries,
                "flags": t.map_flags,
                "btf_id": t.btf.0,
            },
        }))?;
        return Ok(());
    }
    println!(
        "plan: generation {} at slot {} ({} entries in a new {} map: key {}B value {}B          max_entries {} flags 0x{:x} btf_id {}); replaces generation {} (map id {in_force_id})",
        plan.generation,
        plan.slot,
        plan.entries,
        tcbpf::abi::MapType::from_u32(t.map_type).map_or("unknown", |k| k.name()),
        t.key_size,
        t.value_size,
        t.max_entries,
        t.map_flags,
        t.btf.0,
        plan.replaces
    );
    Ok(())
}

/// `generation G in force at slot S (N entries, map id I; replaced R; kept …)`, or -j.
fn report(
    g: &Global,
    slot: u32,
    generation: u32,
    replaced: u32,
    entries: Option<usize>,
    map_id: u32,
    kept: &[u32],
) -> Result<(), CliError> {
    if g.json {
        g.print_json(&json!({
            "slot": slot,
            "generation": generation,
            "replaced": replaced,
            "entries": entries,
            "map_id": map_id,
            "kept": kept,
        }))?;
        return Ok(());
    }
    let entries = entries.map_or(String::new(), |n| format!("{n} entries, "));
    let kept: Vec<String> = kept.iter().map(u32::to_string).collect();
    let kept = if kept.is_empty() {
        "none".to_string()
    } else {
        kept.join(" ")
    };
    println!(
        "generation {generation} in force at slot {slot} ({entries}map id {map_id}); \
         replaced {replaced}; kept {kept}"
    );
    Ok(())
}

fn maps_err(m: &OpenMap, e: tcbpf::maps::Error) -> CliError {
    CliError::from(e).context(&m.label)
}

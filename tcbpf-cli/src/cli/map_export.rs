//! `tcbpf map export UDS MAP [ id N ] [ MAP [ id N ] ]… [ obj NAME ]
//! [ allow-uid UID ]… [ entry-size 20|24|28|36 ]`: send
//! maps this process can reach (by fd, env, id, pinned path or name) to an
//! importer bound at UDS, each described from the kernel's own map info.
//!
//! `id N` right after a MAP sets the id the importer shows it under
//! (`BPF_MAP<N>`); maps without one take the lowest unused ids in order.
//! `obj NAME` names the object in the transfer (default `tcbpf-export`);
//! `entry-size` picks the `struct bpf_elf_map` generation the receiver was
//! built for (default 36, as tc today).
//! The socket must belong to root or this user, unless `allow-uid` names
//! its owner (checked by `tcbpf::scm`).
//! This module parses and prints; sending is `tcbpf::scm::send_maps`.

use super::error::CliError;
use super::mapref::MapRef;
use super::output::Global;
use super::words::{matches, Words};
use serde_json::json;
use std::os::fd::AsFd;
use std::path::PathBuf;
use tcbpf::scm::{self, EntrySize, MapDesc};
use tcbpf::sys::info::map_info;

/// Object name sent when `obj` is not given.
pub const DEFAULT_OBJECT: &str = "tcbpf-export";

/// The parsed words of `map export`.
#[derive(Debug, PartialEq)]
struct ExportArgs {
    uds: PathBuf,
    maps: Vec<(MapRef, Option<u32>)>,
    object: String,
    allowed_uids: Vec<u32>,
    entry_size: EntrySize,
}

/// `entry-size N`: the bytes of one `struct bpf_elf_map` the receiver reads.
pub fn entry_size(w: &mut Words) -> Result<EntrySize, CliError> {
    let text = w.expect("20, 24, 28 or 36 after 'entry-size'")?;
    text.parse::<usize>()
        .ok()
        .and_then(EntrySize::from_bytes)
        .ok_or_else(|| {
            CliError::usage(format!(
                "entry-size: '{text}' is not a struct bpf_elf_map size (20, 24, 28 or 36)"
            ))
        })
}

fn parse(w: &mut Words) -> Result<ExportArgs, CliError> {
    let uds = PathBuf::from(w.expect("a socket path after 'export'")?);
    let mut maps: Vec<(MapRef, Option<u32>)> = Vec::new();
    let mut object = None;
    let mut allowed_uids = Vec::new();
    let mut size = EntrySize::default();
    while let Some(word) = w.peek() {
        if word == "allow-uid" || word == "allow" {
            w.next();
            allowed_uids.push(w.number::<u32>("a uid after 'allow-uid'")?);
            continue;
        }
        if matches(word, "obj") && word != "o" {
            w.next();
            object = Some(w.expect("an object name after 'obj'")?);
            continue;
        }
        if matches(word, "entry-size") && word.len() >= 3 {
            w.next();
            size = entry_size(w)?;
            continue;
        }
        let map = MapRef::parse(w)?;
        let mut id = None;
        if w.peek() == Some("id") {
            w.next();
            id = Some(w.number::<u32>("an export id after 'id'")?);
        }
        maps.push((map, id));
    }
    if maps.is_empty() {
        return Err(CliError::usage(
            "expected at least one map after the socket path (fd N | env ID | id N | pinned PATH | name NAME)",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for id in maps.iter().filter_map(|(_, id)| *id) {
        if !seen.insert(id) {
            return Err(CliError::usage(format!(
                "export id {id} is given to two maps"
            )));
        }
    }
    Ok(ExportArgs {
        uds,
        maps,
        object: object.unwrap_or_else(|| DEFAULT_OBJECT.to_string()),
        allowed_uids,
        entry_size: size,
    })
}

/// Runs `tcbpf map export …` (the words after `export`).
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let args = parse(w)?;
    let mut opened = Vec::with_capacity(args.maps.len());
    for (map, _) in &args.maps {
        let fd = map.open()?;
        let info = map_info(&fd).map_err(|e| CliError::from(e).context(map))?;
        opened.push((fd, info));
    }
    let wanted: Vec<Option<u32>> = args.maps.iter().map(|(_, id)| *id).collect();
    let infos: Vec<_> = opened.iter().map(|(_, info)| info.clone()).collect();
    let descs = scm::describe_maps(&infos, &wanted);
    let described: Vec<(MapDesc, std::os::fd::BorrowedFd<'_>)> = descs
        .iter()
        .zip(&opened)
        .map(|(desc, (fd, _))| (*desc, fd.as_fd()))
        .collect();
    let object = scm::object_id_for(&args.object);
    let opts = scm::SendOptions {
        allowed_uids: args.allowed_uids.clone(),
        entry_size: args.entry_size,
    };
    scm::send_maps_with(&args.uds, &object, &described, &opts).map_err(CliError::from)?;
    if g.json {
        let maps: Vec<_> = opened
            .iter()
            .zip(&descs)
            .map(|((_, info), desc)| json!({ "id": desc.id, "name": info.name, "map_id": info.id, "type": info.type_name() }))
            .collect();
        g.print_json(
            &json!({ "uds": args.uds, "object": args.object, "entry_size": args.entry_size.bytes(), "sent": maps.len(), "maps": maps }),
        )?;
    } else if g.verbose {
        eline!("sent {} map(s) to {}", descs.len(), args.uds.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn id_after_a_map_sets_its_export_id() {
        // `id N` right after a map is its export id, so `env 3 id 9 id 1`
        // is env 3 exported as id 9, then the kernel's map 1.
        let a = parse(&mut words(
            "/tmp/s pinned /x id 4 env 3 id 9 id 1 obj foo.o allow-uid 7",
        ))
        .unwrap();
        assert_eq!(a.object, "foo.o");
        assert_eq!(a.allowed_uids, vec![7]);
        assert_eq!(
            a.maps,
            vec![
                (MapRef::Pinned("/x".into()), Some(4)),
                (MapRef::Env("BPF_MAP3".into()), Some(9)),
                (MapRef::Id(1), None),
            ]
        );
        let b = parse(&mut words("/tmp/s id 51 id 0 id 52 id 1")).unwrap();
        assert_eq!(
            b.maps,
            vec![(MapRef::Id(51), Some(0)), (MapRef::Id(52), Some(1))]
        );
    }

    #[test]
    fn export_needs_a_map_and_distinct_ids() {
        assert!(parse(&mut words("/tmp/s"))
            .unwrap_err()
            .message
            .contains("at least one map"));
        assert!(parse(&mut words("/tmp/s fd 3 id 1 fd 4 id 1"))
            .unwrap_err()
            .message
            .contains("two maps"));
        assert_eq!(
            parse(&mut words("/tmp/s fd 3")).unwrap().object,
            DEFAULT_OBJECT
        );
    }

    #[test]
    fn entry_size_picks_the_generation_and_refuses_other_sizes() {
        let a = parse(&mut words("/tmp/s fd 3 entry-size 28 obj x.o")).unwrap();
        assert_eq!(a.entry_size, EntrySize::V28);
        assert_eq!(a.maps.len(), 1);
        assert_eq!(
            parse(&mut words("/tmp/s entry 20 fd 3"))
                .unwrap()
                .entry_size,
            EntrySize::V20
        );
        assert_eq!(
            parse(&mut words("/tmp/s fd 3")).unwrap().entry_size,
            EntrySize::V36
        );
        let err = parse(&mut words("/tmp/s fd 3 entry-size 32")).unwrap_err();
        assert!(err.message.contains("'32'"), "{}", err.message);
        assert!(parse(&mut words("/tmp/s fd 3 entry-size")).is_err());
    }
}

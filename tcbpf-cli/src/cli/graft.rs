//! `tcbpf exec bpf graft MAP_FILE [ key KEY ] { obj FILE [ type cls|act ] [ sec NAME ]
//! [ program FUNC ] [ verbose ] | pinned PATH }`:
//! load one program from an object (or take one pinned) and place it in a
//! pinned program array, replacing what was at that key (tc's tail-call
//! grafting: a running classifier changes behaviour without being
//! detached). MAP_FILE and PATH may be tc's `m:REST` (under the bpffs tc
//! directory).
//!
//! Without `key`, the key comes from a tail-call section name `<id>/<key>`,
//! as tc infers it. The object's maps are created and pinned as for
//! `filter add`, so the grafted program shares pinned maps with the
//! classifier that jumps into it.

use super::error::CliError;
use super::obj::{print_load_log, prog_kind};
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::json;
use std::path::PathBuf;
use tcbpf::abi::MapType;
use tcbpf::load::LoadOptions;
use tcbpf::sys;
use tcbpf::tc::bpffs::tc_path;

pub const USAGE: &str = "\
Usage: tcbpf exec bpf graft MAP_FILE [ key KEY ]
              { obj FILE [ type cls|act ] [ sec NAME ] [ program FUNC ] [ verbose ] | pinned PATH }

Loads section NAME of FILE (function FUNC of it, when given) or takes the
program pinned at PATH, and stores it at KEY in the program array pinned at
MAP_FILE. Without 'key', NAME must be a tail-call section '<id>/<key>'.
MAP_FILE and PATH written m:REST are REST under $TC_BPF_MNT/tc (default
/sys/fs/bpf/tc), as in tc. Long forms: object-file, section, object-pinned, fd.
";

keywords! {
    /// The options of `exec bpf graft`.
    pub(crate) enum GraftOption("graft option") {
        Key = "key",
        Obj = "obj" | "object-file",
        Pinned = "pinned" | "object-pinned" | "fd",
        Type = "type",
        Section = "section",
        Program = "program",
        Verbose = "verbose",
        Help = "help",
    }
}

/// Runs `tcbpf exec bpf graft …` (the words after `graft`).
pub fn graft(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let first = w.expect("the pinned program array MAP_FILE after 'graft'")?;
    let map_file = tc_path(&first);
    let mut key: Option<u32> = None;
    let mut file: Option<PathBuf> = None;
    let mut pinned: Option<PathBuf> = None;
    let mut opts = LoadOptions {
        verbose: g.verbose,
        ..LoadOptions::default()
    };
    while let Some(word) = w.next() {
        match GraftOption::choose(&word)? {
            GraftOption::Key => key = Some(w.number("KEY after 'key'")?),
            GraftOption::Obj => file = Some(PathBuf::from(w.expect("an object FILE after 'obj'")?)),
            GraftOption::Pinned => {
                pinned = Some(tc_path(&w.expect("a pinned program PATH after 'pinned'")?))
            }
            GraftOption::Program => {
                opts.program = Some(w.expect("a function name after 'program'")?)
            }
            GraftOption::Type => opts.prog_type = prog_kind(w)?,
            GraftOption::Section => opts.section = Some(w.expect("a section NAME after 'sec'")?),
            GraftOption::Verbose => opts.verbose = true,
            GraftOption::Help => return Err(CliError::help()),
        }
    }
    let source = match (file, pinned) {
        (Some(f), None) => Source::Obj(f),
        (None, Some(p)) => Source::Pinned(p),
        _ => {
            return Err(CliError::usage(
                "graft needs one program: 'obj FILE' or 'pinned PATH'",
            ))
        }
    };
    let section = opts
        .section
        .clone()
        .unwrap_or_else(|| opts.prog_type.default_section().to_string());
    let key = match (key, &source) {
        (Some(k), _) => k,
        (None, Source::Obj(_)) => key_from_section(&section)?,
        (None, Source::Pinned(p)) => {
            return Err(CliError::usage(format!(
                "give 'key KEY' to graft the program pinned at {}",
                p.display()
            )))
        }
    };

    // Check the target before loading anything, so a wrong path creates no pins.
    let array = sys::obj::get_pinned_map(&map_file, sys::obj::open::RDWR)?;
    let info = sys::info::map_info(&array)?;
    if info.kind() != Some(MapType::ProgArray) {
        return Err(CliError::usage(format!(
            "{} is a {} map, not a prog_array",
            map_file.display(),
            info.type_name()
        )));
    }
    if key >= info.max_entries {
        return Err(CliError::usage(format!(
            "key {key} is out of range for {} ({} entries)",
            map_file.display(),
            info.max_entries
        )));
    }

    match source {
        Source::Obj(file) => {
            // No tail-call warnings: a grafted object's other `<id>/<key>`
            // sections are for other grafts, into arrays it does not hold.
            let loaded = tcbpf::load::load_file(&file, &opts).map_err(CliError::from)?;
            if opts.verbose {
                print_load_log(&loaded);
            }
            let prog = loaded.main_program();
            place(
                &array,
                key,
                &prog.fd,
                &map_file,
                &format!("section '{}'", prog.section),
            )?;
            if g.json {
                let prog_info = sys::info::prog_info(&prog.fd)?;
                g.print_json(&json!({
                    "map": map_file.display().to_string(),
                    "map_id": info.id,
                    "key": key,
                    "prog": { "id": prog_info.id, "name": prog.name, "section": prog.section, "tag": prog_info.tag_hex() },
                }))?;
            }
        }
        Source::Pinned(path) => {
            let prog = sys::obj::get_pinned_prog(&path)
                .map_err(|e| CliError::from(e).context(format!("pinned '{}'", path.display())))?;
            place(
                &array,
                key,
                &prog,
                &map_file,
                &format!("the program pinned at {}", path.display()),
            )?;
            if g.json {
                let prog_info = sys::info::prog_info(&prog)?;
                g.print_json(&json!({
                    "map": map_file.display().to_string(),
                    "map_id": info.id,
                    "key": key,
                    "prog": { "id": prog_info.id, "name": prog_info.name, "pinned": path.display().to_string(), "tag": prog_info.tag_hex() },
                }))?;
            }
        }
    }
    Ok(())
}

/// Where the grafted program comes from.
enum Source {
    /// `obj FILE`: loaded here.
    Obj(PathBuf),
    /// `pinned PATH`: a program already loaded and pinned.
    Pinned(PathBuf),
}

/// Stores `prog` at `key` of the program array `array` (pinned at `map_file`).
fn place(
    array: &sys::MapFd,
    key: u32,
    prog: &sys::ProgFd,
    map_file: &std::path::Path,
    what: &str,
) -> Result<(), CliError> {
    let fd = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(prog))
        .map_err(|_| CliError::failure("program descriptor out of range"))?;
    sys::map::update(
        array,
        &key.to_ne_bytes(),
        &fd.to_ne_bytes(),
        sys::map::update::ANY,
    )
    .map_err(|e| {
        let hint = if e.errno() == Some(libc::EINVAL) {
            " (the program's type must match the programs already in the array)"
        } else {
            ""
        };
        CliError::from(e).context(format!(
            "placing {what} at key {key} of {}{hint}",
            map_file.display()
        ))
    })
}

/// tc's rule: a tail-call section `<id>/<key>` names the key, read as the
/// loader reads tail-call sections (iproute2's `sscanf("%i/%i")`).
fn key_from_section(section: &str) -> Result<u32, CliError> {
    tcbpf::elf::TailCallSlot::from_section(section)
        .map(|slot| slot.key)
        .ok_or_else(|| {
            CliError::usage(format!(
                "cannot infer the key from section '{section}' (not '<id>/<key>'): give 'key KEY'"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_comes_from_tail_call_section_name() {
        assert_eq!(key_from_section("1/3").unwrap(), 3);
        assert_eq!(key_from_section("0x10/0x2").unwrap(), 2);
        assert_eq!(key_from_section("0xabccba/010").unwrap(), 8);
        let err = key_from_section("classifier").unwrap_err();
        assert!(err.message.contains("give 'key KEY'"), "{}", err.message);
    }
}

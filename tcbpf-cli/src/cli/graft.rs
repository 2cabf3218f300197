//! `tcbpf exec bpf graft MAP_FILE [ key KEY ] obj FILE [ type cls|act ] [ sec NAME ] [ verbose ]`:
//! load one program from an object and place it in a pinned program array,
//! replacing what was at that key (tc's tail-call grafting: a running
//! classifier changes behaviour without being detached).
//!
//! Without `key`, the key comes from a tail-call section name `<id>/<key>`,
//! as tc infers it. The object's maps are created and pinned as for
//! `filter add`, so the grafted program shares pinned maps with the
//! classifier that jumps into it.

use super::error::CliError;
use super::obj::{load_error, print_load_log, prog_kind};
use super::output::Global;
use super::words::{choose, is_help, parse_number, Words};
use serde_json::json;
use std::path::PathBuf;
use tcbpf::load::LoadOptions;
use tcbpf::sys::{self, map::MapType};

const USAGE: &str = "\
Usage: tcbpf exec bpf graft MAP_FILE [ key KEY ] obj FILE [ type cls|act ] [ sec NAME ] [ verbose ]

Loads section NAME of FILE and stores the program at KEY in the program array
pinned at MAP_FILE. Without 'key', NAME must be a tail-call section '<id>/<key>'.
";

/// Runs `tcbpf exec bpf graft …` (the words after `graft`).
pub fn graft(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let first = w.expect("the pinned program array MAP_FILE after 'graft'")?;
    if is_help(&first) {
        print!("{USAGE}");
        return Ok(());
    }
    let map_file = PathBuf::from(first);
    let mut key: Option<u32> = None;
    let mut file: Option<PathBuf> = None;
    let mut opts = LoadOptions {
        verbose: g.verbose,
        ..LoadOptions::default()
    };
    while let Some(word) = w.next() {
        match choose(
            &word,
            &[
                "key",
                "obj",
                "object-file",
                "type",
                "section",
                "verbose",
                "help",
            ],
            "graft option",
        )? {
            "key" => key = Some(w.number("KEY after 'key'")?),
            "obj" | "object-file" => {
                file = Some(PathBuf::from(w.expect("an object FILE after 'obj'")?))
            }
            "type" => opts.prog_type = prog_kind(w)?,
            "section" => opts.section = Some(w.expect("a section NAME after 'sec'")?),
            "verbose" => opts.verbose = true,
            _ => {
                print!("{USAGE}");
                return Ok(());
            }
        }
    }
    let file = file.ok_or_else(|| CliError::usage("graft needs 'obj FILE'"))?;
    let section = opts
        .section
        .clone()
        .unwrap_or_else(|| opts.prog_type.default_section().to_string());
    let key = match key {
        Some(k) => k,
        None => key_from_section(&section)?,
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

    let loaded = tcbpf::load::load_file(&file, &opts).map_err(load_error)?;
    if opts.verbose {
        print_load_log(&loaded);
    }
    let prog = loaded.main_program();
    let fd = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&prog.fd))
        .map_err(|_| CliError::failure("program descriptor out of range"))?;
    sys::map::update(
        &array,
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
            "placing section '{}' at key {key} of {}{hint}",
            prog.section,
            map_file.display()
        ))
    })?;
    if g.json {
        let prog_info = sys::info::prog_info(&prog.fd)?;
        g.print_json(&json!({
            "map": map_file.display().to_string(),
            "map_id": info.id,
            "key": key,
            "prog": { "id": prog_info.id, "name": prog.name, "section": prog.section, "tag": prog_info.tag_hex() },
        }))?;
    }
    Ok(())
}

/// tc's rule: a tail-call section `<id>/<key>` names the key.
fn key_from_section(section: &str) -> Result<u32, CliError> {
    section
        .split_once('/')
        .and_then(|(_, key)| parse_number::<u32>(key))
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
        let err = key_from_section("classifier").unwrap_err();
        assert!(err.message.contains("give 'key KEY'"), "{}", err.message);
    }
}

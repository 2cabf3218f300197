//! `filter … bpf obj FILE [type cls|act] [sec NAME] [export UDS
//! [entry-size N]] [verbose]`:
//! load the object, attach its program, then export its maps.
//!
//! The order is tc's: the program is attached before the maps are sent, so an
//! importer that starts working on the maps sees a live classifier; an export
//! that fails (nobody listening) is an error, but the filter stays attached.

use super::error::CliError;
use super::filter::{attach_program, AttachTarget};
use super::obj::{print_load_log, print_load_warnings};
use super::output::Global;
use std::os::fd::AsFd;
use std::path::PathBuf;
use tcbpf::abi::MapType;
use tcbpf::load::{LoadOptions, LoadedObject};
use tcbpf::scm;

/// The program type the object's section is loaded as (`type cls|act`).
pub use tcbpf::load::ProgKind;

/// The environment variable that names the export socket, as for tc.
pub const ENV_UDS: &str = "TC_BPF_UDS";

/// The words after `bpf … obj`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjArgs {
    /// The ELF object file.
    pub file: PathBuf,
    /// `type cls|act`.
    pub kind: ProgKind,
    /// `sec NAME` (None: tc's default section for the type).
    pub section: Option<String>,
    /// `program FUNC`: the function to attach among those of the section.
    pub program: Option<String>,
    /// `export UDS`, else `$TC_BPF_UDS`: where to send the maps after attaching.
    pub export: Option<PathBuf>,
    /// `allow-uid UID`…: receivers trusted besides root and this user.
    pub allowed_uids: Vec<u32>,
    /// `entry-size 20|24|28|36`: the `struct bpf_elf_map` generation the
    /// importer reads (default 36, as tc today).
    pub entry_size: scm::EntrySize,
    /// `max-memory BYTES`: most kernel memory the object's maps may take.
    pub max_memory: Option<u64>,
    /// `verbose`: print the verifier log.
    pub verbose: bool,
}

/// Loads `obj`, attaches its main program to `target` and exports its maps.
pub fn attach_object(g: &Global, target: &AttachTarget, obj: &ObjArgs) -> Result<(), CliError> {
    let verbose = obj.verbose || g.verbose;
    let opts = LoadOptions {
        prog_type: obj.kind,
        section: obj.section.clone(),
        program: obj.program.clone(),
        verbose,
        max_map_memory: obj.max_memory,
        ..LoadOptions::default()
    };
    let loaded = tcbpf::load::load_file(&obj.file, &opts).map_err(CliError::from)?;
    print_load_warnings(&loaded);
    if verbose {
        print_load_log(&loaded);
    }
    let main = loaded.main_program();
    let name = loaded.filter_name();
    if let Err(e) = attach_program(g, target, main.fd.as_fd(), &name) {
        loaded.remove_created_pins();
        return Err(e);
    }
    match &obj.export {
        Some(uds) => export_maps(&loaded, uds, &obj.allowed_uids, obj.entry_size).map_err(|e| {
            e.context(format!(
                "filter '{name}' is attached, but its maps were not exported to {}",
                uds.display()
            ))
        }),
        None => {
            warn_unheld_prog_arrays(&loaded);
            Ok(())
        }
    }
}

/// Sends every map of the loaded object (legacy, BTF-defined and global
/// data) to the importer listening on `uds`, as tc describes them
/// (`LoadedObject::export`).
fn export_maps(
    loaded: &LoadedObject,
    uds: &std::path::Path,
    allowed_uids: &[u32],
    entry_size: scm::EntrySize,
) -> Result<(), CliError> {
    let opts = scm::SendOptions {
        allowed_uids: allowed_uids.to_vec(),
        entry_size,
    };
    loaded.export(uds, &opts).map_err(CliError::from)
}

/// The kernel empties a program array when its last user-space holder closes
/// it: tail calls through an array that is neither pinned nor exported stop
/// working when tcbpf exits. Say so, as the operator cannot see it otherwise.
fn warn_unheld_prog_arrays(loaded: &LoadedObject) {
    for m in &loaded.maps {
        if m.spec.map_type == MapType::ProgArray && m.pin_path.is_none() {
            eline!(
                "tcbpf: warning: program array '{}' is neither pinned nor exported: the kernel \
                 empties it when tcbpf exits, so tail calls through it will not happen \
                 (pin it, or use 'export UDS' to hand it to a holder)",
                m.spec.name
            );
        }
    }
}

//! Turning an `ObjectSpec` into live kernel objects (`LoadedObject`):
//! map creation and pinning, relocation, BTF upload, tail calls, map-in-map.
//!
//! The semantics are tc's: the program is chosen by section (default
//! `classifier` / `action`) or function name; other program sections are
//! loaded only when they are tail-call targets; pinned maps live under
//! `<bpffs>/tc/…` and are reused when their definition matches. Nothing
//! here prints: verifier logs and notes are returned for the caller to show.
//! A failed load leaves no pin or directory behind.
//!
//! # Load, then export the maps as tc does
//!
//! [`load_file`] is `tc filter add … obj FILE` without the attach (see the
//! crate's example for that); [`LoadedObject::export`] is its `export UDS`:
//! every map, described as iproute2's `struct bpf_elf_map` and numbered as
//! in the object, sent with its descriptor to the importer bound at the
//! socket (`tcbpf exec bpf import UDS`, or [`crate::exec::agent::receive`]).
//! The hidden lines give the example a private bpffs; without root it skips
//! itself.
//!
//! ```
//! # tcbpf_testkit::require_root!(Ok(()));
//! # let fs = tcbpf_testkit::Bpffs::new();
//! # let file = tcbpf_testkit::fixture("legacy.o");
//! # let dir = tcbpf_testkit::TempDir::new("doc_export");
//! # let uds = dir.join("import.sock");
//! use tcbpf::load::{load_file, LoadOptions};
//! use tcbpf::scm::{self, ReceiveOptions, SendOptions};
//!
//! let opts = LoadOptions {
//!     bpffs: fs.path.clone(),
//!     ..LoadOptions::default()
//! };
//! # let opts = fs.options();
//! let obj = load_file(&file, &opts)?;
//! println!("loaded {} ({} maps)", obj.filter_name(), obj.maps.len());
//! for p in &obj.programs {
//!     assert!(p.verifier_log.is_empty()); // filled when `opts.verbose`
//! }
//!
//! // An importer is bound at `uds` (here: this process).
//! let importer = scm::Receiver::bind(&uds, scm::DEFAULT_MODE)?;
//! obj.export(&uds, &SendOptions::default())?;
//! let got = importer.receive(&ReceiveOptions::default(), |_| {})?;
//! assert_eq!(got.maps.len(), obj.maps.len());
//! assert_eq!(got.maps[0].desc.id, obj.maps[0].spec.id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod btf;
mod budget;
mod core;
mod error;
mod export;
pub mod externs;
pub mod kconfig;
pub mod map_defaults;
mod maps;
pub mod pin;
mod programs;
mod tail_calls;

pub use budget::{estimate as map_memory_estimate, ENV_MAX_MAP_MEMORY};
pub use error::{
    CoreCause, CoreFailure, LoadError, PinMismatch, VerifierRejection, LOG_TAIL_LINES,
};

use crate::elf::{MapOrigin, MapSpec, ObjectSpec, SlotTarget, TailCallSlot, KCONFIG_SECTION};
use crate::sys::{self, BtfFd, MapFd, ProgFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::abi::ProgKind;

/// How to load an object.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Program type (`type cls` default, `type act`).
    pub prog_type: ProgKind,
    /// The main program's section (`sec NAME`); default by `prog_type`.
    pub section: Option<String>,
    /// The main program's function name (`program NAME`); with `section`
    /// too, the function must be in that section.
    pub program: Option<String>,
    /// Functions to load too, after the main program and sharing its maps
    /// (`tcbpf chain apply` attaches several programs of one object).
    pub also_programs: Vec<String>,
    /// Where tc's pins live; mounted when it is not a bpffs and a map is pinned.
    pub bpffs: PathBuf,
    /// iproute2's custom pinning table.
    pub pinning_db: PathBuf,
    /// Keep the verifier log of every program (`verbose`).
    pub verbose: bool,
    /// Upload the object's BTF and use it (default true).
    pub use_btf: bool,
    /// Also pin the main program here (`obj load … pin PATH`); a failure
    /// undoes the whole load, map pins included.
    pub pin_program: Option<PathBuf>,
    /// Target BTF for CO-RE relocations (`btf FILE`); default the running
    /// kernel's `/sys/kernel/btf/vmlinux` (and module BTF).
    pub target_btf: Option<PathBuf>,
    /// Most kernel memory the object's maps may take (`max-memory BYTES`);
    /// None: `$TCBPF_MAX_MAP_MEMORY`, else half of the RAM. Checked before
    /// any map is created.
    pub max_map_memory: Option<u64>,
    /// Maps taken as they are instead of created (or opened from their
    /// pins): `(map name, kernel map id)`. Each must have the object's
    /// definition (type, sizes, max entries, flags). `filter upgrade`
    /// passes the running program's maps it reuses.
    pub given_maps: Vec<(String, u32)>,
    /// Create the other maps unpinned and leave every pin alone (no pin
    /// reused or made): `filter upgrade` pins the new maps itself, by
    /// rename over the old pins, once the new program runs.
    pub defer_pins: bool,
    /// The program the object's tracing programs (`fentry`/`fexit`
    /// sections, `abi::TRACE_SECTIONS`) attach to; they do not load
    /// without one.
    pub trace_target: Option<TraceTarget>,
    /// Maps taken as they are instead of created, by map name: another
    /// load's maps shared with this one (each descriptor is duplicated;
    /// the map counts as reused).
    pub shared_maps: Vec<(String, Arc<MapFd>)>,
}

/// What a tracing program is loaded against (`attach_prog_fd`,
/// `attach_btf_id`): a program's function, or without a program a type of
/// the kernel's BTF (a function for fentry/fexit, the `btf_trace_*`
/// typedef of a tracepoint for `tp_btf`).
#[derive(Debug, Clone)]
pub struct TraceTarget {
    /// The traced program (`None`: the kernel).
    pub prog: Option<Arc<ProgFd>>,
    /// The BTF type id of the function: in the program's own BTF
    /// (`sys::info::ProgInfo::main_func_type_id`), else in vmlinux's.
    pub func_type_id: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            prog_type: ProgKind::Cls,
            section: None,
            program: None,
            also_programs: Vec::new(),
            bpffs: sys::fs::bpffs_root(),
            pinning_db: PathBuf::from(pin::DEFAULT_PINNING_DB),
            verbose: false,
            use_btf: true,
            pin_program: None,
            target_btf: None,
            max_map_memory: None,
            trace_target: None,
            shared_maps: Vec::new(),
            given_maps: Vec::new(),
            defer_pins: false,
        }
    }
}

/// A live map of a loaded object.
#[derive(Debug)]
pub struct LoadedMap {
    /// Its definition (with the id an importer sees).
    pub spec: MapSpec,
    /// The map.
    pub fd: MapFd,
    /// Where it is pinned, when it is.
    pub pin_path: Option<PathBuf>,
    /// True when an existing pin was reused rather than a map created.
    pub reused: bool,
}

/// A loaded program.
#[derive(Debug)]
pub struct LoadedProgram {
    /// Its section.
    pub section: String,
    /// Its function name.
    pub name: String,
    /// The program.
    pub fd: ProgFd,
    /// The tail-call slot it was stored in, for `<id>/<key>` sections.
    pub tail_call: Option<TailCallSlot>,
    /// The verifier log (empty unless `verbose`).
    pub verifier_log: String,
}

/// Which object file was loaded: path, content hash, and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentity {
    /// The path as given.
    pub path: PathBuf,
    /// SHA-1 of the file's bytes, 40 hex digits (the `PIN_OBJECT_NS` directory).
    pub sha1_hex: String,
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
}

impl ObjectIdentity {
    /// The identity of `bytes` read from `path`.
    pub fn of(path: &Path, bytes: &[u8]) -> Result<ObjectIdentity, LoadError> {
        use sha1::{Digest, Sha1};
        let meta = std::fs::metadata(path).map_err(|e| LoadError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let digest = Sha1::digest(bytes);
        let sha1_hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(ObjectIdentity {
            path: path.to_path_buf(),
            sha1_hex,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// A loaded object: its maps and programs, held open. Dropping it closes
/// every descriptor (pins stay).
#[derive(Debug)]
pub struct LoadedObject {
    /// The object file as given.
    pub path: PathBuf,
    /// SHA-1 of the file, 40 hex digits.
    pub sha1_hex: String,
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// Every map of the object, in object order (as `ObjectSpec::maps`).
    pub maps: Vec<LoadedMap>,
    /// The loaded programs: the main program first, then tail-call targets.
    pub programs: Vec<LoadedProgram>,
    /// Index of the main program in `programs` (always 0).
    pub main: usize,
    /// The object's BTF, when the kernel took it.
    pub btf: Option<BtfFd>,
    /// What `verbose` reports besides verifier logs: reused pins, BTF
    /// refused, maps not pinned.
    pub notes: Vec<String>,
    /// What the caller should always show: parts of the object this load
    /// left out that the author likely meant to use (a tail-call section
    /// no program array takes).
    pub warnings: Vec<String>,
    /// The pins this load created (not those it reused) and their directories.
    created_pins: pin::CreatedPins,
}

impl LoadedObject {
    /// Takes away the pins this load created and the directories it made
    /// for them, keeping the pins it reused: for a caller whose use of the
    /// object failed (a filter that did not attach), so no orphan maps stay
    /// in bpffs.
    pub fn remove_created_pins(&self) {
        self.created_pins.remove();
    }

    /// The program to attach.
    pub fn main_program(&self) -> &LoadedProgram {
        &self.programs[self.main]
    }

    /// The file's base name (`demo.o`).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// The name tc gives the filter: `FILE:[SECTION]`, FILE the base name.
    pub fn filter_name(&self) -> String {
        format!("{}:[{}]", self.file_name(), self.main_program().section)
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<&LoadedMap> {
        self.maps.iter().find(|m| m.spec.name == name)
    }

    /// The loaded program whose function is `name`.
    pub fn program(&self, name: &str) -> Option<&LoadedProgram> {
        self.programs.iter().find(|p| p.name == name)
    }
}

/// What one load needs to know besides the spec.
pub(crate) struct Context<'a> {
    pub file: String,
    pub bpffs: &'a Path,
    pub sha1_hex: String,
    pub pinning_db: Vec<(u32, String)>,
    pub bpffs_ready: bool,
    pub prog_type: u32,
    pub verbose: bool,
    pub notes: Vec<String>,
    pub trace_target: Option<&'a TraceTarget>,
    pub shared_maps: &'a [(String, Arc<MapFd>)],
    pub given_maps: &'a [(String, u32)],
    pub defer_pins: bool,
}

/// Reads, parses and loads the object at `path`.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<LoadedObject, LoadError> {
    let bytes =
        crate::sys::file::read_regular(path, crate::sys::file::MAX_OBJECT_BYTES).map_err(|e| {
            LoadError::Read {
                path: path.to_path_buf(),
                source: e,
            }
        })?;
    let identity = ObjectIdentity::of(path, &bytes)?;
    let spec = ObjectSpec::parse(&path.display().to_string(), &bytes)?;
    load_spec(&spec, &identity, opts)
}

/// The index in `spec.programs` of the program `opts` asks for.
pub fn select_program(spec: &ObjectSpec, opts: &LoadOptions) -> Result<usize, LoadError> {
    let found = match (&opts.program, &opts.section) {
        (Some(name), Some(sec)) => spec
            .programs
            .iter()
            .position(|p| &p.name == name && &p.section == sec),
        (Some(name), None) => spec.programs.iter().position(|p| &p.name == name),
        (None, Some(sec)) => spec.programs.iter().position(|p| &p.section == sec),
        (None, None) => {
            let sec = opts.prog_type.default_section();
            spec.programs.iter().position(|p| p.section == sec)
        }
    };
    found.ok_or_else(|| {
        let wanted = match (&opts.program, &opts.section) {
            (Some(name), Some(sec)) => format!("program '{name}' in section '{sec}'"),
            (Some(name), None) => format!("program '{name}'"),
            (None, Some(sec)) => format!("section '{sec}'"),
            (None, None) => format!("section '{}'", opts.prog_type.default_section()),
        };
        let mut available: Vec<String> = spec.programs.iter().map(|p| p.section.clone()).collect();
        available.dedup();
        LoadError::NoProgram {
            file: spec.file.clone(),
            wanted,
            available,
        }
    })
}

/// The programs to load: the main one, then every tail-call target (legacy
/// `<id>/<key>` sections whose program array exists, and programs named by
/// BTF `values` initialisers). A section that names a slot in no program
/// array, or only looks like `<id>/<key>` (`08/1`), is not loaded, with a
/// warning: iproute2 skips both silently, leaving the slot empty.
fn programs_to_load(spec: &ObjectSpec, main: usize, warnings: &mut Vec<String>) -> Vec<usize> {
    let mut wanted = vec![main];
    for (i, p) in spec.programs.iter().enumerate() {
        if i == main {
            continue;
        }
        match p.tail_call {
            Some(slot) if tail_calls::array_for(spec, slot).is_some() => wanted.push(i),
            Some(slot) => warnings.push(format!(
                "section '{}' names tail-call slot {} of map id {} ({:#x}), but the object has \
                 no program array with that id: not loaded",
                p.section, slot.key, slot.map_id, slot.map_id
            )),
            None if TailCallSlot::looks_like(&p.section) => warnings.push(format!(
                "section '{}' looks like a tail call but is not '<id>/<key>' as iproute2 reads \
                 it (sscanf \"%i/%i\": decimal, 0x hex or 0 octal numbers): not loaded",
                p.section
            )),
            None => {}
        }
    }
    for m in &spec.maps {
        for s in &m.initial_slots {
            if let SlotTarget::Program(name) = &s.target {
                if let Some(i) = spec.programs.iter().position(|p| &p.name == name) {
                    if !wanted.contains(&i) {
                        wanted.push(i);
                    }
                }
            }
        }
    }
    wanted
}

/// Checks, before anything is created, that the program can be pinned at
/// `path`: on a bpffs (mounting `opts.bpffs` first when `path` is under it)
/// and not taken.
fn check_pin_path(ctx: &mut Context<'_>, opts: &LoadOptions, path: &Path) -> Result<(), LoadError> {
    let invalid = |reason: String| LoadError::Invalid {
        file: ctx.file.clone(),
        what: format!("pin path {}", path.display()),
        reason,
    };
    if path.symlink_metadata().is_ok() {
        return Err(invalid("already exists".into()));
    }
    if path.starts_with(&opts.bpffs) {
        sys::fs::ensure_bpffs(&opts.bpffs).map_err(|e| LoadError::Sys {
            file: ctx.file.clone(),
            what: format!("bpffs {}", opts.bpffs.display()),
            source: e,
        })?;
        ctx.bpffs_ready = true;
    }
    let existing = path.ancestors().skip(1).find(|a| a.exists());
    match existing {
        Some(dir) if sys::fs::is_bpffs(dir) => Ok(()),
        Some(dir) => Err(invalid(format!(
            "{} is not on a bpf filesystem (mount one, or pin under {})",
            dir.display(),
            opts.bpffs.display()
        ))),
        None => Err(invalid("no such directory".into())),
    }
}

/// Loads a parsed object: BTF, maps (pinned as tc pins them), the chosen
/// program and its tail-call targets, and the program arrays filled.
pub fn load_spec(
    spec: &ObjectSpec,
    identity: &ObjectIdentity,
    opts: &LoadOptions,
) -> Result<LoadedObject, LoadError> {
    let main = select_program(spec, opts)?;
    let mut ctx = Context {
        file: spec.file.clone(),
        bpffs: &opts.bpffs,
        sha1_hex: identity.sha1_hex.clone(),
        pinning_db: pin::read_pinning_db(&opts.pinning_db),
        bpffs_ready: false,
        prog_type: opts.prog_type.prog_type(),
        verbose: opts.verbose,
        notes: Vec::new(),
        trace_target: opts.trace_target.as_ref(),
        shared_maps: &opts.shared_maps,
        given_maps: &opts.given_maps,
        defer_pins: opts.defer_pins,
    };
    let mut warnings = Vec::new();
    let mut wanted = programs_to_load(spec, main, &mut warnings);
    for name in &opts.also_programs {
        let i = spec
            .programs
            .iter()
            .position(|p| &p.name == name)
            .ok_or_else(|| LoadError::NoProgram {
                file: spec.file.clone(),
                wanted: format!("program '{name}'"),
                available: {
                    let mut v: Vec<String> =
                        spec.programs.iter().map(|p| p.section.clone()).collect();
                    v.dedup();
                    v
                },
            })?;
        if !wanted.contains(&i) {
            wanted.push(i);
        }
    }
    // Externs first, as libbpf resolves them before other relocations.
    // Always against the running kernel (`btf FILE` is for CO-RE only,
    // as libbpf's btf_custom_path): the ids go into its verifier.
    let outcomes = externs::resolve(spec);
    externs::check(spec, &outcomes)?;
    if ctx.verbose {
        for (e, o) in spec.externs.iter().zip(&outcomes) {
            let what = match o {
                Ok(r) => r.to_string(),
                Err(u) => format!("unresolved ({}), zero", u.reason),
            };
            ctx.notes
                .push(format!("extern ({}) '{}': {what}", e.kind.name(), e.name));
        }
    }
    let with_kconfig;
    let spec = match spec
        .maps
        .iter()
        .position(|m| m.origin == MapOrigin::GlobalData && m.name == KCONFIG_SECTION)
    {
        Some(i) => {
            let mut s = spec.clone();
            let size = s.maps[i].value_size as usize;
            s.maps[i].data = Some(externs::kconfig_data(spec, &outcomes, size));
            with_kconfig = s;
            &with_kconfig
        }
        None => spec,
    };
    let modules = externs::ModuleBtfs::open(spec, &outcomes)?;
    let targets = core::targets(spec, opts.target_btf.as_ref())?;
    if let Some(path) = &opts.pin_program {
        check_pin_path(&mut ctx, opts, path)?;
    }
    budget::check(&ctx, spec, opts.max_map_memory)?;
    let btf = if opts.use_btf {
        btf::upload(&mut ctx, spec)
    } else {
        None
    };
    let mut guard = pin::PinGuard::default();
    let maps = maps::create_all(&mut ctx, spec, btf.as_ref(), &mut guard)?;
    let mut programs = Vec::with_capacity(wanted.len());
    for i in wanted {
        // CO-RE first: it patches offsets the other relocations do not touch.
        let (prog, core) = core::relocate(&mut ctx, spec, &spec.programs[i], targets.as_ref())?;
        programs.push(
            programs::load(
                &mut ctx,
                spec,
                &prog,
                &maps,
                btf.as_ref(),
                (&outcomes, &modules),
            )
            .map_err(|e| core::explain(e, &prog, &core))?,
        );
    }
    tail_calls::fill(&ctx, spec, &maps, &programs)?;
    if let Some(path) = &opts.pin_program {
        guard
            .pin(&programs[0].fd, path)
            .map_err(|e| LoadError::Sys {
                file: ctx.file.clone(),
                what: format!("pinning program '{}'", programs[0].name),
                source: e,
            })?;
    }
    let created_pins = guard.commit();
    Ok(LoadedObject {
        path: identity.path.clone(),
        sha1_hex: identity.sha1_hex.clone(),
        dev: identity.dev,
        ino: identity.ino,
        maps,
        programs,
        main: 0,
        btf,
        notes: ctx.notes,
        warnings,
        created_pins,
    })
}

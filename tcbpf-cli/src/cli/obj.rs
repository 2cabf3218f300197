//! `tcbpf obj …`: inspect an eBPF object file (`show`) or load it without
//! attaching and pin its program (`load`).

use super::error::CliError;
use super::output::Global;
use super::words::{self, keywords, Words};
use serde_json::{json, Value};
use std::path::PathBuf;
use tcbpf::elf::{MapSpec, ObjectSpec, ProgramSpec, SectionKind};
use tcbpf::load::{LoadOptions, ProgKind};

/// `tcbpf obj help`.
pub const USAGE: &str = "\
Usage: tcbpf obj show FILE
       tcbpf obj load FILE [ type { cls | act | xdp } ] [ { sec NAME | program NAME } ]
                      [ bpffs DIR ] [ btf FILE ] [ max-memory BYTES ] [ verbose ] pin PATH

  show   list the object's sections, programs (instruction counts, the
         subprograms linked in, map references), maps (definition, id,
         pinning), CO-RE relocations and externs (kind, name, weak or
         strong, what the running kernel resolves them to); -j prints JSON
  load   load the object as tc would (maps created or reused from their pins,
         tail-call programs stored in their program arrays) without attaching,
         and pin the chosen program at PATH (in a bpffs); prints its id.
         type: program type, cls (default), act or xdp; sec: the program's
         section (default classifier / action / xdp); program: the program's function name;
         bpffs: where tc's pins live (default /sys/fs/bpf, mounted if absent);
         btf: the target BTF for CO-RE relocations (default the running
         kernel's /sys/kernel/btf/vmlinux, and module BTF);
         max-memory: most kernel memory the object's maps may take, checked
         before any map is created (default $TCBPF_MAX_MAP_MEMORY, else half
         of the RAM);
         verbose: print the verifier log, each CO-RE and extern resolution
         and the map defaults applied
";

/// Runs `tcbpf obj …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let Some(verb) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage("expected show or load"));
    };
    match ObjVerb::choose(&verb)? {
        ObjVerb::Show => show(g, w),
        ObjVerb::Load => load(g, w),
    }
}

keywords! {
    /// The verbs of `tcbpf obj`.
    pub(crate) enum ObjVerb("obj command") { Show = "show", Load = "load" }
}

keywords! {
    /// The options of `obj load`.
    pub(crate) enum LoadOption("obj load option") {
        Type = "type",
        Section = "section",
        Program = "program",
        Bpffs = "bpffs",
        Verbose = "verbose",
        Pin = "pin",
        Btf = "btf",
        MaxMemory = "max-memory",
    }
}

fn show(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let file = PathBuf::from(w.expect("an object FILE")?);
    w.finish()?;
    let bytes =
        tcbpf::elf::read_object(&file).map_err(|e| super::error::object_read_error(&file, e))?;
    let spec = ObjectSpec::parse(&file.display().to_string(), &bytes)?;
    let externs = super::obj_externs::outcomes(&spec);
    if g.json {
        let mut v = spec_json(&spec);
        v["externs"] = super::obj_externs::json(&spec, &externs);
        g.print_json(&v)?;
        return Ok(());
    }
    print!("{}", spec_text(&spec));
    print!("{}", super::obj_externs::text(&spec, &externs));
    Ok(())
}

fn map_json(m: &MapSpec) -> Value {
    json!({
        "name": m.name,
        "origin": m.origin.name(),
        "id": m.id,
        "type": m.map_type.name(),
        "bytes_key": m.key_size,
        "bytes_value": m.value_size,
        "max_entries": m.max_entries,
        "flags": m.flags,
        "pinning": m.pinning.to_string(),
        "inner_id": m.inner_id,
        "inner_idx": m.inner_idx,
        "inner": m.inner.as_deref().map(map_json),
        "initial_slots": m.initial_slots.iter().map(|s| json!({
            "key": s.key,
            "target": match &s.target {
                tcbpf::elf::SlotTarget::Program(p) => json!({"program": p}),
                tcbpf::elf::SlotTarget::Map(i) => json!({"map": i}),
            },
        })).collect::<Vec<_>>(),
        "frozen": u8::from(m.freeze),
    })
}

fn program_json(p: &ProgramSpec) -> Value {
    json!({
        "name": p.name,
        "section": p.section,
        "insns": p.insns.len(),
        "subprograms": p.subprograms().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "map_refs": p.map_refs.len(),
        "tail_call": p.tail_call.map(|t| json!({"map_id": t.map_id, "key": t.key})),
    })
}

fn spec_json(spec: &ObjectSpec) -> Value {
    json!({
        "file": spec.file,
        "license": spec.license,
        "legacy_map_size": spec.legacy_map_size,
        "btf_types": spec.btf.as_ref().map(|b| b.own_types().count()),
        "btf_ext": spec.btf_ext.is_some(),
        "sections": spec.sections.iter().filter(|s| s.index > 0).map(|s| json!({
            "index": s.index,
            "name": s.name,
            "kind": s.kind.name(),
            "size": s.size,
            "relocations": s.relocations,
        })).collect::<Vec<_>>(),
        "programs": spec.programs.iter().map(program_json).collect::<Vec<_>>(),
        "maps": spec.maps.iter().map(map_json).collect::<Vec<_>>(),
        "core_relocations": core_relocations(spec).iter().map(|r| json!({
            "section": r.section,
            "insn": r.insn,
            "kind": r.kind.name(),
            "access": r.access,
            "local": r.local,
        })).collect::<Vec<_>>(),
    })
}

fn core_relocations(spec: &ObjectSpec) -> Vec<tcbpf::btf::core::RelocationInfo> {
    match (&spec.btf, &spec.btf_ext) {
        (Some(btf), Some(ext)) => tcbpf::btf::core::describe_relocations(btf, ext),
        _ => Vec::new(),
    }
}

fn spec_text(spec: &ObjectSpec) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{}: license \"{}\"", spec.file, spec.license);
    let _ = writeln!(out, "sections:");
    for s in spec
        .sections
        .iter()
        .filter(|s| s.kind != SectionKind::Other)
    {
        let relocs = if s.relocations > 0 {
            format!("  {} relocations", s.relocations)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:>3} {:<24} {:<9} {:>7} bytes{relocs}",
            s.index,
            s.name,
            s.kind.name(),
            s.size
        );
    }
    let _ = writeln!(out, "programs:");
    for p in &spec.programs {
        let _ = write!(
            out,
            "  {} sec {} insns {}",
            p.name,
            p.section,
            p.insns.len()
        );
        let subs: Vec<&str> = p.subprograms().map(|s| s.name.as_str()).collect();
        if !subs.is_empty() {
            let _ = write!(out, " calls {}", subs.join(","));
        }
        if let Some(t) = p.tail_call {
            let _ = write!(out, " tail_call map_id {} key {}", t.map_id, t.key);
        }
        let _ = writeln!(out, " map_refs {}", p.map_refs.len());
    }
    let _ = writeln!(out, "maps:");
    for m in &spec.maps {
        let _ = write!(
            out,
            "  {} id {} {} {} pinning {}",
            m.name,
            m.id,
            m.origin.name(),
            m.definition(),
            m.pinning
        );
        if m.inner_id != 0 || m.inner_idx != 0 {
            let _ = write!(out, " inner_id {} inner_idx {}", m.inner_id, m.inner_idx);
        }
        if let Some(inner) = &m.inner {
            let _ = write!(out, " inner {{ {} }}", inner.definition());
        }
        for s in &m.initial_slots {
            match &s.target {
                tcbpf::elf::SlotTarget::Program(p) => {
                    let _ = write!(out, " [{}]={p}", s.key);
                }
                tcbpf::elf::SlotTarget::Map(i) => {
                    let _ = write!(out, " [{}]={}", s.key, spec.maps[*i].name);
                }
            }
        }
        if m.freeze {
            let _ = write!(out, " frozen");
        }
        let _ = writeln!(out);
    }
    let core = core_relocations(spec);
    if !core.is_empty() {
        let _ = writeln!(out, "core relocations:");
        for r in &core {
            let _ = writeln!(out, "  {r}");
        }
    }
    out
}

/// The program type after `type`: a type word of the library's section
/// table (`cls`, `act`, `xdp`, or a prefix of one), so a new program type
/// needs no word here.
pub(crate) fn prog_kind(w: &mut Words) -> Result<ProgKind, CliError> {
    let t = w.expect("cls or act after 'type'")?;
    if words::is_help(&t) {
        return Err(CliError::help());
    }
    let all: Vec<&'static str> = ProgKind::ALL.iter().map(|k| k.section().word).collect();
    let picked = words::choose(&t, &all, "program type")?;
    Ok(ProgKind::from_word(picked).expect("choose returns one of the table's words"))
}

/// Prints the loader's warnings (always: what the load left out).
pub(crate) fn print_load_warnings(obj: &tcbpf::load::LoadedObject) {
    for w in &obj.warnings {
        eprintln!("tcbpf: warning: {}: {w}", obj.path.display());
    }
}

/// Prints the loader's notes and every program's verifier log (`verbose`).
pub(crate) fn print_load_log(obj: &tcbpf::load::LoadedObject) {
    for note in &obj.notes {
        eline!("{note}");
    }
    for p in &obj.programs {
        if !p.verifier_log.is_empty() {
            eline!(
                "verifier log of '{}' (section {}):\n{}",
                p.name,
                p.section,
                p.verifier_log.trim_end()
            );
        }
    }
}

fn load(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let file = PathBuf::from(w.expect("an object FILE")?);
    let mut opts = LoadOptions {
        verbose: g.verbose,
        ..LoadOptions::default()
    };
    while let Some(word) = w.next() {
        match LoadOption::choose(&word)? {
            LoadOption::Type => opts.prog_type = prog_kind(w)?,
            LoadOption::Section => opts.section = Some(w.expect("a section NAME after 'sec'")?),
            LoadOption::Program => {
                opts.program = Some(w.expect("a function NAME after 'program'")?)
            }
            LoadOption::Bpffs => opts.bpffs = PathBuf::from(w.expect("a DIR after 'bpffs'")?),
            LoadOption::Verbose => opts.verbose = true,
            LoadOption::Btf => {
                opts.target_btf = Some(PathBuf::from(w.expect("a BTF FILE after 'btf'")?))
            }
            LoadOption::MaxMemory => {
                opts.max_map_memory = Some(w.number("BYTES after 'max-memory'")?)
            }
            LoadOption::Pin => {
                opts.pin_program = Some(PathBuf::from(w.expect("a PATH after 'pin'")?))
            }
        }
    }
    let Some(pin) = opts.pin_program.clone() else {
        return Err(CliError::usage(
            "obj load needs 'pin PATH' (the program is released otherwise)",
        ));
    };
    let obj = tcbpf::load::load_file(&file, &opts).map_err(CliError::from)?;
    print_load_warnings(&obj);
    if opts.verbose {
        print_load_log(&obj);
    }
    let main = obj.main_program();
    let info = tcbpf::sys::info::prog_info(&main.fd)?;
    let maps: Vec<Value> = obj
        .maps
        .iter()
        .map(|m| {
            let kernel_id = tcbpf::sys::info::map_info(&m.fd).map(|i| i.id).unwrap_or(0);
            json!({
                "name": m.spec.name,
                "id": m.spec.id,
                "kernel_id": kernel_id,
                "pinned": m.pin_path.as_ref().map(|p| p.display().to_string()),
                "reused": m.reused,
            })
        })
        .collect();
    if g.json {
        g.print_json(&json!({
            "name": obj.filter_name(),
            "program": {
                "name": main.name,
                "section": main.section,
                "id": info.id,
                "tag": info.tag_hex(),
                "pinned": pin.display().to_string(),
            },
            "tail_calls": obj.programs.iter().skip(1).map(|p| json!({
                "name": p.name,
                "section": p.section,
            })).collect::<Vec<_>>(),
            "maps": maps,
        }))?;
    } else {
        use std::fmt::Write as _;
        let mut text = format!(
            "{} prog id {} tag {} pinned {}\n",
            obj.filter_name(),
            info.id,
            info.tag_hex(),
            pin.display()
        );
        for p in obj.programs.iter().skip(1) {
            let _ = writeln!(text, "  tail call {} sec {}", p.name, p.section);
        }
        for m in &maps {
            let pinned = m["pinned"]
                .as_str()
                .map(|p| format!(" pinned {p}"))
                .unwrap_or_default();
            let reused = if m["reused"] == json!(true) {
                " (reused)"
            } else {
                ""
            };
            let _ = writeln!(
                text,
                "  map {} id {} kernel id {}{pinned}{reused}",
                m["name"].as_str().unwrap_or(""),
                m["id"],
                m["kernel_id"]
            );
        }
        print!("{text}");
    }
    Ok(())
}

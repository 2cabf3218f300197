//! ELF object parsing into an `ObjectSpec`: maps, programs, relocations,
//! BTF and license, as plain data that can be inspected and edited.
//! Pure: no syscalls here (reading the file is the caller's business, or
//! [`ObjectSpec::from_file`]'s).
//!
//! Both map definition styles are understood: iproute2's legacy
//! `struct bpf_elf_map` in section `maps` (every size it has used) and
//! BTF-defined maps in `.maps`. Global data sections become array maps.

mod btf_maps;
mod error;
mod externs;
mod func_info;
mod global_data;
mod legacy_maps;
mod map;
mod program;
mod reader;
mod subprog;

pub use error::{ParseCause, ParseError};
pub use externs::{ExternKind, ExternRef, ExternSpec, KconfigType, KCONFIG_SECTION, KSYMS_SECTION};
pub use map::{MapOrigin, MapSpec, Pinning, SlotInit, SlotTarget};
pub use program::{MapRef, MapRefKind, Placement, ProgramSpec, TailCallSlot};

use std::path::Path;

/// What a section of the object is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// A code section holding programs (`classifier`, `action`, `1/0`…).
    Program,
    /// `.text`: subprograms only.
    Text,
    /// Legacy map definitions (`maps`).
    LegacyMaps,
    /// BTF-defined maps (`.maps`).
    BtfMaps,
    /// Global data (`.data*`, `.rodata*`, `.bss*`).
    Data,
    /// `license`.
    License,
    /// `version` (old kernels' version check; ignored).
    Version,
    /// `.BTF`.
    Btf,
    /// `.BTF.ext`.
    BtfExt,
    /// Anything else (symbol tables, relocations, debug info).
    Other,
}

impl SectionKind {
    /// A short word for listings.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Program => "program",
            SectionKind::Text => "text",
            SectionKind::LegacyMaps => "maps",
            SectionKind::BtfMaps => "btf_maps",
            SectionKind::Data => "data",
            SectionKind::License => "license",
            SectionKind::Version => "version",
            SectionKind::Btf => "btf",
            SectionKind::BtfExt => "btf_ext",
            SectionKind::Other => "other",
        }
    }
}

/// One section, as `obj show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    /// ELF section index.
    pub index: usize,
    /// Name.
    pub name: String,
    /// What it holds.
    pub kind: SectionKind,
    /// Size in bytes.
    pub size: u64,
    /// Number of relocations against it.
    pub relocations: usize,
}

/// A parsed eBPF object: everything needed to load it, as plain data.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// The file name given to the parser (for messages).
    pub file: String,
    /// Every section (those that matter to loading are classified).
    pub sections: Vec<SectionInfo>,
    /// Maps in object order: legacy, BTF-defined and global data maps (and
    /// BTF inner map templates) in the order of their sections.
    pub maps: Vec<MapSpec>,
    /// Programs: every global function of a code section other than `.text`.
    pub programs: Vec<ProgramSpec>,
    /// The `license` section's string (empty when absent).
    pub license: String,
    /// Size of one legacy `struct bpf_elf_map` entry, when the object has them.
    pub legacy_map_size: Option<usize>,
    /// The object's BTF, fixed up from the ELF file (data section sizes,
    /// variable offsets) but not yet sanitized for the kernel.
    pub btf: Option<crate::btf::Btf>,
    /// The parsed `.BTF.ext` section (func/line info, CO-RE relocations).
    pub btf_ext: Option<crate::btf::BtfExt>,
    /// Externs (`.kconfig` values, kfuncs, kernel symbols), in libbpf's
    /// order; their `.kconfig` map, when there is one, is in `maps`.
    pub externs: Vec<ExternSpec>,
}

/// Reads an object file for parsing: a regular file of at most 256 MiB
/// (`/dev/zero`, a FIFO or a directory is refused, not read until memory
/// runs out). The error keeps the io::Error, so callers tell a missing
/// file from a bad one.
pub fn read_object(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::sys::file::read_regular(path, crate::sys::file::MAX_OBJECT_BYTES)
}

impl ObjectSpec {
    /// Reads and parses the object at `path` (a regular file of at most
    /// `sys::file::MAX_OBJECT_BYTES`).
    pub fn from_file(path: &Path) -> Result<ObjectSpec, ParseError> {
        let name = path.display().to_string();
        let bytes = read_object(path).map_err(|e| ParseError::read(&name, e))?;
        ObjectSpec::parse(&name, &bytes)
    }

    /// Parses the object bytes; `file` names it in errors.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
        let elf = reader::Elf::parse(file, bytes)?;
        let mut spec = ObjectSpec {
            file: file.to_string(),
            sections: Vec::new(),
            maps: Vec::new(),
            programs: Vec::new(),
            license: String::new(),
            legacy_map_size: None,
            btf: None,
            btf_ext: None,
            externs: Vec::new(),
        };
        let mut resolver = subprog::MapResolver::default();
        let mut btf_maps_section = None;
        let mut btf_ext_data = None;
        for s in &elf.sections {
            let kind = classify(s);
            spec.sections.push(SectionInfo {
                index: s.index,
                name: s.name.clone(),
                kind,
                size: s.size,
                relocations: s.relocs.len(),
            });
            match kind {
                SectionKind::LegacyMaps => {
                    let (entry, maps) = legacy_maps::parse(file, &elf, s)?;
                    resolver.legacy = Some((s.index, entry, spec.maps.len(), maps.len()));
                    spec.legacy_map_size = Some(entry);
                    spec.maps.extend(maps);
                }
                SectionKind::BtfMaps => btf_maps_section = Some(s.index),
                SectionKind::Data => {
                    if let Some(map) = global_data::parse(file, s)? {
                        resolver.data.insert(s.index, spec.maps.len());
                        spec.maps.push(map);
                    }
                }
                SectionKind::License => {
                    let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
                    spec.license = String::from_utf8_lossy(&s.data[..end]).into_owned();
                }
                SectionKind::Btf => spec.btf = Some(btf_maps::parse_btf(file, &elf, s.data)?),
                SectionKind::BtfExt => btf_ext_data = Some(s.data),
                _ => {}
            }
        }
        if let Some(index) = btf_maps_section {
            btf_maps::parse(file, &elf.sections[index], &mut spec, &mut resolver)?;
        }
        if let Some(btf) = &spec.btf {
            for m in spec.maps.iter_mut() {
                match m.origin {
                    MapOrigin::GlobalData => {
                        m.btf_value_type_id = btf.datasec(&m.name).map_or(0, |(id, _)| id);
                    }
                    MapOrigin::Legacy => legacy_maps::annotate_from_btf(btf, m),
                    _ => {}
                }
            }
        }
        let (externs, kconfig) = externs::collect(file, &elf, spec.btf.as_mut())?;
        for (i, e) in externs.iter().enumerate() {
            let target = match (e.kind, &kconfig) {
                (ExternKind::Kconfig { offset, .. }, Some(_)) => {
                    subprog::ExternTarget::Kconfig(spec.maps.len(), offset)
                }
                _ => subprog::ExternTarget::Extern(i),
            };
            resolver.externs.insert(e.name.clone(), target);
        }
        spec.externs = externs;
        spec.maps.extend(kconfig);
        assign_ids(&mut spec.maps);
        subprog::check_relocations(file, &elf, &resolver)?;
        let (functions, code) = program::functions(file, &elf)?;
        let with_globals: std::collections::HashSet<usize> = functions
            .iter()
            .filter(|f| f.global)
            .map(|f| f.section)
            .collect();
        for (i, f) in functions.iter().enumerate() {
            if elf.sections[f.section].name == ".text" {
                continue;
            }
            // tc loads a section from its start: a section without global
            // functions still has its first function as a program.
            if f.global || (!with_globals.contains(&f.section) && f.start == 0) {
                let prog = subprog::link(file, &elf, &functions, &code, i, &resolver)?;
                spec.programs.push(prog);
            }
        }
        if let (Some(data), Some(btf)) = (btf_ext_data, &spec.btf) {
            let ext = crate::btf::BtfExt::parse(data).map_err(|e| {
                ParseError::new(file, e.to_string())
                    .with_cause(e)
                    .in_section(".BTF.ext")
            })?;
            for p in &mut spec.programs {
                func_info::attach(btf, &ext, p);
            }
            spec.btf_ext = Some(ext);
        }
        if let Some(index) = btf_maps_section {
            btf_maps::resolve_initialisers(file, &elf, &elf.sections[index], &mut spec, &resolver)?;
        }
        Ok(spec)
    }

    /// The programs of section `name`, in order.
    pub fn programs_in(&self, section: &str) -> impl Iterator<Item = &ProgramSpec> {
        let section = section.to_string();
        self.programs.iter().filter(move |p| p.section == section)
    }

    /// The program whose function is called `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The index of the map with importer id `id`.
    pub fn map_with_id(&self, id: u32) -> Option<usize> {
        self.maps.iter().position(|m| m.id == id)
    }
}

fn classify(s: &reader::Section<'_>) -> SectionKind {
    use ::object::elf::{SHT_NOBITS, SHT_PROGBITS};
    match s.name.as_str() {
        legacy_maps::SECTION if s.sh_type == SHT_PROGBITS => SectionKind::LegacyMaps,
        ".maps" if matches!(s.sh_type, SHT_PROGBITS | SHT_NOBITS) => SectionKind::BtfMaps,
        "license" => SectionKind::License,
        "version" => SectionKind::Version,
        ".BTF" => SectionKind::Btf,
        ".BTF.ext" => SectionKind::BtfExt,
        ".text" if s.is_exec() => SectionKind::Text,
        _ if s.is_exec() => SectionKind::Program,
        _ if global_data::is_data_section(s) => SectionKind::Data,
        _ => SectionKind::Other,
    }
}

/// Gives every map without an explicit legacy id the lowest id not yet used,
/// in object order. A legacy id of 0 counts as unset.
fn assign_ids(maps: &mut [MapSpec]) {
    let explicit = |m: &MapSpec| m.origin == MapOrigin::Legacy && m.id != 0;
    let mut used: std::collections::BTreeSet<u32> =
        maps.iter().filter(|m| explicit(m)).map(|m| m.id).collect();
    let mut next = 0u32;
    for m in maps.iter_mut().filter(|m| !explicit(m)) {
        while used.contains(&next) {
            next += 1;
        }
        m.id = next;
        used.insert(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::MapType;

    fn map(origin: MapOrigin, id: u32) -> MapSpec {
        let mut m = MapSpec::new("m", origin, MapType::Array);
        m.id = id;
        m
    }

    #[test]
    fn unset_ids_take_the_lowest_free_ids_in_object_order() {
        let mut maps = vec![
            map(MapOrigin::Btf, 0),
            map(MapOrigin::Legacy, 1),
            map(MapOrigin::Legacy, 0),
            map(MapOrigin::GlobalData, 0),
            map(MapOrigin::Legacy, 3),
        ];
        assign_ids(&mut maps);
        let ids: Vec<u32> = maps.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![0, 1, 2, 4, 3]);
    }
}

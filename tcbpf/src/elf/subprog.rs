//! Relocation and linking of one program, as libbpf does it: the program's
//! own function comes first, every subprogram it calls (in `.text` or as a
//! static function of its own section) is appended once, call offsets are
//! rewritten for the new layout, and each 64-bit load of a map or of a
//! global variable becomes a `MapRef` to fill at load time.

use super::externs::ExternRef;
use super::program::{Function, MapRef, MapRefKind, Placement, ProgramSpec, TailCallSlot};
use super::reader::{Elf, Section, SymKind, Symbol};
use super::ParseError;
use crate::abi::Insn;
use std::collections::HashMap;

/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`.
const LD_IMM64: u8 = 0x18;
/// `BPF_PSEUDO_MAP_FD`.
pub(crate) const PSEUDO_MAP_FD: u8 = 1;
/// `BPF_PSEUDO_MAP_VALUE`.
pub(crate) const PSEUDO_MAP_VALUE: u8 = 2;
/// `BPF_PSEUDO_CALL`.
const PSEUDO_CALL: u8 = 1;
/// `BPF_PSEUDO_FUNC`.
const PSEUDO_FUNC: u8 = 4;

/// Finds the map a relocation's symbol names.
#[derive(Debug, Default)]
pub(crate) struct MapResolver {
    /// Legacy `maps` section: (section index, entry size, index of its first map, count).
    pub legacy: Option<(usize, usize, usize, usize)>,
    /// `.maps` section index.
    pub btf_section: Option<usize>,
    /// BTF maps by symbol name.
    pub btf_by_name: HashMap<String, usize>,
    /// BTF maps by (offset, size) in `.maps`.
    pub btf_by_offset: Vec<(u64, u64, usize)>,
    /// BTF maps with `values`: (map index, variable offset, variable size,
    /// offset of `values` in the definition).
    pub btf_values: Vec<(usize, u32, u32, u32)>,
    /// Global data maps by section index.
    pub data: HashMap<usize, usize>,
    /// Externs by symbol name.
    pub externs: HashMap<String, ExternTarget>,
}

/// What a relocation against an extern symbol becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExternTarget {
    /// A `.kconfig` value: (index of the `.kconfig` map, offset in it).
    Kconfig(usize, u32),
    /// Any other extern: its index in `ObjectSpec::externs`.
    Extern(usize),
}

impl MapResolver {
    /// The map (and how it is referred to) that `sym` plus the
    /// instruction's immediate `imm` names; `Ok(None)` when the symbol is
    /// not in a map section.
    fn resolve(&self, sym: &Symbol, imm: i32) -> Result<Option<(usize, MapRefKind)>, String> {
        let Some(section) = sym.section else {
            return Ok(None);
        };
        let offset = if sym.kind == SymKind::Section {
            i64::try_from(sym.value)
                .unwrap_or(i64::MAX)
                .saturating_add(i64::from(imm))
        } else {
            i64::try_from(sym.value).unwrap_or(i64::MAX)
        };
        if let Some((sec, entry, first, count)) = self.legacy {
            if sec == section {
                let index = usize::try_from(offset).unwrap_or(usize::MAX) / entry;
                if offset < 0 || index >= count || offset as usize % entry != 0 {
                    return Err(format!(
                        "refers to offset {offset} of section 'maps', where no map starts"
                    ));
                }
                return Ok(Some((first + index, MapRefKind::Fd)));
            }
        }
        if self.btf_section == Some(section) {
            if sym.kind != SymKind::Section {
                if let Some(&m) = self.btf_by_name.get(&sym.name) {
                    return Ok(Some((m, MapRefKind::Fd)));
                }
            }
            let off = u64::try_from(offset).unwrap_or(u64::MAX);
            return match self.btf_by_offset.iter().find(|(o, _, _)| *o == off) {
                Some((_, _, m)) => Ok(Some((*m, MapRefKind::Fd))),
                None => Err(format!(
                    "refers to offset {offset} of section '.maps', where no map is defined"
                )),
            };
        }
        if let Some(&m) = self.data.get(&section) {
            let extra = if sym.kind == SymKind::Section {
                0
            } else {
                i64::from(imm)
            };
            let off = offset.saturating_add(extra);
            let off = u32::try_from(off)
                .map_err(|_| format!("global data offset {off} out of bounds"))?;
            return Ok(Some((m, MapRefKind::Value { offset: off })));
        }
        Ok(None)
    }
}

/// Checks every relocation of the code sections: on an instruction
/// boundary, inside the section, against a defined symbol.
pub(crate) fn check_relocations(
    file: &str,
    elf: &Elf<'_>,
    resolver: &MapResolver,
) -> Result<(), ParseError> {
    for s in elf.sections.iter().filter(|s| s.is_exec()) {
        for r in &s.relocs {
            let sym = &elf.symbols[r.symbol];
            let err = |reason: String| {
                ParseError::new(file, reason)
                    .in_section(s.name.clone())
                    .at_symbol(sym.name.clone())
            };
            if r.offset % 8 != 0 || r.offset >= s.data.len() as u64 {
                return Err(err(format!(
                    "relocation out of bounds: byte {} of a {}-byte section",
                    r.offset,
                    s.data.len()
                )));
            }
            if sym.section.is_none() && !resolver.externs.contains_key(&sym.name) {
                return Err(err(
                    "relocation to an unknown symbol: neither defined here nor declared as an extern in BTF"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// Links the program whose own function is `functions[main]`.
pub(crate) fn link(
    file: &str,
    elf: &Elf<'_>,
    functions: &[Function],
    code: &[Option<Vec<Insn>>],
    main: usize,
    maps: &MapResolver,
) -> Result<ProgramSpec, ParseError> {
    let main_fn = &functions[main];
    let main_section = &elf.sections[main_fn.section];
    let mut linker = Linker {
        elf,
        functions,
        code,
        insns: Vec::new(),
        layout: Vec::new(),
        placed: HashMap::new(),
    };
    linker.place(main);
    let mut map_refs = Vec::new();
    let mut extern_refs = Vec::new();
    let mut next = 0;
    while next < linker.layout.len() {
        let (fi, placement) = linker.layout[next].clone();
        next += 1;
        let f = &functions[fi];
        let section = &elf.sections[f.section];
        let mut j = 0;
        while j < f.len {
            let sec_insn = f.start + j;
            let pos = placement.program_insn + j;
            let insn = linker.insns[pos];
            let reloc = section.reloc_at(sec_insn as u64 * 8);
            let err = |reason: String| {
                let e = ParseError::new(file, reason).in_section(section.name.clone());
                match reloc {
                    Some(r) => e.at_symbol(elf.symbols[r.symbol].name.clone()),
                    None => e.at_symbol(f.name.clone()),
                }
            };
            let ext = reloc
                .map(|r| &elf.symbols[r.symbol])
                .filter(|s| s.section.is_none())
                .and_then(|s| maps.externs.get(&s.name));
            if let Some(&target) = ext {
                match (target, insn.code) {
                    (ExternTarget::Extern(e), CALL) => extern_refs.push(ExternRef {
                        insn: pos,
                        ext: e,
                        call: true,
                    }),
                    (_, LD_IMM64) if j + 1 >= f.len => {
                        return Err(err(format!(
                            "64-bit load at instruction {sec_insn} is cut off by the end of the function"
                        )))
                    }
                    (ExternTarget::Extern(e), LD_IMM64) => {
                        extern_refs.push(ExternRef {
                            insn: pos,
                            ext: e,
                            call: false,
                        });
                        j += 1;
                    }
                    (ExternTarget::Kconfig(map, offset), LD_IMM64) => {
                        linker.insns[pos].set_src(PSEUDO_MAP_VALUE);
                        map_refs.push(MapRef {
                            insn: pos,
                            map,
                            kind: MapRefKind::Value { offset },
                        });
                        j += 1;
                    }
                    _ => {
                        return Err(err(format!(
                            "extern used at instruction {sec_insn}, which is neither a call nor a 64-bit load"
                        )))
                    }
                }
            } else if insn.code == CALL && insn.src() == PSEUDO_CALL {
                let (tsec, target) = match reloc {
                    Some(r) => {
                        let sym = &elf.symbols[r.symbol];
                        let tsec = code_section(elf, sym).ok_or_else(|| {
                            err("call relocation to a symbol outside code".into())
                        })?;
                        (
                            tsec,
                            (sym.value as i64 / 8).saturating_add(i64::from(insn.imm) + 1),
                        )
                    }
                    None => (f.section, sec_insn as i64 + i64::from(insn.imm) + 1),
                };
                let callee = linker.function_at(tsec, target).ok_or_else(|| {
                    err(format!(
                        "call at instruction {sec_insn} to instruction {target} of section '{}', where no function starts",
                        elf.sections[tsec].name
                    ))
                })?;
                let callee_pos = linker.position_of(callee);
                linker.insns[pos].imm = relative(callee_pos, pos);
            } else if insn.code == LD_IMM64 {
                if j + 1 >= f.len {
                    return Err(err(format!(
                        "64-bit load at instruction {sec_insn} is cut off by the end of the function"
                    )));
                }
                if let Some(r) = reloc {
                    let sym = &elf.symbols[r.symbol];
                    if let Some(tsec) = code_section(elf, sym) {
                        let byte = (sym.value as i64).saturating_add(i64::from(insn.imm));
                        let callee = linker.function_at(tsec, byte / 8).ok_or_else(|| {
                            err(format!(
                                "function address at byte {byte}, where no function starts"
                            ))
                        })?;
                        let callee_pos = linker.position_of(callee);
                        linker.insns[pos].set_src(PSEUDO_FUNC);
                        linker.insns[pos].imm = relative(callee_pos, pos);
                    } else {
                        let (map, kind) = maps
                            .resolve(sym, insn.imm)
                            .map_err(&err)?
                            .ok_or_else(|| {
                                err(format!(
                                    "64-bit load of a symbol in section '{}', which holds neither maps nor global data",
                                    sym.section.map_or("", |i| elf.sections[i].name.as_str())
                                ))
                            })?;
                        let src = match kind {
                            MapRefKind::Fd => PSEUDO_MAP_FD,
                            MapRefKind::Value { .. } => PSEUDO_MAP_VALUE,
                        };
                        linker.insns[pos].set_src(src);
                        map_refs.push(MapRef {
                            insn: pos,
                            map,
                            kind,
                        });
                    }
                }
                j += 1;
            } else if reloc.is_some() {
                return Err(err(format!(
                    "relocation at instruction {sec_insn}, which is neither a 64-bit load nor a call"
                )));
            }
            j += 1;
        }
    }
    Ok(ProgramSpec {
        name: main_fn.name.clone(),
        section: main_section.name.clone(),
        insns: linker.insns,
        map_refs,
        extern_refs,
        tail_call: TailCallSlot::from_section(&main_section.name),
        layout: linker.layout.into_iter().map(|(_, p)| p).collect(),
        func_info: Vec::new(),
        line_info: Vec::new(),
    })
}

fn code_section(elf: &Elf<'_>, sym: &Symbol) -> Option<usize> {
    let s: &Section<'_> = elf.sections.get(sym.section?)?;
    s.is_exec().then_some(s.index)
}

fn relative(target: usize, from: usize) -> i32 {
    (target as i64 - from as i64 - 1) as i32
}

struct Linker<'e, 'a> {
    elf: &'e Elf<'a>,
    functions: &'e [Function],
    code: &'e [Option<Vec<Insn>>],
    insns: Vec<Insn>,
    layout: Vec<(usize, Placement)>,
    placed: HashMap<usize, usize>,
}

impl Linker<'_, '_> {
    /// The function starting at instruction `insn` of `section`
    /// (`functions` is sorted by section, then start).
    fn function_at(&self, section: usize, insn: i64) -> Option<usize> {
        let insn = usize::try_from(insn).ok()?;
        self.functions
            .binary_search_by_key(&(section, insn), |f| (f.section, f.start))
            .ok()
    }

    /// Where function `fi` starts in the program, appending it if needed.
    fn position_of(&mut self, fi: usize) -> usize {
        match self.placed.get(&fi) {
            Some(&p) => p,
            None => self.place(fi),
        }
    }

    fn place(&mut self, fi: usize) -> usize {
        let f = &self.functions[fi];
        let pos = self.insns.len();
        if let Some(code) = &self.code[f.section] {
            self.insns
                .extend_from_slice(&code[f.start..f.start + f.len]);
        }
        self.placed.insert(fi, pos);
        self.layout.push((
            fi,
            Placement {
                name: f.name.clone(),
                section: self.elf.sections[f.section].name.clone(),
                section_insn: f.start,
                len: f.len,
                program_insn: pos,
            },
        ));
        pos
    }
}

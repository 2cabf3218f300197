//! The ELF layer: checks that the bytes are a little-endian 64-bit eBPF
//! relocatable object and reads its sections, symbols and relocations into
//! plain values. Knows nothing of maps or programs.

use super::ParseError;
use object::elf;
use object::read::elf::{FileHeader, Rel, SectionHeader, Sym};
use object::{Endianness, SectionIndex};

/// `EM_BPF`.
const EM_BPF: u16 = 247;

/// A section of the object.
#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    /// ELF section index.
    pub index: usize,
    /// Section name.
    pub name: String,
    /// `SHT_*`.
    pub sh_type: u32,
    /// `SHF_*`.
    pub flags: u64,
    /// Size in the section header (for `SHT_NOBITS`, the size in memory).
    pub size: u64,
    /// Contents (empty for `SHT_NOBITS`).
    pub data: &'a [u8],
    /// Relocations against this section, sorted by offset.
    pub relocs: Vec<Reloc>,
}

impl Section<'_> {
    /// True for sections holding instructions.
    pub fn is_exec(&self) -> bool {
        self.sh_type == elf::SHT_PROGBITS && self.flags & u64::from(elf::SHF_EXECINSTR) != 0
    }

    /// The relocation at byte `offset`, if any.
    pub fn reloc_at(&self, offset: u64) -> Option<&Reloc> {
        self.relocs
            .binary_search_by_key(&offset, |r| r.offset)
            .ok()
            .map(|i| &self.relocs[i])
    }
}

/// What a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymKind {
    NoType,
    Object,
    Func,
    Section,
    Other,
}

/// A symbol of the symbol table.
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    /// Name (the section's name for section symbols).
    pub name: String,
    /// The section it is defined in, if any.
    pub section: Option<usize>,
    /// Offset in its section.
    pub value: u64,
    /// Size in bytes (0 when unknown).
    pub size: u64,
    /// Kind.
    pub kind: SymKind,
    /// True for `STB_GLOBAL` and `STB_WEAK`.
    pub global: bool,
    /// True for `STB_WEAK`.
    pub weak: bool,
}

/// One relocation entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reloc {
    /// Byte offset in the section it applies to.
    pub offset: u64,
    /// Symbol index.
    pub symbol: usize,
}

/// The parsed ELF file.
#[derive(Debug)]
pub(crate) struct Elf<'a> {
    /// Sections by ELF index (index 0 is the null section).
    pub sections: Vec<Section<'a>>,
    /// Symbols by index.
    pub symbols: Vec<Symbol>,
}

impl<'a> Elf<'a> {
    /// Reads `data` (the file named `file` in errors).
    pub fn parse(file: &str, data: &'a [u8]) -> Result<Elf<'a>, ParseError> {
        let err = |reason: String| ParseError::new(file, reason);
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(err("not an ELF file".into()));
        }
        if data.len() < 64 {
            return Err(err(format!("truncated ELF header ({} bytes)", data.len())));
        }
        if data[4] != elf::ELFCLASS64 {
            return Err(err("not a 64-bit ELF file (eBPF objects are ELF64)".into()));
        }
        if data[5] == elf::ELFDATA2MSB {
            return Err(err(
                "big-endian object (built for bpfeb); this machine needs little-endian (bpfel)"
                    .into(),
            ));
        }
        let header = elf::FileHeader64::<Endianness>::parse(data)
            .map_err(|e| err(format!("bad ELF header: {e}")).with_elf(e))?;
        let endian = header
            .endian()
            .map_err(|e| err(format!("bad ELF header: {e}")).with_elf(e))?;
        let machine = header.e_machine(endian);
        if machine != EM_BPF {
            return Err(err(format!(
                "machine is {machine}, not eBPF (EM_BPF = {EM_BPF}): not an eBPF object"
            )));
        }
        if header.e_type(endian) != elf::ET_REL {
            return Err(err("not a relocatable object (ET_REL)".into()));
        }
        let table = header
            .sections(endian, data)
            .map_err(|e| err(format!("bad section table: {e}")).with_elf(e))?;
        let mut sections = Vec::with_capacity(table.len());
        for (index, sh) in table.iter().enumerate() {
            let name = table
                .section_name(endian, sh)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .map_err(|e| err(format!("section {index}: bad name: {e}")).with_elf(e))?;
            let sh_type = sh.sh_type(endian);
            let bytes = if sh_type == elf::SHT_NOBITS {
                &[][..]
            } else {
                sh.data(endian, data).map_err(|_| {
                    err(format!(
                        "section '{name}' lies outside the file (truncated object?)"
                    ))
                })?
            };
            sections.push(Section {
                index,
                name,
                sh_type,
                flags: sh.sh_flags(endian),
                size: sh.sh_size(endian),
                data: bytes,
                relocs: Vec::new(),
            });
        }
        let symtab = table
            .symbols(endian, data, elf::SHT_SYMTAB)
            .map_err(|e| err(format!("bad symbol table: {e}")).with_elf(e))?;
        let mut symbols = Vec::with_capacity(symtab.len());
        for sym in symtab.iter() {
            let shndx = sym.st_shndx(endian);
            let section = if shndx == elf::SHN_UNDEF || shndx >= elf::SHN_LORESERVE {
                None
            } else {
                Some(usize::from(shndx))
            };
            let kind = match sym.st_type() {
                elf::STT_NOTYPE => SymKind::NoType,
                elf::STT_OBJECT => SymKind::Object,
                elf::STT_FUNC => SymKind::Func,
                elf::STT_SECTION => SymKind::Section,
                _ => SymKind::Other,
            };
            let name = if kind == SymKind::Section {
                section
                    .and_then(|i| sections.get(i))
                    .map(|s: &Section| s.name.clone())
                    .unwrap_or_default()
            } else {
                symtab
                    .symbol_name(endian, sym)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default()
            };
            if section.is_some_and(|i| i >= sections.len()) {
                return Err(err(format!(
                    "symbol '{name}' refers to section {shndx}, which does not exist"
                )));
            }
            symbols.push(Symbol {
                name,
                section,
                value: sym.st_value(endian),
                size: sym.st_size(endian),
                kind,
                global: matches!(sym.st_bind(), elf::STB_GLOBAL | elf::STB_WEAK),
                weak: sym.st_bind() == elf::STB_WEAK,
            });
        }
        for (index, sh) in table.iter().enumerate() {
            if sh.sh_type(endian) != elf::SHT_REL {
                if sh.sh_type(endian) == elf::SHT_RELA {
                    return Err(err(format!(
                        "section '{}': RELA relocations are not used by eBPF objects",
                        sections[index].name
                    )));
                }
                continue;
            }
            let name = sections[index].name.clone();
            let (rels, _) = sh
                .rel(endian, data)
                .map_err(|e| err(format!("section '{name}': bad relocations: {e}")).with_elf(e))?
                .unwrap_or((&[], SectionIndex(0)));
            let target = sh.sh_info(endian) as usize;
            if target == 0 || target >= sections.len() {
                return Err(err(format!(
                    "section '{name}': relocations for section {target}, which does not exist"
                )));
            }
            let mut relocs = Vec::with_capacity(rels.len());
            for rel in rels {
                let symbol = rel.r_sym(endian) as usize;
                if symbol >= symbols.len() {
                    return Err(ParseError::new(
                        file,
                        format!("relocation to symbol {symbol}, which does not exist"),
                    )
                    .in_section(sections[target].name.clone()));
                }
                relocs.push(Reloc {
                    offset: rel.r_offset(endian),
                    symbol,
                });
            }
            relocs.sort_by_key(|r| r.offset);
            sections[target].relocs.extend(relocs);
            sections[target].relocs.sort_by_key(|r| r.offset);
        }
        Ok(Elf { sections, symbols })
    }
}

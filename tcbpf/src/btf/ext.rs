//! `.BTF.ext`: per-section function info, line info and CO-RE relocation
//! records, as clang writes them (instruction offsets in bytes from the
//! start of the ELF section). Record sizes come from the file and are
//! checked; longer records from a newer producer keep their known prefix.

use super::error::{Error, Result};
use super::parse::Reader;
use super::type_set::Btf;
use super::types::TypeId;

const MAGIC: u16 = 0xeb9f;
/// Header length without the CO-RE part.
const HEADER_MIN: u32 = 24;
/// Header length with the CO-RE relocation offsets.
const HEADER_CORE: u32 = 32;

/// A parsed `.BTF.ext` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfExt {
    /// Function info per ELF section.
    pub func_info: Vec<ExtSection<FuncInfo>>,
    /// Line info per ELF section.
    pub line_info: Vec<ExtSection<LineInfo>>,
    /// CO-RE relocations per ELF section.
    pub core_relos: Vec<ExtSection<CoreRelo>>,
}

/// The records of one ELF (program) section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtSection<T> {
    /// Offset of the section name in the `.BTF` string table.
    pub sec_name_off: u32,
    /// The records in file order.
    pub records: Vec<T>,
}

impl<T> ExtSection<T> {
    /// The ELF section name, read from the object's BTF strings.
    pub fn name<'a>(&self, btf: &'a Btf) -> Result<&'a str> {
        btf.str_at(self.sec_name_off)
    }
}

/// `struct bpf_func_info`: a function (BTF FUNC) starting at an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    /// Byte offset of the function's first instruction in its section.
    pub insn_off: u32,
    /// The BTF FUNC.
    pub type_id: TypeId,
}

/// `struct bpf_line_info`: the source line of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    /// BTF string offset of the file name.
    pub file_name_off: u32,
    /// BTF string offset of the source line text.
    pub line_off: u32,
    /// Line number (high 22 bits) and column (low 10 bits).
    pub line_col: u32,
}

impl LineInfo {
    /// Source line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    /// Source column.
    pub fn column(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// `enum bpf_core_relo_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CoreReloKind {
    FieldByteOffset = 0,
    FieldByteSize = 1,
    FieldExists = 2,
    FieldSigned = 3,
    FieldLshiftU64 = 4,
    FieldRshiftU64 = 5,
    TypeIdLocal = 6,
    TypeIdTarget = 7,
    TypeExists = 8,
    TypeSize = 9,
    EnumvalExists = 10,
    EnumvalValue = 11,
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind for its number.
    pub fn from_u32(v: u32) -> Option<Self> {
        use CoreReloKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name of the kind.
    pub fn name(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeMatches => "type_matches",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
        }
    }

    /// Relocations on a field access (`0:1:2` through a struct).
    pub fn is_field(self) -> bool {
        (self as u32) <= 5
    }
    /// Relocations on a type as a whole.
    pub fn is_type(self) -> bool {
        matches!(self as u32, 6..=9 | 12)
    }
    /// Relocations on an enumerator.
    pub fn is_enumval(self) -> bool {
        matches!(self as u32, 10 | 11)
    }
}

/// `struct bpf_core_relo`: one CO-RE relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreRelo {
    /// Byte offset of the instruction to patch in its section.
    pub insn_off: u32,
    /// The local (object BTF) root type.
    pub type_id: TypeId,
    /// BTF string offset of the access string (`0:1:2`).
    pub access_str_off: u32,
    /// What to compute.
    pub kind: CoreReloKind,
}

impl BtfExt {
    /// Parses a `.BTF.ext` section.
    pub fn parse(data: &[u8]) -> Result<BtfExt> {
        if data.len() < HEADER_MIN as usize {
            return Err(Error::Truncated {
                what: ".BTF.ext header",
                offset: 0,
            });
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(Error::BadHeader(format!(
                ".BTF.ext magic {magic:#06x}, expected {MAGIC:#06x}"
            )));
        }
        if data[2] != 1 {
            return Err(Error::BadHeader(format!(
                ".BTF.ext version {}, expected 1",
                data[2]
            )));
        }
        let mut r = Reader::new(&data[4..], 4);
        let hdr_len = r.u32(".BTF.ext header")?;
        if hdr_len < HEADER_MIN || hdr_len as usize > data.len() {
            return Err(Error::BadHeader(format!(
                ".BTF.ext header length {hdr_len} in a {}-byte section",
                data.len()
            )));
        }
        let func = (r.u32(".BTF.ext header")?, r.u32(".BTF.ext header")?);
        let line = (r.u32(".BTF.ext header")?, r.u32(".BTF.ext header")?);
        let core = if hdr_len >= HEADER_CORE {
            (r.u32(".BTF.ext header")?, r.u32(".BTF.ext header")?)
        } else {
            (0, 0)
        };
        let body = &data[hdr_len as usize..];
        let base = hdr_len as usize;
        Ok(BtfExt {
            func_info: parse_info(body, base, func, "func_info", 8, |r| {
                Ok(FuncInfo {
                    insn_off: r.u32("func_info record")?,
                    type_id: r.u32("func_info record")?,
                })
            })?,
            line_info: parse_info(body, base, line, "line_info", 16, |r| {
                Ok(LineInfo {
                    insn_off: r.u32("line_info record")?,
                    file_name_off: r.u32("line_info record")?,
                    line_off: r.u32("line_info record")?,
                    line_col: r.u32("line_info record")?,
                })
            })?,
            core_relos: parse_info(body, base, core, "core_relo", 16, |r| {
                let insn_off = r.u32("core_relo record")?;
                let type_id = r.u32("core_relo record")?;
                let access_str_off = r.u32("core_relo record")?;
                let raw = r.u32("core_relo record")?;
                let kind = CoreReloKind::from_u32(raw).ok_or_else(|| {
                    Error::invalid(format!("unknown CO-RE relocation kind {raw}"))
                })?;
                Ok(CoreRelo {
                    insn_off,
                    type_id,
                    access_str_off,
                    kind,
                })
            })?,
        })
    }

    /// The function info of ELF section `name` (empty when none).
    pub fn func_info_of(&self, btf: &Btf, name: &str) -> &[FuncInfo] {
        records_of(&self.func_info, btf, name)
    }

    /// The line info of ELF section `name` (empty when none).
    pub fn line_info_of(&self, btf: &Btf, name: &str) -> &[LineInfo] {
        records_of(&self.line_info, btf, name)
    }

    /// The CO-RE relocations of ELF section `name` (empty when none).
    pub fn core_relos_of(&self, btf: &Btf, name: &str) -> &[CoreRelo] {
        records_of(&self.core_relos, btf, name)
    }
}

fn records_of<'a, T>(secs: &'a [ExtSection<T>], btf: &Btf, name: &str) -> &'a [T] {
    secs.iter()
        .find(|s| s.name(btf).is_ok_and(|n| n == name))
        .map_or(&[], |s| s.records.as_slice())
}

/// Parses one info block: a record size, then sections of
/// (name offset, count, records).
fn parse_info<T>(
    body: &[u8],
    base: usize,
    (off, len): (u32, u32),
    what: &'static str,
    min_rec: u32,
    mut record: impl FnMut(&mut Reader) -> Result<T>,
) -> Result<Vec<ExtSection<T>>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let start = off as usize;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| {
            Error::BadHeader(format!(".BTF.ext {what} {off}+{len} runs past the section"))
        })?;
    let mut r = Reader::new(&body[start..end], base + start);
    let rec_size = r.u32(".BTF.ext record size")?;
    if rec_size < min_rec || rec_size % 4 != 0 {
        return Err(Error::invalid(format!(
            ".BTF.ext {what} record size {rec_size} is invalid"
        )));
    }
    let mut secs = Vec::new();
    while !r.at_end() {
        let sec_name_off = r.u32(".BTF.ext section")?;
        let num = r.u32(".BTF.ext section")?;
        if num == 0 {
            return Err(Error::invalid(format!(
                ".BTF.ext {what} section has no records"
            )));
        }
        let mut records = Vec::new();
        for _ in 0..num {
            let raw = r.bytes(rec_size as usize, what)?;
            let mut rr = Reader::new(raw, 0);
            records.push(record(&mut rr)?);
        }
        secs.push(ExtSection {
            sec_name_off,
            records,
        });
    }
    Ok(secs)
}

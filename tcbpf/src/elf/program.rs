//! `ProgramSpec`: one program ready to load once map descriptors are known,
//! and the functions of the object's code sections it is built from.

use super::reader::{Elf, SymKind};
use super::ParseError;
use crate::abi::Insn;

/// Where a tail-call program goes: section `<id>/<key>` is stored at `key`
/// in the program array whose map id is `id` (iproute2's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailCallSlot {
    /// The program array's map id.
    pub map_id: u32,
    /// The key (array index).
    pub key: u32,
}

impl TailCallSlot {
    /// The slot a section name names, read exactly as iproute2's loaders
    /// read it, with glibc's `sscanf(name, "%i/%i", &id, &key) == 2`: each
    /// number may follow white space, have a sign, be decimal, hex (`0x`,
    /// `0X`) or octal (leading `0`), and is kept as its low 32 bits (as
    /// the `int` sscanf stores); whatever follows the key is ignored.
    /// `0xabccba/0` (iproute2's own `bpf_cyclic.c`), `012/0x1` and
    /// `1/0abc` are slots; `08/1` and `1 /2` are not.
    pub fn from_section(name: &str) -> Option<TailCallSlot> {
        let (map_id, rest) = scan_int(name.as_bytes())?;
        let rest = rest.strip_prefix(b"/")?;
        let (key, _) = scan_int(rest)?;
        Some(TailCallSlot { map_id, key })
    }

    /// True for a section name that starts like a tail-call slot (a number,
    /// maybe signed, and a `/` later on) whether or not it is one: the
    /// loader warns about such a section when it does not store it.
    pub fn looks_like(name: &str) -> bool {
        let t = name.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let t = t.strip_prefix(['+', '-']).unwrap_or(t);
        t.starts_with(|c: char| c.is_ascii_digit()) && t.contains('/')
    }
}

/// One glibc `%i` conversion into an `int`: white space, a sign, then
/// `0x`/`0X` and hex digits (none is 0, as glibc reads "0x"), `0` and
/// octal digits, or decimal digits. The value is `strtol`'s (saturated at
/// the 64-bit `long` bounds) truncated to 32 bits. `None` when no digit
/// starts it (a matching failure).
fn scan_int(s: &[u8]) -> Option<(u32, &[u8])> {
    let mut i = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix = match (s.get(i), s.get(i + 1)) {
        (Some(b'0'), Some(b'x' | b'X')) => {
            i += 2;
            16
        }
        (Some(b'0'), _) => 8,
        (Some(b), _) if b.is_ascii_digit() => 10,
        _ => return None,
    };
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|b| char::from(*b).to_digit(radix)) {
        match magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    // strtol: out of range is LONG_MAX or LONG_MIN.
    let value: i64 = match (negative, overflow) {
        (false, false) if magnitude <= i64::MAX as u64 => magnitude as i64,
        (false, _) => i64::MAX,
        (true, false) if magnitude <= 1 << 63 => (magnitude as i64).wrapping_neg(),
        (true, _) => i64::MIN,
    };
    Some((value as u32, &s[i..]))
}

/// How an instruction refers to a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRefKind {
    /// `BPF_PSEUDO_MAP_FD`: the map itself.
    Fd,
    /// `BPF_PSEUDO_MAP_VALUE`: an address `offset` bytes into the value of a
    /// one-entry array (global data).
    Value {
        /// Byte offset into the value.
        offset: u32,
    },
}

/// A 64-bit immediate load (two instruction slots) that must hold a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRef {
    /// Index of the first slot of the `ld_imm64` in `ProgramSpec::insns`.
    pub insn: usize,
    /// Index in `ObjectSpec::maps`.
    pub map: usize,
    /// Whole map or address into its value.
    pub kind: MapRefKind,
}

/// Where one function of the object sits in a linked program (used to move
/// BTF func and line info to program offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The function's name.
    pub name: String,
    /// The code section it comes from.
    pub section: String,
    /// Its first instruction in that section.
    pub section_insn: usize,
    /// Its length in instructions.
    pub len: usize,
    /// Its first instruction in the program.
    pub program_insn: usize,
}

/// One program: its instructions with the subprograms it calls appended
/// and call offsets fixed, and the map references still to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// Function name.
    pub name: String,
    /// Section it lives in.
    pub section: String,
    /// Linked instructions.
    pub insns: Vec<Insn>,
    /// Map references to fill with descriptors at load time.
    pub map_refs: Vec<MapRef>,
    /// References to kfuncs and kernel symbols, to resolve at load time.
    pub extern_refs: Vec<super::ExternRef>,
    /// The tail-call slot its section names, if any.
    pub tail_call: Option<TailCallSlot>,
    /// The functions it is made of, the program itself first.
    pub layout: Vec<Placement>,
    /// BTF `bpf_func_info` records (insn_off, type_id), program-relative.
    pub func_info: Vec<[u32; 2]>,
    /// BTF `bpf_line_info` records, program-relative.
    pub line_info: Vec<[u32; 4]>,
}

impl ProgramSpec {
    /// The subprograms appended to this program, in order.
    pub fn subprograms(&self) -> impl Iterator<Item = &Placement> {
        self.layout.iter().skip(1)
    }

    /// Replaces the body of subprogram `name` with `body` (code generated
    /// at load time, as `dump` splices a packet filter into a stub). The
    /// function must be the last one of the program (nothing after it
    /// moves) and hold no map or extern reference; its line info is cut to
    /// the record at its start, and CO-RE relocations recorded for the old
    /// body are no longer applied to it.
    pub fn replace_last_function(&mut self, name: &str, body: Vec<Insn>) -> Result<(), String> {
        let Some(last) = self.layout.last() else {
            return Err(format!("program '{}' has no functions", self.name));
        };
        if last.name != name || self.layout.len() < 2 {
            return Err(format!(
                "function '{name}' is not the last subprogram of '{}'",
                self.name
            ));
        }
        let start = last.program_insn;
        if self.map_refs.iter().any(|r| r.insn >= start)
            || self.extern_refs.iter().any(|r| r.insn >= start)
        {
            return Err(format!(
                "function '{name}' refers to maps or externs: its body cannot be replaced"
            ));
        }
        if body.is_empty() {
            return Err(format!("an empty body for function '{name}'"));
        }
        self.insns.truncate(start);
        let len = body.len();
        self.insns.extend(body);
        self.line_info.retain(|l| (l[0] as usize) <= start);
        let last = self.layout.last_mut().expect("checked above");
        last.len = len;
        last.section = format!("{} (replaced)", last.section);
        Ok(())
    }
}

/// A function of a code section.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Symbol name (the section name when the section has no symbols).
    pub name: String,
    /// ELF section index.
    pub section: usize,
    /// First instruction in the section.
    pub start: usize,
    /// Length in instructions.
    pub len: usize,
    /// True for global functions (programs when outside `.text`).
    pub global: bool,
}

/// Largest code section tcbpf accepts: the kernel's limit of one million
/// instructions.
pub const MAX_INSNS: usize = 1_000_000;

/// The instructions of each section by ELF index (`None` for non-code).
pub(crate) type SectionCode = Vec<Option<Vec<Insn>>>;

/// The functions of every code section (sorted by section index, then
/// start), and each section's instructions.
pub(crate) fn functions(
    file: &str,
    elf: &Elf<'_>,
) -> Result<(Vec<Function>, SectionCode), ParseError> {
    let mut functions = Vec::new();
    let mut code = vec![None; elf.sections.len()];
    for s in elf.sections.iter().filter(|s| s.is_exec()) {
        let err = |reason: String| ParseError::new(file, reason).in_section(s.name.clone());
        if s.data.len() / 8 > MAX_INSNS {
            return Err(err(format!(
                "section too large: {} instructions (the kernel takes at most {MAX_INSNS})",
                s.data.len() / 8
            )));
        }
        let insns = Insn::from_bytes(s.data).ok_or_else(|| {
            err(format!(
                "{} bytes is not a whole number of instructions",
                s.data.len()
            ))
        })?;
        let total = insns.len();
        code[s.index] = Some(insns);
        if total == 0 {
            continue;
        }
        let mut syms: Vec<_> = elf
            .symbols
            .iter()
            .filter(|y| y.section == Some(s.index) && y.kind == SymKind::Func)
            .collect();
        syms.sort_by_key(|y| y.value);
        syms.dedup_by_key(|y| y.value);
        if syms.is_empty() {
            functions.push(Function {
                name: s.name.clone(),
                section: s.index,
                start: 0,
                len: total,
                global: true,
            });
            continue;
        }
        for (i, y) in syms.iter().enumerate() {
            if y.value % 8 != 0 || y.value / 8 >= total as u64 {
                return Err(
                    err(format!("function at byte {} is out of bounds", y.value))
                        .at_symbol(y.name.clone()),
                );
            }
            let start = (y.value / 8) as usize;
            let next = syms.get(i + 1).map_or(total, |n| (n.value / 8) as usize);
            let by_size = if y.size > 0 && y.size % 8 == 0 {
                start.saturating_add((y.size / 8) as usize)
            } else {
                next
            };
            let end = by_size.min(next).min(total);
            functions.push(Function {
                name: y.name.clone(),
                section: s.index,
                start,
                len: end - start,
                global: y.global,
            });
        }
    }
    Ok((functions, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_call_sections_are_read_as_glibc_sscanf_reads_percent_i_slash_percent_i() {
        // Each expectation is what `sscanf(name, "%i/%i", &id, &key)`
        // stores with glibc 2.36 (checked with a C program on this machine).
        let slot = |map_id, key| Some(TailCallSlot { map_id, key });
        for (name, want) in [
            ("1/0", slot(1, 0)),
            ("42/7", slot(42, 7)),
            ("0xabccba/0", slot(0xabccba, 0)),
            ("012/0x1", slot(10, 1)),
            ("+0XABCCBA/02", slot(0xabccba, 2)),
            ("0x/1", slot(0, 1)),
            ("1/2/3", slot(1, 2)),
            (" 1/ 2", slot(1, 2)),
            ("-1/0", slot(u32::MAX, 0)),
            ("99999999999/0", slot(1_215_752_191, 0)),
            ("9999999999999999999999/1", slot(u32::MAX, 1)),
            ("-9999999999999999999999/1", slot(0, 1)),
            ("4294967296/1", slot(0, 1)),
            ("-0x80000000/1", slot(0x8000_0000, 1)),
            ("1/0abc", slot(1, 0)),
            ("1/08", slot(1, 0)),
            ("1/0x", slot(1, 0)),
            ("0/-0x10", slot(0, 0xffff_fff0)),
            ("classifier", None),
            ("1/", None),
            ("/1", None),
            ("1/x", None),
            ("classifier/tail_a", None),
            ("08/1", None),
            ("1 /2", None),
            ("0x1g/2", None),
            ("-/1", None),
            ("1/+ 2", None),
        ] {
            assert_eq!(TailCallSlot::from_section(name), want, "{name:?}");
        }
    }

    #[test]
    fn sections_that_start_with_a_number_and_a_slash_look_like_tail_calls() {
        for name in ["08/1", "1 /2", "-1/0", " 7/x", "0x1g/2"] {
            assert!(TailCallSlot::looks_like(name), "{name:?}");
        }
        for name in ["classifier", "tc/ingress", "x1/2", "12", "-/1"] {
            assert!(!TailCallSlot::looks_like(name), "{name:?}");
        }
    }
}

//! The kernel's ABI as plain Rust types: map types and flags, program and
//! attach types, instructions, and the section → program type table. The
//! parsers (`elf`, `btf`) and the syscall layer (`sys`) both use these;
//! this module depends on neither and makes no syscalls. Adding a map type
//! is a variant and a row in `map.rs`; adding a program type is a row in
//! `PROG_SECTIONS` (`prog.rs`).

mod insn;
mod map;
mod prog;

pub use insn::Insn;
pub use map::{map_flags, Entries, MapType, MapTypeRules, Memory, MAP_TYPES};
pub use prog::{
    section_by_name, section_by_word, trace_section_by_name, AttachType, ProgKind, ProgSection,
    ProgType, PROG_SECTIONS, TRACE_SECTIONS,
};

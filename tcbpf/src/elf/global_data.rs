//! Global data: the sections `.data*`, `.rodata*` and `.bss*` become
//! one-entry array maps whose value is the section, as libbpf does.
//! `.rodata*` maps are read-only for programs and frozen once filled;
//! this is where `bpf_printk` format strings live.

use super::map::{MapOrigin, MapSpec};
use super::reader::Section;
use super::ParseError;
use crate::abi::{map_flags as flags, MapType};
use object::elf;

/// Largest global data section tcbpf accepts (the kernel caps array values
/// far lower; this only keeps a corrupt size from allocating gigabytes).
pub const MAX_SIZE: u64 = 64 << 20;

/// True for the sections that hold global variables.
pub(crate) fn is_data_section(s: &Section<'_>) -> bool {
    let named = [".data", ".rodata", ".bss"]
        .iter()
        .any(|p| s.name == *p || s.name.starts_with(&format!("{p}.")));
    named
        && matches!(s.sh_type, elf::SHT_PROGBITS | elf::SHT_NOBITS)
        && s.flags & u64::from(elf::SHF_ALLOC) != 0
        && !s.is_exec()
}

/// True when the data section is read-only for programs.
pub(crate) fn is_read_only(name: &str) -> bool {
    name == ".rodata" || name.starts_with(".rodata.")
}

/// The array map for data section `s`; `None` for an empty section.
pub(crate) fn parse(file: &str, s: &Section<'_>) -> Result<Option<MapSpec>, ParseError> {
    if s.size == 0 {
        return Ok(None);
    }
    if s.size > MAX_SIZE || s.size > u64::from(u32::MAX) {
        return Err(ParseError::new(
            file,
            format!(
                "section too large: {} bytes of global data (at most {MAX_SIZE})",
                s.size
            ),
        )
        .in_section(s.name.clone()));
    }
    let mut map = MapSpec::new(&s.name, MapOrigin::GlobalData, MapType::Array);
    map.key_size = 4;
    map.value_size = s.size as u32;
    map.max_entries = 1;
    let bytes = if s.sh_type == elf::SHT_NOBITS {
        vec![0u8; s.size as usize]
    } else {
        s.data.to_vec()
    };
    map.data = Some(bytes);
    if is_read_only(&s.name) {
        map.flags = flags::RDONLY_PROG;
        map.freeze = true;
    }
    Ok(Some(map))
}

//! BTF-defined maps (section `.maps`): read through the BTF model.

use super::elf::{Elf, Section};
use super::link::MapResolver;
use super::{ObjectSpec, ParseError};

/// Adds the maps defined in `.maps` to `spec`.
pub(crate) fn parse(
    file: &str,
    _elf: &Elf<'_>,
    section: &Section<'_>,
    _spec: &mut ObjectSpec,
    _resolver: &mut MapResolver,
) -> Result<(), ParseError> {
    if section.size == 0 {
        return Ok(());
    }
    Err(ParseError::new(file, "BTF-defined maps are not readable yet").in_section(".maps"))
}

/// Resolves `values` initialisers of program arrays and map-in-map maps.
pub(crate) fn resolve_initialisers(
    _file: &str,
    _elf: &Elf<'_>,
    _section: &Section<'_>,
    _spec: &mut ObjectSpec,
) -> Result<(), ParseError> {
    Ok(())
}

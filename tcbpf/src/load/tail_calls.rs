//! Tail calls: each loaded program whose section is `<id>/<key>` is stored
//! at `key` in the program array with map id `<id>`, and BTF `values`
//! initialisers of program arrays are applied. A program may be stored in
//! the array it jumps through (cycles).

use super::maps::store_fd;
use super::{Context, LoadError, LoadedMap, LoadedProgram};
use crate::abi::MapType;
use crate::elf::{ObjectSpec, SlotTarget, TailCallSlot};
use std::os::fd::AsFd;

/// The index of the program array a legacy tail-call section goes into.
pub(crate) fn array_for(spec: &ObjectSpec, slot: TailCallSlot) -> Option<usize> {
    spec.maps
        .iter()
        .position(|m| m.id == slot.map_id && m.map_type == MapType::ProgArray)
}

/// Stores every loaded tail-call program in its program array.
pub(crate) fn fill(
    ctx: &Context<'_>,
    spec: &ObjectSpec,
    maps: &[LoadedMap],
    programs: &[LoadedProgram],
) -> Result<(), LoadError> {
    for p in programs {
        let Some(slot) = p.tail_call else { continue };
        let Some(array) = array_for(spec, slot) else {
            continue;
        };
        store_fd(ctx, &maps[array], slot.key, p.fd.as_fd(), &p.section)?;
    }
    for (j, m) in spec.maps.iter().enumerate() {
        for s in &m.initial_slots {
            let SlotTarget::Program(name) = &s.target else {
                continue;
            };
            let p =
                programs
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| LoadError::Invalid {
                        file: ctx.file.clone(),
                        what: format!("map '{}'", m.name),
                        reason: format!("initialiser names program '{name}', which was not loaded"),
                    })?;
            store_fd(ctx, &maps[j], s.key, p.fd.as_fd(), name)?;
        }
    }
    Ok(())
}

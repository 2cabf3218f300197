//! BTF: parse type information, fix it up for the kernel, match CO-RE
//! relocations and pretty-print values. Pure: no syscalls here, and nothing
//! in this module reads files; callers pass the bytes.
//!
//! - [`Btf`]: a parsed type set (`Btf::parse`, `Btf::parse_split`,
//!   `Btf::to_bytes`), with lookups by id, name and kind.
//! - [`TargetBtf`]: a checked BTF blob decoded one type at a time, for
//!   the kernel BTF relocations are resolved against.
//! - [`TypeView`]: what CO-RE reads of either (types, strings, candidates).
//! - [`maps`]: BTF-defined map definitions of the `.maps` section.
//! - [`BtfExt`]: `.BTF.ext` function/line info and CO-RE relocation records.
//! - `fixup`: what the kernel needs changed before BTF_LOAD.
//! - [`core`]: CO-RE relocation resolution and instruction patching.
//! - [`fmt`]: map keys and values decoded and printed by their BTF type.

mod builder;
pub mod core;
mod error;
mod ext;
mod fixup;
pub mod fmt;
mod lookup;
pub mod maps;
mod parse;
mod strings;
mod target;
mod type_set;
mod types;
mod view;
mod write;

pub use builder::BtfBuilder;
pub use error::{Error, Result};
pub use ext::{BtfExt, CoreRelo, CoreReloKind, ExtSection, FuncInfo, LineInfo};
pub use fixup::FixupReport;
pub use lookup::{FlatMember, MAX_RESOLVE_DEPTH};
pub use parse::Header;
pub use target::{BlobBytes, TargetBtf};
pub use type_set::{essential_name, Btf};
pub use types::*;
pub use view::TypeView;

//! Live upgrade: replace the program running at a tc hook with a new build
//! of it, carrying its map state across a changed layout, all or nothing.
//!
//! - [`plan`]: per map, reuse / migrate / fresh / refuse, from both
//!   sides' definitions and BTF (pure).
//! - [`convert`]: old value bytes → new value bytes, compiled once per map
//!   from the two BTF types (pure).
pub mod convert;
pub mod plan;

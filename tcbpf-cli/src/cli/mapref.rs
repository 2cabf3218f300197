//! The MAP words every map command starts with, and opening what they
//! name: the library's `tcbpf::front::mapref` (shared with
//! `tcbpf-exporter` and `tcbpf-sync`, so all three accept the same forms).
//!
//! ```text
//! MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME
//!      | keeper SOCK [SET/]MAP
//! ```

pub use tcbpf::front::{MapForm, MapRef};

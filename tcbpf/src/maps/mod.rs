//! Load-free map access on descriptors: a map's own types read from the
//! kernel ([`types_of`]), all its entries ([`read_all`]) and diff-apply
//! ([`apply`]: make a map hold given entries with batch updates and
//! deletes) and bulk writes ([`update_all`]). For the CLI's `map load json`, the exporter and sync alike.
//! [`generation`] swaps a whole policy through a map-in-map slot (`map commit`).
//! Uses `sys` for the syscalls and `value::typed` for the types; holds no
//! state and never changes a map before every input is checked.
//!
//! # Typed map access
//!
//! Keys and values as JSON, through the types the map's own BTF gives
//! (here `counters` of `bpf/typed_maps.o`: `__u32` keys, values
//! `struct { __u64 packets; __u64 bytes; }`). The hidden lines load the
//! object into a private bpffs; without root the example skips itself.
//!
//! ```
//! # tcbpf_testkit::require_root!(Ok(()));
//! # let fs = tcbpf_testkit::Bpffs::new();
//! # let obj = tcbpf::load::load_file(&tcbpf_testkit::fixture("typed_maps.o"), &fs.options())?;
//! # let counters = &obj.map("counters").expect("counters").fd;
//! use serde_json::json;
//! use tcbpf::maps;
//! use tcbpf::value::typed::MapTypes;
//!
//! let t: MapTypes = maps::types_of(counters)?.expect("counters has BTF");
//! let key = t.encode_key(&json!(7))?;
//! let value = t.encode_value(&json!({"packets": 3, "bytes": 180}), false)?;
//! tcbpf::sys::map::update(counters, &key, &value, 0)?;
//!
//! // Every entry, decoded by the same types.
//! for (k, v) in maps::read_all(counters)? {
//!     println!("{}", t.entry_to_json(&k, &v)?);
//! }
//! let mut got = vec![0u8; t.value_buf_size()];
//! tcbpf::sys::map::lookup(counters, &key, &mut got, 0)?;
//! assert_eq!(t.decode_value(&got)?.to_json(), r#"{"packets":3,"bytes":180}"#);
//!
//! // Make the map hold exactly these entries (batch updates and deletes).
//! let report = maps::apply(counters, &[(key, value)], true)?;
//! # let _ = report;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
pub mod generation;

pub use apply::{apply, read_all, update_all, ApplyReport, Entry};

use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;

use crate::abi::MapType;
use crate::btf::Btf;
use crate::sys::{self, info::MapInfo};
use crate::value::typed::{MapTypes, TypedError};

/// Why a map's types could not be read or entries applied.
#[derive(Debug)]
pub enum Error {
    /// A system call failed.
    Sys(sys::Error),
    /// The kernel's BTF did not parse.
    Btf(crate::btf::Error),
    /// The BTF does not fit the map, or an entry does not fit the map.
    Typed(TypedError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys(e) => write!(f, "{e}"),
            Error::Btf(e) => write!(f, "map BTF: {e}"),
            Error::Typed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sys(e) => Some(e),
            Error::Btf(e) => Some(e),
            Error::Typed(e) => Some(e),
        }
    }
}

impl Error {
    /// The class of failure: the system call's errno class, or bad input
    /// for BTF or entries that do not fit.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Error::Sys(e) => e.kind(),
            Error::Btf(_) | Error::Typed(_) => crate::ErrorKind::BadInput,
        }
    }
}

impl From<sys::Error> for Error {
    fn from(e: sys::Error) -> Self {
        Error::Sys(e)
    }
}

impl From<TypedError> for Error {
    fn from(e: TypedError) -> Self {
        Error::Typed(e)
    }
}

/// The key/value BTF of `map`, read from the kernel (map info → btf_id →
/// BTF_GET_FD_BY_ID → BTF data → parse); `None` when the map has none.
pub fn types_of(map: impl AsFd) -> Result<Option<MapTypes>, Error> {
    let info = sys::info::map_info(map)?;
    types_for(&info)
}

/// [`types_of`] for a map whose info the caller already read.
pub fn types_for(info: &MapInfo) -> Result<Option<MapTypes>, Error> {
    if info.btf_id == 0 || (info.btf_key_type_id == 0 && info.btf_value_type_id == 0) {
        return Ok(None);
    }
    let fd = sys::obj::btf_by_id(info.btf_id)?;
    let data = sys::info::btf_data(&fd)?;
    let btf = Btf::parse(&data).map_err(Error::Btf)?;
    let cpus = cpus_of(info)?;
    MapTypes::new(
        Arc::new(btf),
        Some(info.btf_key_type_id),
        Some(info.btf_value_type_id),
        info.key_size as usize,
        info.value_size as usize,
        cpus,
    )
    .map(Some)
    .map_err(Error::Typed)
}

/// [`types_for`], or untyped [`MapTypes`] (integers and byte arrays) for
/// a map without BTF.
pub fn types_or_untyped(info: &MapInfo) -> Result<MapTypes, Error> {
    match types_for(info)? {
        Some(t) => Ok(t),
        None => Ok(MapTypes::untyped(
            info.key_size as usize,
            info.value_size as usize,
            cpus_of(info)?,
        )),
    }
}

/// `Some(possible CPUs)` for per-CPU maps.
fn cpus_of(info: &MapInfo) -> Result<Option<usize>, Error> {
    if info.kind().is_some_and(MapType::is_percpu) {
        let n =
            sys::possible_cpus().map_err(|e| Error::Sys(sys::Error::new("possible cpus", e)))?;
        Ok(Some(n))
    } else {
        Ok(None)
    }
}

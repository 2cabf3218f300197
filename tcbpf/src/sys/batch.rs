//! The batch map commands (LOOKUP_BATCH, UPDATE_BATCH, DELETE_BATCH) and the
//! element sizes they need: many elements per system call, with buffers
//! checked against sizes read from the kernel before it writes into them.
//! Re-exported from [`super::map`]; callers write `sys::map::lookup_batch`.

use super::{bpf, cmd, ptr, Error, Result};
use crate::abi::MapType;
use std::os::fd::{AsFd, AsRawFd};

/// The sizes of one element of a map as user space reads and writes it:
/// the key size, and the value size times possible CPUs (each CPU's value
/// rounded up to 8 bytes) for per-CPU maps. Read from the kernel, so the
/// batch functions can check buffers before the kernel writes into them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElemSizes {
    key: usize,
    value: usize,
    cpu_value: usize,
    cpus: usize,
}

impl ElemSizes {
    /// The element sizes of `map`, asked of the kernel (and of
    /// `/sys/devices/system/cpu/possible` for per-CPU maps).
    pub fn of(map: impl AsFd) -> Result<ElemSizes> {
        let info = super::info::map_info(map)?;
        let percpu = info.kind().is_some_and(MapType::is_percpu);
        Self::from_info(&info, percpu)
    }

    /// The element sizes for a map whose info is already known.
    pub fn from_info(info: &super::info::MapInfo, percpu: bool) -> Result<ElemSizes> {
        let value = info.value_size as usize;
        if percpu {
            let cpus = super::possible_cpus().map_err(|e| Error::new("possible cpus", e))?;
            let cpu_value = value.div_ceil(8) * 8;
            Ok(ElemSizes {
                key: info.key_size as usize,
                value: cpu_value * cpus,
                cpu_value,
                cpus,
            })
        } else {
            Ok(ElemSizes {
                key: info.key_size as usize,
                value,
                cpu_value: value,
                cpus: 1,
            })
        }
    }

    /// Key size in bytes.
    pub fn key(&self) -> usize {
        self.key
    }

    /// Bytes of one element's value buffer (all CPUs for per-CPU maps).
    pub fn value(&self) -> usize {
        self.value
    }

    /// Bytes between two CPUs' values in a per-CPU value buffer (the value
    /// size rounded up to 8), or the value size for other maps.
    pub fn cpu_stride(&self) -> usize {
        self.cpu_value
    }

    /// Number of values per element: possible CPUs for per-CPU maps, else 1.
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    fn batch_token(&self) -> usize {
        self.key.max(8)
    }
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}
abi_layout!(BatchAttr, 56; in_batch @ 0, out_batch @ 8, keys @ 16, values @ 24, count @ 32, map_fd @ 36, elem_flags @ 40, flags @ 48);

/// Where a LOOKUP_BATCH walk stands: the kernel's opaque position token.
#[derive(Debug, Clone)]
pub struct BatchCursor {
    token_in: Vec<u8>,
    token_out: Vec<u8>,
    started: bool,
    done: bool,
}

impl BatchCursor {
    /// A cursor at the start of the map.
    pub fn new(sizes: &ElemSizes) -> Self {
        BatchCursor {
            token_in: vec![0; sizes.batch_token()],
            token_out: vec![0; sizes.batch_token()],
            started: false,
            done: false,
        }
    }

    /// A cursor that resumes at `position`, a token an earlier walk's
    /// [`BatchCursor::position`] gave. For the hash map family (hash,
    /// percpu_hash, lru_hash, lru_percpu_hash) the kernel's token is the
    /// bucket index as a native `u32`, so a walk may also start part way.
    pub fn at(sizes: &ElemSizes, position: &[u8]) -> Self {
        let mut token_in = vec![0; sizes.batch_token()];
        let n = position.len().min(token_in.len());
        token_in[..n].copy_from_slice(&position[..n]);
        BatchCursor {
            token_in,
            token_out: vec![0; sizes.batch_token()],
            started: true,
            done: false,
        }
    }

    /// The kernel's token for where the next step starts, once a step ran
    /// (or the cursor was made with [`BatchCursor::at`]).
    pub fn position(&self) -> Option<&[u8]> {
        self.started.then_some(self.token_in.as_slice())
    }

    /// True once the walk reached the end of the map.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// A batch command that stopped part way: how many elements it did, and why.
#[derive(Debug)]
pub struct PartialBatch {
    /// Elements the kernel processed before the error.
    pub done: usize,
    /// The error.
    pub error: Error,
}

fn batch_count(
    op: &'static str,
    sizes: &ElemSizes,
    keys: usize,
    values: Option<usize>,
) -> Result<usize> {
    let by_keys = keys.checked_div(sizes.key).unwrap_or(usize::MAX);
    let by_values = values
        .and_then(|v| v.checked_div(sizes.value))
        .unwrap_or(usize::MAX);
    let count = by_keys.min(by_values);
    if count == 0 || count == usize::MAX || count > u32::MAX as usize {
        return Err(Error::new(
            op,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "batch buffers hold no whole element",
            ),
        ));
    }
    Ok(count)
}

/// BPF_MAP_LOOKUP_BATCH: reads the next elements of the walk `cursor` into
/// `keys` and `values` (as many as both hold) and returns how many it read.
/// At the end of the map it returns the last elements (maybe 0) and marks
/// the cursor done. On hash maps, `ENOSPC` means one bucket holds more
/// elements than the buffers: retry the same cursor with larger buffers.
pub fn lookup_batch(
    map: impl AsFd,
    sizes: &ElemSizes,
    cursor: &mut BatchCursor,
    keys: &mut [u8],
    values: &mut [u8],
) -> Result<usize> {
    let map = map.as_fd();
    if cursor.done {
        return Ok(0);
    }
    let count = batch_count(
        "BPF_MAP_LOOKUP_BATCH",
        sizes,
        keys.len(),
        Some(values.len()),
    )?;
    let mut attr = BatchAttr {
        in_batch: if cursor.started {
            ptr(cursor.token_in.as_ptr())
        } else {
            0
        },
        out_batch: ptr(cursor.token_out.as_mut_ptr()),
        keys: ptr(keys.as_mut_ptr()),
        values: ptr(values.as_mut_ptr()),
        count: count as u32,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: keys and values hold `count` elements of the map's sizes
    // (ElemSizes comes from the kernel); the tokens hold max(key size, 8) bytes.
    let ret = unsafe { bpf(cmd::MAP_LOOKUP_BATCH, &mut attr) };
    match ret {
        Ok(_) => {
            std::mem::swap(&mut cursor.token_in, &mut cursor.token_out);
            cursor.started = true;
            Ok(attr.count as usize)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            cursor.done = true;
            Ok(attr.count as usize)
        }
        Err(e) => {
            Err(Error::new("BPF_MAP_LOOKUP_BATCH", e).on(format!("map fd {}", map.as_raw_fd())))
        }
    }
}

/// BPF_MAP_UPDATE_BATCH: writes every whole element in `keys`/`values`,
/// creating or replacing. `elem_flags` may only be `update::ANY` or
/// `update::F_LOCK` (the kernel refuses EXIST/NOEXIST for batches). On
/// error, says how many were written.
pub fn update_batch(
    map: impl AsFd,
    sizes: &ElemSizes,
    keys: &[u8],
    values: &[u8],
    elem_flags: u64,
) -> std::result::Result<usize, PartialBatch> {
    let map = map.as_fd();
    let count = batch_count(
        "BPF_MAP_UPDATE_BATCH",
        sizes,
        keys.len(),
        Some(values.len()),
    )
    .map_err(|error| PartialBatch { done: 0, error })?;
    let mut attr = BatchAttr {
        keys: ptr(keys.as_ptr()),
        values: ptr(values.as_ptr()),
        count: count as u32,
        map_fd: map.as_raw_fd() as u32,
        elem_flags,
        ..Default::default()
    };
    // SAFETY: keys and values hold `count` elements of the map's sizes; the
    // kernel only reads them.
    match unsafe { bpf(cmd::MAP_UPDATE_BATCH, &mut attr) } {
        Ok(_) => Ok(count),
        Err(e) => Err(PartialBatch {
            done: written_before_error(attr.count, count),
            error: Error::new("BPF_MAP_UPDATE_BATCH", e).on(format!("map fd {}", map.as_raw_fd())),
        }),
    }
}

/// BPF_MAP_DELETE_BATCH: deletes every whole key in `keys`. On error, says
/// how many were deleted.
pub fn delete_batch(
    map: impl AsFd,
    sizes: &ElemSizes,
    keys: &[u8],
) -> std::result::Result<usize, PartialBatch> {
    let map = map.as_fd();
    let count = batch_count("BPF_MAP_DELETE_BATCH", sizes, keys.len(), None)
        .map_err(|error| PartialBatch { done: 0, error })?;
    let mut attr = BatchAttr {
        keys: ptr(keys.as_ptr()),
        count: count as u32,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    // SAFETY: keys holds `count` keys of the map's key size; the kernel only reads them.
    match unsafe { bpf(cmd::MAP_DELETE_BATCH, &mut attr) } {
        Ok(_) => Ok(count),
        Err(e) => Err(PartialBatch {
            done: written_before_error(attr.count, count),
            error: Error::new("BPF_MAP_DELETE_BATCH", e).on(format!("map fd {}", map.as_raw_fd())),
        }),
    }
}

/// How many elements a failed batch command processed. The kernel writes
/// the count back only once it started on the elements; a count left as
/// asked means it failed before the first one (a failure at the last
/// element would leave one less).
fn written_before_error(reported: u32, asked: usize) -> usize {
    let reported = reported as usize;
    if reported >= asked {
        0
    } else {
        reported
    }
}

/// True when `e` says the kernel or this map type has no such command
/// (`EINVAL`, `ENOTSUPP`, `EOPNOTSUPP`): callers fall back to per-element calls.
pub fn is_unsupported(e: &Error) -> bool {
    matches!(
        e.errno(),
        Some(libc::EINVAL) | Some(libc::ENOTSUP) | Some(524)
    )
}

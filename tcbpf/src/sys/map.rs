//! Map commands: create, element lookup/update/delete/iterate.

use super::fd::owned_from_ret;
use super::{bpf, cmd, obj_name, ptr, Error, MapFd, Result};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Kernel map types (`enum bpf_map_type`), named as bpftool names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum MapType {
    Unspec = 0,
    Hash = 1,
    Array = 2,
    ProgArray = 3,
    PerfEventArray = 4,
    PercpuHash = 5,
    PercpuArray = 6,
    StackTrace = 7,
    CgroupArray = 8,
    LruHash = 9,
    LruPercpuHash = 10,
    LpmTrie = 11,
    ArrayOfMaps = 12,
    HashOfMaps = 13,
    Devmap = 14,
    Sockmap = 15,
    Cpumap = 16,
    Xskmap = 17,
    Sockhash = 18,
    CgroupStorage = 19,
    ReuseportSockarray = 20,
    PercpuCgroupStorage = 21,
    Queue = 22,
    Stack = 23,
    SkStorage = 24,
    DevmapHash = 25,
    StructOps = 26,
    Ringbuf = 27,
    InodeStorage = 28,
    TaskStorage = 29,
    BloomFilter = 30,
    UserRingbuf = 31,
    CgrpStorage = 32,
    Arena = 33,
}

const MAP_TYPES: [(MapType, &str); 34] = [
    (MapType::Unspec, "unspec"),
    (MapType::Hash, "hash"),
    (MapType::Array, "array"),
    (MapType::ProgArray, "prog_array"),
    (MapType::PerfEventArray, "perf_event_array"),
    (MapType::PercpuHash, "percpu_hash"),
    (MapType::PercpuArray, "percpu_array"),
    (MapType::StackTrace, "stack_trace"),
    (MapType::CgroupArray, "cgroup_array"),
    (MapType::LruHash, "lru_hash"),
    (MapType::LruPercpuHash, "lru_percpu_hash"),
    (MapType::LpmTrie, "lpm_trie"),
    (MapType::ArrayOfMaps, "array_of_maps"),
    (MapType::HashOfMaps, "hash_of_maps"),
    (MapType::Devmap, "devmap"),
    (MapType::Sockmap, "sockmap"),
    (MapType::Cpumap, "cpumap"),
    (MapType::Xskmap, "xskmap"),
    (MapType::Sockhash, "sockhash"),
    (MapType::CgroupStorage, "cgroup_storage"),
    (MapType::ReuseportSockarray, "reuseport_sockarray"),
    (MapType::PercpuCgroupStorage, "percpu_cgroup_storage"),
    (MapType::Queue, "queue"),
    (MapType::Stack, "stack"),
    (MapType::SkStorage, "sk_storage"),
    (MapType::DevmapHash, "devmap_hash"),
    (MapType::StructOps, "struct_ops"),
    (MapType::Ringbuf, "ringbuf"),
    (MapType::InodeStorage, "inode_storage"),
    (MapType::TaskStorage, "task_storage"),
    (MapType::BloomFilter, "bloom_filter"),
    (MapType::UserRingbuf, "user_ringbuf"),
    (MapType::CgrpStorage, "cgrp_storage"),
    (MapType::Arena, "arena"),
];

impl MapType {
    /// The type with kernel number `n`, if tcbpf knows it.
    pub fn from_u32(n: u32) -> Option<MapType> {
        MAP_TYPES.get(n as usize).map(|(t, _)| *t)
    }

    /// The type bpftool calls `name`.
    pub fn from_name(name: &str) -> Option<MapType> {
        MAP_TYPES.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// bpftool's name for the type.
    pub fn name(self) -> &'static str {
        MAP_TYPES[self as usize].1
    }

    /// Every known type, in kernel order.
    pub fn all() -> impl Iterator<Item = MapType> {
        MAP_TYPES.iter().map(|(t, _)| *t)
    }

    /// True for the types whose values are one per possible CPU.
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// True for program arrays and map-in-map outer maps, whose values are
    /// descriptors on update and ids on lookup, and which the kernel refuses
    /// BTF key/value types for.
    pub fn holds_fds(self) -> bool {
        matches!(
            self,
            MapType::ProgArray
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::Sockmap
                | MapType::Sockhash
                | MapType::Devmap
                | MapType::DevmapHash
                | MapType::Cpumap
                | MapType::Xskmap
                | MapType::ReuseportSockarray
        )
    }

    /// True for queue and stack maps (push/pop/peek, no keys).
    pub fn is_queue_or_stack(self) -> bool {
        matches!(self, MapType::Queue | MapType::Stack)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `BPF_F_*` map creation flags that scripts name.
pub mod flags {
    /// `BPF_F_NO_PREALLOC`: hash maps allocate on update.
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// `BPF_F_NO_COMMON_LRU`.
    pub const NO_COMMON_LRU: u32 = 1 << 1;
    /// `BPF_F_NUMA_NODE`: `numa_node` is valid.
    pub const NUMA_NODE: u32 = 1 << 2;
    /// `BPF_F_RDONLY`: user space may only read.
    pub const RDONLY: u32 = 1 << 3;
    /// `BPF_F_WRONLY`: user space may only write.
    pub const WRONLY: u32 = 1 << 4;
    /// `BPF_F_RDONLY_PROG`: programs may only read.
    pub const RDONLY_PROG: u32 = 1 << 7;
    /// `BPF_F_WRONLY_PROG`: programs may only write.
    pub const WRONLY_PROG: u32 = 1 << 8;
    /// `BPF_F_MMAPABLE`.
    pub const MMAPABLE: u32 = 1 << 10;
}

/// What BPF_MAP_CREATE is asked to make.
#[derive(Debug, Clone, Default)]
pub struct MapCreate<'a> {
    /// Kernel map type number.
    pub map_type: u32,
    /// Key size in bytes (0 for queue/stack).
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// Name (truncated to 15 bytes).
    pub name: &'a str,
    /// Template inner map for map-in-map outer maps.
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// NUMA node, used with `BPF_F_NUMA_NODE`.
    pub numa_node: u32,
    /// BTF object and key/value type ids describing the map.
    pub btf: Option<(BorrowedFd<'a>, u32, u32)>,
    /// Type-specific extra (bloom filter hash count…).
    pub map_extra: u64,
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

/// BPF_MAP_CREATE.
pub fn create(spec: &MapCreate<'_>) -> Result<MapFd> {
    let mut attr = MapCreateAttr {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.map_flags,
        inner_map_fd: spec.inner_map_fd.map_or(0, |fd| fd.as_raw_fd() as u32),
        numa_node: spec.numa_node,
        map_name: obj_name(spec.name),
        map_extra: spec.map_extra,
        ..Default::default()
    };
    if let Some((btf, key, value)) = spec.btf {
        attr.btf_fd = btf.as_raw_fd() as u32;
        attr.btf_key_type_id = key;
        attr.btf_value_type_id = value;
    }
    // SAFETY: MapCreateAttr is BPF_MAP_CREATE's attr and holds no pointers.
    let ret = unsafe { bpf(cmd::MAP_CREATE, &mut attr) };
    ret.map(|fd| MapFd::from_kernel(owned_from_ret(fd)))
        .map_err(|e| Error::new("BPF_MAP_CREATE", e).on(format!("map '{}'", spec.name)))
}

/// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, and `BPF_F_LOCK`, for updates.
pub mod update {
    /// Create or replace.
    pub const ANY: u64 = 0;
    /// Create only.
    pub const NOEXIST: u64 = 1;
    /// Replace only.
    pub const EXIST: u64 = 2;
    /// Take the value's `bpf_spin_lock` while copying.
    pub const F_LOCK: u64 = 4;
}

#[repr(C)]
#[derive(Default)]
pub(crate) struct ElemAttr {
    pub map_fd: u32,
    pub _pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}

fn elem_op(
    command: u32,
    op: &'static str,
    map: BorrowedFd<'_>,
    key: *const u8,
    value: u64,
    flags: u64,
) -> Result<()> {
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: ptr(key),
        value,
        flags,
        ..Default::default()
    };
    // SAFETY: callers pass key/value buffers sized to the map's key and value.
    unsafe { bpf(command, &mut attr) }
        .map(|_| ())
        .map_err(|e| Error::new(op, e).on(format!("map fd {}", map.as_raw_fd())))
}

/// BPF_MAP_LOOKUP_ELEM into `value`, which must be the map's value size
/// (times possible CPUs for per-CPU maps). `key` must be the key size.
pub fn lookup(map: impl AsFd, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
    elem_op(
        cmd::MAP_LOOKUP_ELEM,
        "BPF_MAP_LOOKUP_ELEM",
        map.as_fd(),
        key.as_ptr(),
        ptr(value.as_mut_ptr()),
        flags,
    )
}

/// BPF_MAP_UPDATE_ELEM with `update::*` flags.
pub fn update(map: impl AsFd, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
    elem_op(
        cmd::MAP_UPDATE_ELEM,
        "BPF_MAP_UPDATE_ELEM",
        map.as_fd(),
        key.as_ptr(),
        ptr(value.as_ptr()),
        flags,
    )
}

/// BPF_MAP_DELETE_ELEM.
pub fn delete(map: impl AsFd, key: &[u8]) -> Result<()> {
    elem_op(
        cmd::MAP_DELETE_ELEM,
        "BPF_MAP_DELETE_ELEM",
        map.as_fd(),
        key.as_ptr(),
        0,
        0,
    )
}

/// BPF_MAP_GET_NEXT_KEY: the key after `key` (the first key when `None`)
/// written to `next`. Returns false at the end of the map.
pub fn next_key(map: impl AsFd, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool> {
    let key_ptr = key.map_or(std::ptr::null(), |k| k.as_ptr());
    match elem_op(
        cmd::MAP_GET_NEXT_KEY,
        "BPF_MAP_GET_NEXT_KEY",
        map.as_fd(),
        key_ptr,
        ptr(next.as_mut_ptr()),
        0,
    ) {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// BPF_MAP_LOOKUP_ELEM with no key: the head of a queue or top of a stack,
/// left in place. `value` must be the map's value size.
pub fn peek(map: impl AsFd, value: &mut [u8]) -> Result<()> {
    elem_op(
        cmd::MAP_LOOKUP_ELEM,
        "BPF_MAP_LOOKUP_ELEM",
        map.as_fd(),
        std::ptr::null(),
        ptr(value.as_mut_ptr()),
        0,
    )
}

/// BPF_MAP_UPDATE_ELEM with no key: pushes `value` on a queue or stack
/// (`update::EXIST` overwrites the oldest element when full).
pub fn push(map: impl AsFd, value: &[u8], flags: u64) -> Result<()> {
    elem_op(
        cmd::MAP_UPDATE_ELEM,
        "BPF_MAP_UPDATE_ELEM",
        map.as_fd(),
        std::ptr::null(),
        ptr(value.as_ptr()),
        flags,
    )
}

/// BPF_MAP_LOOKUP_AND_DELETE_ELEM: reads the value of `key` into `value`
/// and removes the entry in one step. `key` must be the key size.
pub fn lookup_and_delete(map: impl AsFd, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
    elem_op(
        cmd::MAP_LOOKUP_AND_DELETE_ELEM,
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        map.as_fd(),
        key.as_ptr(),
        ptr(value.as_mut_ptr()),
        flags,
    )
}

/// BPF_MAP_LOOKUP_AND_DELETE_ELEM with no key: pops the head of a queue or
/// the top of a stack into `value` (the map's value size).
pub fn pop(map: impl AsFd, value: &mut [u8]) -> Result<()> {
    elem_op(
        cmd::MAP_LOOKUP_AND_DELETE_ELEM,
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        map.as_fd(),
        std::ptr::null(),
        ptr(value.as_mut_ptr()),
        0,
    )
}

#[repr(C)]
#[derive(Default)]
struct FreezeAttr {
    map_fd: u32,
}

/// BPF_MAP_FREEZE: user space may no longer write the map (programs still may).
pub fn freeze(map: impl AsFd) -> Result<()> {
    let map = map.as_fd();
    let mut attr = FreezeAttr {
        map_fd: map.as_raw_fd() as u32,
    };
    // SAFETY: FreezeAttr holds no pointers.
    unsafe { bpf(cmd::MAP_FREEZE, &mut attr) }
        .map(|_| ())
        .map_err(|e| Error::new("BPF_MAP_FREEZE", e).on(format!("map fd {}", map.as_raw_fd())))
}

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

//! Map commands: create, element lookup/update/delete/iterate.

use super::fd::owned_from_ret;
use super::{bpf, cmd, obj_name, ptr, Error, MapFd, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

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
abi_layout!(MapCreateAttr, 72; map_type @ 0, key_size @ 4, value_size @ 8, max_entries @ 12, map_flags @ 16, inner_map_fd @ 20, numa_node @ 24, map_name @ 28, map_ifindex @ 44, btf_fd @ 48, btf_key_type_id @ 52, btf_value_type_id @ 56, btf_vmlinux_value_type_id @ 60, map_extra @ 64);

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
abi_layout!(ElemAttr, 32; map_fd @ 0, key @ 8, value @ 16, flags @ 24);

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

/// The key pointer the kernel expects: NULL for maps without keys (queue,
/// stack), which refuse any other pointer with EINVAL.
fn key_ptr(key: &[u8]) -> *const u8 {
    if key.is_empty() {
        std::ptr::null()
    } else {
        key.as_ptr()
    }
}

/// BPF_MAP_LOOKUP_ELEM into `value`, which must be the map's value size
/// (times possible CPUs for per-CPU maps). `key` must be the key size.
pub fn lookup(map: impl AsFd, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
    elem_op(
        cmd::MAP_LOOKUP_ELEM,
        "BPF_MAP_LOOKUP_ELEM",
        map.as_fd(),
        key_ptr(key),
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
        key_ptr(key),
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
        key_ptr(key),
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
abi_layout!(FreezeAttr, 4; map_fd @ 0);

/// BPF_MAP_FREEZE: user space may no longer write the map (programs still
/// may, unless the map is `BPF_F_RDONLY_PROG`).
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

// Element sizes and the batch commands live in `batch`; they are map
// commands, so they are reachable here too.
pub use super::batch::{
    delete_batch, is_unsupported, lookup_batch, update_batch, BatchCursor, ElemSizes, PartialBatch,
};

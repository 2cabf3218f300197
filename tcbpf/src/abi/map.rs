//! Map types (`enum bpf_map_type`) with bpftool's names, the `BPF_F_*`
//! creation flags, and the creation rules of each type (default flags):
//! the one table `map create`, the loader and the importer read. Pure data;
//! no syscalls.

use std::fmt;

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

    /// The flags a map of this type is created with when none are given:
    /// the kernel refuses an lpm_trie without `BPF_F_NO_PREALLOC`, so a
    /// script need not know that.
    pub fn default_flags(self) -> u32 {
        match self {
            MapType::LpmTrie => map_flags::NO_PREALLOC,
            _ => 0,
        }
    }

    /// True for the types whose keys are indices below `max_entries` (the
    /// arrays): a key past the end is the caller's error (E2BIG).
    pub fn is_indexed(self) -> bool {
        matches!(
            self,
            MapType::Array
                | MapType::PercpuArray
                | MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::ArrayOfMaps
                | MapType::Devmap
                | MapType::Cpumap
                | MapType::Xskmap
                | MapType::Sockmap
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
pub mod map_flags {
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

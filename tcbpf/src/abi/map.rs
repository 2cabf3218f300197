//! Map types (`enum bpf_map_type`) with bpftool's names, the `BPF_F_*`
//! creation flags, and the rules of each type in one const-checked table
//! ([`MAP_TYPES`]: sizes, entries, default flags, per-CPU, descriptors,
//! BTF, memory shape) that `map create`, the ELF reader, the loader's
//! defaults and its memory budget read. Pure data; no syscalls.

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

/// What the kernel allocates when it creates a map of a type, by shape
/// (`load::budget` turns it into bytes for a given map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// A `struct bpf_array` and every value (per-CPU ones once per possible
    /// CPU, mmapable ones page-aligned).
    Array,
    /// A hash table's buckets and, preallocated (or LRU), every element.
    Hash {
        /// LRU: always preallocated, no spare elements.
        lru: bool,
    },
    /// Nothing per entry at creation (LPM trie nodes, arena pages come later).
    Nothing,
    /// The ring buffer's pages.
    Ringbuf,
    /// A queue or stack: `max_entries + 1` values.
    QueueStack,
    /// A stack trace map's buckets and their data.
    StackTrace,
    /// A bloom filter's bit array.
    Bloom,
    /// A socket hash: its buckets.
    Buckets,
    /// A device hash: a pointer per bucket.
    PtrBuckets,
    /// A pointer per entry (socket, device, CPU and XSK maps).
    PtrPerEntry,
    /// A bound, not a measure: local and cgroup storage, struct_ops.
    Fixed,
}

/// What `max_entries` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// More than 0.
    Required,
    /// Unused (local and cgroup storage): 0 is fine.
    Unused,
    /// 0 means one per possible CPU (libbpf sizes it at load time).
    PossibleCpus,
    /// A ring buffer's bytes: rounded up to a power-of-2 multiple of the
    /// page size at load time; 0 is refused.
    RingbufPages,
}

/// The rules of one map type: its row in [`MAP_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapTypeRules {
    /// The type.
    pub map_type: MapType,
    /// bpftool's name.
    pub name: &'static str,
    /// The key size must not be 0.
    pub needs_key: bool,
    /// The value size must not be 0.
    pub needs_value: bool,
    /// What `max_entries` must be.
    pub entries: Entries,
    /// Flags a map is created with when none are given.
    pub default_flags: u32,
    /// Values are one per possible CPU.
    pub percpu: bool,
    /// Values are descriptors on update and ids on lookup.
    pub holds_fds: bool,
    /// The kernel takes BTF key/value types for it (libbpf creates the
    /// others without them).
    pub btf_types: bool,
    /// Keys are indices below `max_entries` (a key past the end is E2BIG).
    pub indexed: bool,
    /// Push, pop and peek; no keys (queue, stack).
    pub push_pop: bool,
    /// What creating it allocates.
    pub memory: Memory,
}

impl MapTypeRules {
    /// A keyed map with a value and entries, BTF types allowed.
    const fn new(map_type: MapType, name: &'static str, memory: Memory) -> Self {
        MapTypeRules {
            map_type,
            name,
            needs_key: true,
            needs_value: true,
            entries: Entries::Required,
            default_flags: 0,
            percpu: false,
            holds_fds: false,
            btf_types: true,
            indexed: false,
            push_pop: false,
            memory,
        }
    }
    const fn percpu(self) -> Self {
        MapTypeRules {
            percpu: true,
            ..self
        }
    }
    /// Holds descriptors (so takes no BTF types).
    const fn fds(self) -> Self {
        MapTypeRules {
            holds_fds: true,
            btf_types: false,
            ..self
        }
    }
    const fn no_btf(self) -> Self {
        MapTypeRules {
            btf_types: false,
            ..self
        }
    }
    const fn indexed(self) -> Self {
        MapTypeRules {
            indexed: true,
            ..self
        }
    }
    const fn keyless(self) -> Self {
        MapTypeRules {
            needs_key: false,
            ..self
        }
    }
    const fn valueless(self) -> Self {
        MapTypeRules {
            needs_value: false,
            ..self
        }
    }
    const fn push_pop(self) -> Self {
        MapTypeRules {
            push_pop: true,
            needs_key: false,
            btf_types: false,
            ..self
        }
    }
    const fn entries(self, entries: Entries) -> Self {
        MapTypeRules { entries, ..self }
    }
    const fn flags(self, default_flags: u32) -> Self {
        MapTypeRules {
            default_flags,
            ..self
        }
    }
}

use MapTypeRules as R;
use Memory as M;

/// Every map type tcbpf knows, in kernel order, with its rules: the one
/// table `map create`, the ELF reader's size checks, the loader's
/// defaults and its memory budget read. A new map type is one row (and
/// its `MapType` variant); the `const` checks below refuse a row out of
/// order or rules that contradict each other.
pub const MAP_TYPES: [MapTypeRules; 34] = [
    R::new(MapType::Unspec, "unspec", M::Fixed),
    R::new(MapType::Hash, "hash", M::Hash { lru: false }),
    R::new(MapType::Array, "array", M::Array).indexed(),
    R::new(MapType::ProgArray, "prog_array", M::Array)
        .indexed()
        .fds(),
    R::new(MapType::PerfEventArray, "perf_event_array", M::Array)
        .indexed()
        .fds()
        .entries(Entries::PossibleCpus),
    R::new(MapType::PercpuHash, "percpu_hash", M::Hash { lru: false }).percpu(),
    R::new(MapType::PercpuArray, "percpu_array", M::Array)
        .percpu()
        .indexed(),
    R::new(MapType::StackTrace, "stack_trace", M::StackTrace).no_btf(),
    R::new(MapType::CgroupArray, "cgroup_array", M::Array)
        .indexed()
        .fds(),
    R::new(MapType::LruHash, "lru_hash", M::Hash { lru: true }),
    R::new(
        MapType::LruPercpuHash,
        "lru_percpu_hash",
        M::Hash { lru: true },
    )
    .percpu(),
    R::new(MapType::LpmTrie, "lpm_trie", M::Nothing).flags(map_flags::NO_PREALLOC),
    R::new(MapType::ArrayOfMaps, "array_of_maps", M::Array)
        .indexed()
        .fds(),
    R::new(MapType::HashOfMaps, "hash_of_maps", M::Hash { lru: false }).fds(),
    R::new(MapType::Devmap, "devmap", M::PtrPerEntry)
        .indexed()
        .fds(),
    R::new(MapType::Sockmap, "sockmap", M::PtrPerEntry)
        .indexed()
        .fds(),
    R::new(MapType::Cpumap, "cpumap", M::PtrPerEntry)
        .indexed()
        .fds(),
    R::new(MapType::Xskmap, "xskmap", M::PtrPerEntry)
        .indexed()
        .fds(),
    R::new(MapType::Sockhash, "sockhash", M::Buckets).fds(),
    R::new(MapType::CgroupStorage, "cgroup_storage", M::Fixed).entries(Entries::Unused),
    R::new(
        MapType::ReuseportSockarray,
        "reuseport_sockarray",
        M::PtrPerEntry,
    )
    .indexed()
    .fds(),
    R::new(
        MapType::PercpuCgroupStorage,
        "percpu_cgroup_storage",
        M::Fixed,
    )
    .percpu()
    .entries(Entries::Unused),
    R::new(MapType::Queue, "queue", M::QueueStack).push_pop(),
    R::new(MapType::Stack, "stack", M::QueueStack).push_pop(),
    R::new(MapType::SkStorage, "sk_storage", M::Fixed).entries(Entries::Unused),
    R::new(MapType::DevmapHash, "devmap_hash", M::PtrBuckets).fds(),
    R::new(MapType::StructOps, "struct_ops", M::Fixed),
    R::new(MapType::Ringbuf, "ringbuf", M::Ringbuf)
        .keyless()
        .valueless()
        .entries(Entries::RingbufPages),
    R::new(MapType::InodeStorage, "inode_storage", M::Fixed).entries(Entries::Unused),
    R::new(MapType::TaskStorage, "task_storage", M::Fixed).entries(Entries::Unused),
    R::new(MapType::BloomFilter, "bloom_filter", M::Bloom).keyless(),
    R::new(MapType::UserRingbuf, "user_ringbuf", M::Ringbuf)
        .keyless()
        .valueless()
        .entries(Entries::RingbufPages),
    R::new(MapType::CgrpStorage, "cgrp_storage", M::Fixed).entries(Entries::Unused),
    R::new(MapType::Arena, "arena", M::Nothing)
        .keyless()
        .valueless(),
];

// The table's own checks, at compile time: row i is type i, names are
// given, and no row's rules contradict each other.
const _: () = {
    let mut i = 0;
    while i < MAP_TYPES.len() {
        let r = &MAP_TYPES[i];
        assert!(r.map_type as usize == i, "MAP_TYPES is in kernel order");
        assert!(!r.name.is_empty(), "every map type has a name");
        assert!(
            !(r.holds_fds && r.btf_types),
            "descriptors have no BTF type"
        );
        assert!(
            !(r.push_pop && r.needs_key),
            "queues and stacks have no key"
        );
        assert!(
            !(r.push_pop && r.indexed),
            "queues and stacks have no index"
        );
        assert!(
            !r.indexed || matches!(r.memory, Memory::Array | Memory::PtrPerEntry),
            "indexed maps are arrays"
        );
        assert!(
            !r.percpu
                || matches!(
                    r.memory,
                    Memory::Array | Memory::Hash { .. } | Memory::Fixed
                ),
            "per-CPU values are in arrays, hashes or storage"
        );
        assert!(
            !matches!(r.entries, Entries::RingbufPages) || matches!(r.memory, Memory::Ringbuf),
            "only ring buffers are sized in pages"
        );
        i += 1;
    }
};

impl MapType {
    /// The type with kernel number `n`, if tcbpf knows it.
    pub fn from_u32(n: u32) -> Option<MapType> {
        MAP_TYPES.get(n as usize).map(|r| r.map_type)
    }

    /// The type bpftool calls `name`.
    pub fn from_name(name: &str) -> Option<MapType> {
        MAP_TYPES
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.map_type)
    }

    /// The type's row in [`MAP_TYPES`].
    pub fn rules(self) -> &'static MapTypeRules {
        &MAP_TYPES[self as usize]
    }

    /// bpftool's name for the type.
    pub fn name(self) -> &'static str {
        self.rules().name
    }

    /// Every known type, in kernel order.
    pub fn all() -> impl Iterator<Item = MapType> {
        MAP_TYPES.iter().map(|r| r.map_type)
    }

    /// True for the types whose values are one per possible CPU.
    pub fn is_percpu(self) -> bool {
        self.rules().percpu
    }

    /// True for program arrays, map-in-map outer maps and the other maps
    /// whose values are descriptors on update and ids on lookup.
    pub fn holds_fds(self) -> bool {
        self.rules().holds_fds
    }

    /// True for the types the kernel takes BTF key/value types for; libbpf
    /// (and tcbpf) create the others without them.
    pub fn takes_btf_types(self) -> bool {
        self.rules().btf_types
    }

    /// The flags a map of this type is created with when none are given:
    /// the kernel refuses an lpm_trie without `BPF_F_NO_PREALLOC`, so a
    /// script need not know that.
    pub fn default_flags(self) -> u32 {
        self.rules().default_flags
    }

    /// True for the types whose keys are indices below `max_entries` (the
    /// arrays): a key past the end is the caller's error (E2BIG).
    pub fn is_indexed(self) -> bool {
        self.rules().indexed
    }

    /// True for queue and stack maps (push/pop/peek, no keys).
    pub fn is_queue_or_stack(self) -> bool {
        self.rules().push_pop
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

//! The sanity limit on the kernel memory an object's maps may take,
//! checked before any map is created: one flipped byte of `max_entries`
//! must be a clear error, not a minute of allocating gigabytes.
//!
//! The estimate is what the kernel allocates when it creates the map, the
//! figure it then reports as the map's `memlock` (its `map_mem_usage`),
//! type by type: preallocated hashes (and LRU, per-CPU) their buckets and
//! every element; `BPF_F_NO_PREALLOC` hashes only their buckets (elements
//! come as they are inserted, and are charged to the memory cgroup then);
//! LPM tries nothing; arrays every element (per-CPU ones once per possible
//! CPU; mmapable ones page-aligned); ring buffers their pages; queues,
//! stacks, bloom filters, stack traces, socket and device maps their
//! tables. The structure sizes are the kernel's on x86_64 Linux 6.18;
//! `tcbpf/tests/kernel/map_memory.rs` checks every map type of the test objects
//! against the kernel's `memlock`. The limit is `max-memory BYTES`
//! ([`super::LoadOptions::max_map_memory`]), else `$TCBPF_MAX_MAP_MEMORY`,
//! else half of the machine's RAM. Maps whose pin already exists are not
//! created (they are reused) and do not count. No syscalls but reading
//! `/proc/meminfo`.

use super::map_defaults::created_entries;
use super::{pin, Context, LoadError};
use crate::abi::{map_flags, Memory};
use crate::elf::{MapSpec, ObjectSpec};

/// The environment variable that sets the limit when `max-memory` is not given.
pub const ENV_MAX_MAP_MEMORY: &str = "TCBPF_MAX_MAP_MEMORY";

/// A pointer.
const PTR: u128 = 8;
/// A page.
const PAGE: u128 = 4096;
/// `struct bpf_array` (before the values).
const ARRAY_HEAD: u128 = 312;
/// `struct bpf_htab`.
const HTAB_HEAD: u128 = 832;
/// `struct htab_elem` before its key.
const HTAB_ELEM_HEAD: u128 = 48;
/// `struct bucket` of a hash table (a list head and its lock).
const HTAB_BUCKET: u128 = 16;
/// `HASHTAB_MAP_LOCK_COUNT` ints per possible CPU.
const HTAB_LOCKS_PER_CPU: u128 = 8 * 4;
/// `struct bpf_ringbuf_map` and the ring buffer's header.
const RINGBUF_HEAD: u128 = 4408;
/// The ring buffer's meta pages (consumer and producer positions).
const RINGBUF_META_PAGES: u128 = 2;
/// `struct stack_map_bucket` before its data.
const STACK_BUCKET_HEAD: u128 = 16;
/// The head of the other maps (queue, stack, bloom filter, stack trace,
/// socket, device and CPU maps): 300 to 400 bytes each.
const SMALL_HEAD: u128 = 400;
/// What a map that allocates nothing per entry at creation takes (local
/// storage, cgroup storage, struct_ops): a bound, not a measure.
const FIXED: u128 = 1024;

fn pow2(n: u128) -> u128 {
    n.max(1).next_power_of_two()
}

/// The kernel memory creating `m` takes, in bytes (its `memlock` right
/// after creation), with `cpus` possible CPUs: by the shape of its type
/// (`abi::Memory`, in the type's row of `abi::MAP_TYPES`), at the size the
/// loader creates it (`map_defaults::created_entries`: a perf event array
/// of 0 entries has one per CPU, a ring buffer is rounded up).
pub fn estimate(m: &MapSpec, cpus: usize) -> u128 {
    let rules = m.map_type.rules();
    let created = created_entries(
        rules.entries,
        m.max_entries,
        cpus.max(1) as u32,
        PAGE as u32,
    )
    .unwrap_or(m.max_entries);
    let cpus = cpus.max(1) as u128;
    let entries = u128::from(created);
    let key = u128::from(m.key_size).next_multiple_of(8);
    let value = u128::from(m.value_size).next_multiple_of(8);
    let prealloc = m.flags & map_flags::NO_PREALLOC == 0;
    let own = match rules.memory {
        Memory::Array => {
            if rules.percpu {
                ARRAY_HEAD + entries * (PTR + value * cpus)
            } else if m.flags & map_flags::MMAPABLE != 0 {
                ARRAY_HEAD.next_multiple_of(PAGE) + (entries * value).next_multiple_of(PAGE)
            } else {
                ARRAY_HEAD + entries * value
            }
        }
        Memory::Hash { lru } => {
            let percpu = rules.percpu;
            let head = HTAB_HEAD + pow2(entries) * HTAB_BUCKET + HTAB_LOCKS_PER_CPU * cpus;
            if prealloc || lru {
                let elem = HTAB_ELEM_HEAD + key + if percpu { PTR } else { value };
                // Plain preallocated hashes keep one spare element per CPU.
                let extra = if percpu || lru { 0 } else { cpus };
                let spare = if percpu || lru { 0 } else { PTR * cpus };
                let values = if percpu { entries * value * cpus } else { 0 };
                head + elem * (entries + extra) + spare + values
            } else {
                head
            }
        }
        // LPM trie nodes are allocated as prefixes are inserted, arena
        // pages as they are touched.
        Memory::Nothing => 0,
        Memory::Ringbuf => {
            let data_pages = entries / PAGE;
            RINGBUF_HEAD
                + (RINGBUF_META_PAGES + data_pages) * PAGE
                + (RINGBUF_META_PAGES + 2 * data_pages) * PTR
        }
        Memory::QueueStack => SMALL_HEAD + (entries + 1) * u128::from(m.value_size),
        Memory::StackTrace => {
            SMALL_HEAD
                + pow2(entries) * PTR
                + entries * (STACK_BUCKET_HEAD + u128::from(m.value_size))
        }
        Memory::Bloom => SMALL_HEAD + bloom_bytes(created, m.map_extra),
        Memory::Buckets => SMALL_HEAD + pow2(entries) * HTAB_BUCKET,
        Memory::PtrBuckets => SMALL_HEAD + pow2(entries) * PTR,
        Memory::PtrPerEntry => SMALL_HEAD + entries * PTR,
        Memory::Fixed => FIXED,
    };
    own + m.inner.as_deref().map_or(0, |i| estimate(i, cpus as usize))
}

/// The bit array of a bloom filter, in bytes, as the kernel sizes it:
/// entries × hash functions (`map_extra`'s low 4 bits, 5 when 0) × 7/5
/// bits, rounded up to a power of two, at least 64, at most 2^32.
fn bloom_bytes(max_entries: u32, map_extra: u64) -> u128 {
    let hashes = match (map_extra & 0xf) as u32 {
        0 => 5,
        n => n,
    };
    let bits = max_entries
        .checked_mul(hashes)
        .and_then(|b| (b / 5).checked_mul(7))
        .filter(|&b| b <= 1 << 31);
    let bits = match bits {
        None => 1u128 << 32,
        Some(b) if b <= 64 => 64,
        Some(b) => pow2(u128::from(b)),
    };
    bits.div_ceil(8).next_multiple_of(8)
}

/// Where the limit came from, for the error message.
fn source_and_limit(given: Option<u64>) -> (u128, String) {
    if let Some(b) = given {
        return (u128::from(b), "set with 'max-memory'".into());
    }
    if let Some(b) = std::env::var(ENV_MAX_MAP_MEMORY)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return (u128::from(b), format!("set with {ENV_MAX_MAP_MEMORY}"));
    }
    let ram = mem_total().unwrap_or(8 << 30);
    (
        u128::from(ram / 2),
        format!(
            "half of this machine's RAM; raise it with 'max-memory BYTES' or {ENV_MAX_MAP_MEMORY}"
        ),
    )
}

/// Physical memory from `/proc/meminfo` (`MemTotal: N kB`).
fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuses the load when one map, or all the maps to be created, would take
/// more than the limit.
pub(crate) fn check(
    ctx: &Context<'_>,
    spec: &ObjectSpec,
    given: Option<u64>,
) -> Result<(), LoadError> {
    let cpus = crate::sys::possible_cpus().unwrap_or(1);
    let (limit, source) = source_and_limit(given);
    let mut total = 0u128;
    let mut largest: Option<(&MapSpec, u128)> = None;
    for m in &spec.maps {
        let reused = pin::pin_path(ctx.bpffs, &ctx.sha1_hex, m, &ctx.pinning_db)
            .is_some_and(|p| p.symlink_metadata().is_ok());
        if reused {
            continue;
        }
        let bytes = estimate(m, cpus);
        if bytes > limit {
            return Err(LoadError::Invalid {
                file: ctx.file.clone(),
                what: format!("map '{}'", m.name),
                reason: format!(
                    "{} with {} entries (key {}, value {} bytes{}) would take about {bytes} bytes of kernel memory, more than the limit of {limit} bytes ({source})",
                    m.map_type,
                    m.max_entries,
                    m.key_size,
                    m.value_size,
                    if m.map_type.is_percpu() { format!(", per CPU x{cpus}") } else { String::new() },
                ),
            });
        }
        total += bytes;
        if largest.map_or(true, |(_, b)| b < bytes) {
            largest = Some((m, bytes));
        }
    }
    if total > limit {
        let (m, bytes) = largest.expect("a map when the total is not zero");
        return Err(LoadError::Invalid {
            file: ctx.file.clone(),
            what: "maps".into(),
            reason: format!(
                "all maps together would take about {total} bytes of kernel memory (the largest, '{}', {bytes}), more than the limit of {limit} bytes ({source})",
                m.name
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::MapType;
    use crate::elf::MapOrigin;

    fn map(t: MapType, key: u32, value: u32, max: u32) -> MapSpec {
        let mut m = MapSpec::new("m", MapOrigin::Btf, t);
        m.key_size = key;
        m.value_size = value;
        m.max_entries = max;
        m
    }

    #[test]
    fn estimates_are_what_the_kernel_reports_as_memlock_on_two_cpus() {
        // Figures read from fdinfo `memlock` of maps bpftool created on
        // this 6.18 kernel with two possible CPUs.
        let cases = [
            (map(MapType::Array, 4, 8, 1024), 8504),
            (map(MapType::PercpuArray, 4, 8, 1024), 24888),
            (map(MapType::ProgArray, 4, 4, 1024), 8504),
            (map(MapType::Hash, 4, 8, 1), 1120),
            (map(MapType::Hash, 4, 8, 1024), 82960),
            (map(MapType::PercpuHash, 4, 8, 1024), 99200),
            (map(MapType::LruHash, 4, 8, 1024), 82816),
            (map(MapType::LruPercpuHash, 4, 8, 1024), 99200),
            (map(MapType::Ringbuf, 0, 0, 65536), 78408),
            (map(MapType::LpmTrie, 8, 8, 1024), 0),
        ];
        for (m, kernel) in cases {
            assert_eq!(estimate(&m, 2), kernel, "{}", m.map_type);
        }
        let mut no_prealloc = map(MapType::Hash, 4, 8, 1024);
        no_prealloc.flags = map_flags::NO_PREALLOC;
        assert_eq!(estimate(&no_prealloc, 2), 17280);
        let mut mmapable = map(MapType::Array, 4, 8, 1024);
        mmapable.flags = map_flags::MMAPABLE;
        assert_eq!(estimate(&mmapable, 2), 12288);
    }

    #[test]
    fn a_no_prealloc_hash_costs_its_buckets_and_a_preallocated_one_every_element() {
        let mut flows = map(MapType::Hash, 40, 96, 1 << 24);
        flows.flags = map_flags::NO_PREALLOC;
        let buckets = estimate(&flows, 2);
        assert_eq!(buckets, 832 + (16 << 24) + 64);
        flows.flags = 0;
        assert!(estimate(&flows, 2) > 3 * (1 << 30), "preallocated: GBs");
    }

    #[test]
    fn maps_the_loader_resizes_are_estimated_at_the_size_it_creates() {
        // The loader rounds a ring buffer of 3 pages up to 4 and sizes a
        // perf event array of 0 entries to the possible CPUs; the kernel
        // then reports (fdinfo `memlock`, 6.18, two CPUs) 29064 bytes for
        // the ring buffer of 16384 bytes and 328 for the two-slot array.
        assert_eq!(estimate(&map(MapType::Ringbuf, 0, 0, 3 * 4096), 2), 29064);
        assert_eq!(estimate(&map(MapType::Ringbuf, 0, 0, 4 * 4096), 2), 29064);
        assert_eq!(estimate(&map(MapType::PerfEventArray, 4, 4, 0), 2), 328);
        // A ring buffer of 2^30 + 1 bytes is created with 2^31: its
        // estimate is not half of what it takes.
        let big = estimate(&map(MapType::Ringbuf, 0, 0, (1 << 30) + 1), 2);
        assert!(big > 1 << 31, "{big}");
    }

    #[test]
    fn bloom_filters_are_sized_as_the_kernel_sizes_their_bits() {
        assert_eq!(bloom_bytes(1024, 0), 1024);
        assert_eq!(bloom_bytes(1, 0), 8);
        assert_eq!(bloom_bytes(u32::MAX, 0), 1 << 29);
    }
}

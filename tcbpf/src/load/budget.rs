//! The sanity limit on the kernel memory an object's maps may take,
//! checked before any map is created: one flipped byte of `max_entries`
//! must be a clear error, not a minute of allocating gigabytes.
//!
//! The estimate is what the kernel may allocate for a map at its full size
//! (preallocated maps take it at creation): entries times key and value
//! rounded to 8 bytes, per-CPU values once per possible CPU, and a per
//! element overhead for hash-like maps. The limit is `max-memory BYTES`
//! ([`super::LoadOptions::max_map_memory`]), else `$TCBPF_MAX_MAP_MEMORY`,
//! else half of the machine's RAM. Maps whose pin already exists are not
//! created (they are reused) and do not count. No syscalls but reading
//! `/proc/meminfo`.

use super::{pin, Context, LoadError};
use crate::abi::MapType;
use crate::elf::{MapSpec, ObjectSpec};

/// The environment variable that sets the limit when `max-memory` is not given.
pub const ENV_MAX_MAP_MEMORY: &str = "TCBPF_MAX_MAP_MEMORY";

/// Bytes a hash-like map spends per element besides key and value (bucket
/// links, hash, lock, allocator slack), rounded up.
const HASH_ELEM_OVERHEAD: u128 = 64;

/// The kernel memory `m` may take at its full size, in bytes.
pub fn estimate(m: &MapSpec, cpus: usize) -> u128 {
    let entries = u128::from(m.max_entries);
    let key = u128::from(m.key_size).next_multiple_of(8);
    let value = u128::from(m.value_size).next_multiple_of(8);
    let per_cpu = if m.map_type.is_percpu() {
        value * cpus.max(1) as u128
    } else {
        value
    };
    let own = match m.map_type {
        MapType::Ringbuf | MapType::UserRingbuf => entries,
        MapType::Arena => entries * 4096,
        MapType::Hash
        | MapType::LruHash
        | MapType::PercpuHash
        | MapType::LruPercpuHash
        | MapType::HashOfMaps
        | MapType::Sockhash
        | MapType::DevmapHash
        | MapType::LpmTrie => entries * (key + per_cpu + HASH_ELEM_OVERHEAD),
        MapType::StackTrace => entries * (value + 16),
        MapType::SkStorage
        | MapType::InodeStorage
        | MapType::TaskStorage
        | MapType::CgrpStorage
        | MapType::CgroupStorage
        | MapType::PercpuCgroupStorage
        | MapType::StructOps => per_cpu,
        _ => entries * per_cpu,
    };
    own + m.inner.as_deref().map_or(0, |i| estimate(i, cpus))
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
    use crate::elf::MapOrigin;

    fn map(t: MapType, key: u32, value: u32, max: u32) -> MapSpec {
        let mut m = MapSpec::new("m", MapOrigin::Btf, t);
        m.key_size = key;
        m.value_size = value;
        m.max_entries = max;
        m
    }

    #[test]
    fn estimates_scale_with_entries_sizes_and_cpus() {
        assert_eq!(estimate(&map(MapType::Array, 4, 8, 10), 4), 80);
        assert_eq!(estimate(&map(MapType::PercpuArray, 4, 12, 10), 4), 640);
        assert_eq!(
            estimate(&map(MapType::Hash, 4, 8, 1 << 31), 1),
            (1u128 << 31) * 80
        );
        assert_eq!(estimate(&map(MapType::Ringbuf, 0, 0, 1 << 20), 2), 1 << 20);
    }
}

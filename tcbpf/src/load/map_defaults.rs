//! What libbpf fills in or fixes in map definitions before creating them,
//! applied the same way here: a perf event array without `max_entries`
//! gets one slot per possible CPU; a ring buffer's size is rounded up to
//! a power-of-2 multiple of the page size (`adjust_ringbuf_sz`), a size
//! of 0 or one that cannot be rounded being a clear error; map types the
//! kernel takes no BTF key/value types for are created without them. The
//! rules are each type's row of `abi::MAP_TYPES`.
//! Only `possible_cpus` reads a file.

use crate::abi::Entries;
use crate::elf::MapSpec;

/// Where the kernel lists the CPUs that may ever come online.
pub const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// The number of CPUs a list like `0-3,8-11` names (libbpf counts them).
pub fn count_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a {
            return None;
        }
        n = n.checked_add(b - a + 1)?;
    }
    (n > 0).then_some(n)
}

/// The number of possible CPUs of this machine.
pub fn possible_cpus() -> Result<u32, String> {
    let text =
        std::fs::read_to_string(POSSIBLE_CPUS).map_err(|e| format!("{POSSIBLE_CPUS}: {e}"))?;
    count_cpu_list(&text).ok_or_else(|| {
        format!(
            "{POSSIBLE_CPUS}: cannot read a CPU list in '{}'",
            text.trim()
        )
    })
}

/// libbpf's `adjust_ringbuf_sz`: `size` when it is already a power-of-2
/// multiple of `page`, else the smallest such size above it; an error for
/// 0 or when none fits in 32 bits.
pub fn ringbuf_size(size: u32, page: u32) -> Result<u32, String> {
    if size == 0 {
        return Err(format!(
            "ring buffer of size 0: set max_entries to a power-of-2 multiple of the page size ({page})"
        ));
    }
    if size % page == 0 && (size / page).is_power_of_two() {
        return Ok(size);
    }
    let mut mul: u64 = 1;
    while mul * u64::from(page) <= u64::from(u32::MAX) {
        let s = mul * u64::from(page);
        if s > u64::from(size) {
            return Ok(s as u32);
        }
        mul <<= 1;
    }
    Err(format!(
        "ring buffer of {size} bytes: no power-of-2 multiple of the page size ({page}) at or above it fits in 32 bits"
    ))
}

/// The `max_entries` a map is created with, by its type's rule
/// (`abi::Entries`): a perf event array's 0 is one per possible CPU
/// (`cpus`), a ring buffer's size is rounded up ([`ringbuf_size`]);
/// anything else as given. The loader creates maps with it and the memory
/// budget estimates them with it.
pub fn created_entries(
    rule: Entries,
    max_entries: u32,
    cpus: u32,
    page: u32,
) -> Result<u32, String> {
    match rule {
        Entries::PossibleCpus if max_entries == 0 => Ok(cpus),
        Entries::RingbufPages => ringbuf_size(max_entries, page),
        _ => Ok(max_entries),
    }
}

/// `m` with libbpf's defaults applied; notes say what changed.
pub(crate) fn apply(m: &MapSpec, notes: &mut Vec<String>) -> Result<MapSpec, String> {
    let mut m = m.clone();
    let rule = m.map_type.rules().entries;
    match rule {
        Entries::PossibleCpus if m.max_entries == 0 => {
            m.max_entries = created_entries(rule, 0, possible_cpus()?, 0)?;
            notes.push(format!(
                "map '{}': perf event array sized to the {} possible CPUs",
                m.name, m.max_entries
            ));
        }
        Entries::RingbufPages => {
            let page = crate::sys::ringbuf::page_size() as u32;
            let size = created_entries(rule, m.max_entries, 0, page)?;
            if size != m.max_entries {
                notes.push(format!(
                    "map '{}': ring buffer size {} rounded up to {size} (a power-of-2 multiple of the page size)",
                    m.name, m.max_entries
                ));
                m.max_entries = size;
            }
        }
        _ => {}
    }
    if !m.map_type.takes_btf_types() {
        m.btf_key_type_id = 0;
        m.btf_value_type_id = 0;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_as_libbpf_counts_them() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8-11"), Some(8));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn ring_buffer_sizes_round_up_to_power_of_two_pages() {
        assert_eq!(ringbuf_size(4096, 4096), Ok(4096));
        assert_eq!(ringbuf_size(65536, 4096), Ok(65536));
        assert_eq!(ringbuf_size(3 * 4096, 4096), Ok(4 * 4096));
        assert_eq!(ringbuf_size(100, 4096), Ok(4096));
        assert_eq!(ringbuf_size(4097, 4096), Ok(8192));
        assert!(ringbuf_size(0, 4096).unwrap_err().contains("size 0"));
        assert!(ringbuf_size(u32::MAX, 4096)
            .unwrap_err()
            .contains("32 bits"));
    }
}

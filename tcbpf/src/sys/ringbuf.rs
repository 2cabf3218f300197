//! Ring buffer maps from user space: the page size the kernel sizes them
//! in, and the shared mappings of a `BPF_MAP_TYPE_RINGBUF` (the consumer
//! page, read-write; the producer page and the data pages, read-only,
//! data mapped twice so a record that wraps reads as one slice).

/// The kernel's page size (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the running system; no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

//! Ring buffer maps from user space: the page size the kernel sizes them
//! in, and the shared mappings of a `BPF_MAP_TYPE_RINGBUF`: the consumer
//! page (read-write: user space advances `consumer_pos`), the producer
//! page and the data pages (read-only; the kernel maps the data twice in
//! a row, so a record that wraps reads as one slice). The positions are
//! read and written with acquire/release ordering, as the kernel pairs
//! them. The record format is the consumer's business (`events`).

use super::{Error, MapFd, Result};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The kernel's page size (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the running system; no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// One shared mapping, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: i32, len: usize, prot: i32, offset: usize, what: &str) -> Result<Mapping> {
        // SAFETY: a fresh shared mapping of a map descriptor; the kernel
        // checks length, offset and protection against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd,
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::new("mmap", io::Error::last_os_error()).on(what.to_string()));
        }
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are a mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// The mapped ring of one ring buffer map of `size` data bytes.
#[derive(Debug)]
pub struct RingMapping {
    consumer: Mapping,
    producer: Mapping,
    page: usize,
    size: usize,
}

// SAFETY: the mappings are owned by this value; positions are accessed
// atomically and the data pages are read-only.
unsafe impl Send for RingMapping {}

impl RingMapping {
    /// Maps the ring buffer `map` whose data area is `size` bytes
    /// (`max_entries`, a power-of-2 multiple of the page size).
    pub fn new(map: &MapFd, size: usize) -> Result<RingMapping> {
        let page = page_size();
        if size == 0 || size % page != 0 || !(size / page).is_power_of_two() {
            return Err(
                Error::new("mmap", io::Error::from_raw_os_error(libc::EINVAL))
                    .on(format!("ring buffer of {size} bytes")),
            );
        }
        let fd = map.as_raw_fd();
        let consumer = Mapping::new(
            fd,
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            0,
            "ring buffer consumer page",
        )?;
        let producer = Mapping::new(
            fd,
            page + 2 * size,
            libc::PROT_READ,
            page,
            "ring buffer data pages",
        )?;
        Ok(RingMapping {
            consumer,
            producer,
            page,
            size,
        })
    }

    /// Size of the data area in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    fn consumer_pos_atomic(&self) -> &AtomicU64 {
        // SAFETY: the consumer page starts with the u64 consumer_pos,
        // 8-aligned (page-aligned), alive as long as self.
        unsafe { &*(self.consumer.ptr as *const AtomicU64) }
    }

    /// `consumer_pos` (acquire).
    pub fn consumer_pos(&self) -> u64 {
        self.consumer_pos_atomic().load(Ordering::Acquire)
    }

    /// Stores `consumer_pos` (release): the records before it are free.
    pub fn set_consumer_pos(&self, pos: u64) {
        self.consumer_pos_atomic().store(pos, Ordering::Release)
    }

    /// `producer_pos` (acquire).
    pub fn producer_pos(&self) -> u64 {
        // SAFETY: the producer page starts with the u64 producer_pos,
        // page-aligned, alive as long as self.
        let p = unsafe { &*(self.producer.ptr as *const AtomicU64) };
        p.load(Ordering::Acquire)
    }

    /// The record header (length and flags, u32) at byte `off` of the
    /// data area (acquire), `off` a multiple of 8 below `size`.
    pub fn header_at(&self, off: usize) -> u32 {
        let off = off % self.size;
        // SAFETY: the data area starts one page into the producer mapping
        // and is `2 * size` bytes long; off < size and 8-aligned.
        let h = unsafe {
            &*((self.producer.ptr as *const u8).add(self.page + off) as *const AtomicU32)
        };
        h.load(Ordering::Acquire)
    }

    /// `len` bytes of the data area from byte `off` (`off < size`,
    /// `len <= size`): contiguous thanks to the double mapping.
    pub fn data(&self, off: usize, len: usize) -> &[u8] {
        let off = off % self.size;
        let len = len.min(self.size);
        // SAFETY: off + len <= 2 * size, all inside the mapping, which
        // lives as long as the borrow of self; the kernel only writes to
        // records not yet committed, which the caller does not read.
        unsafe {
            std::slice::from_raw_parts((self.producer.ptr as *const u8).add(self.page + off), len)
        }
    }
}

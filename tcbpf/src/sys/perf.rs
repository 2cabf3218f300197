//! perf events for `BPF_MAP_TYPE_PERF_EVENT_ARRAY` readers:
//! `perf_event_open` of a software `PERF_COUNT_SW_BPF_OUTPUT` event on one
//! CPU (raw samples, one wake-up per sample), its ring mapped (a header
//! page and a power-of-2 number of data pages), enabled with an ioctl,
//! and `data_head` / `data_tail` read and written with acquire/release
//! ordering. Record parsing is the consumer's business (`events`).

use super::{Error, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// `PERF_TYPE_SOFTWARE`.
const PERF_TYPE_SOFTWARE: u32 = 1;
/// `PERF_COUNT_SW_BPF_OUTPUT`.
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
/// `PERF_SAMPLE_RAW`.
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `PERF_EVENT_IOC_ENABLE`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
/// Offset of `data_head` in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
/// Offset of `data_tail`.
const DATA_TAIL: usize = 1032;

/// `struct perf_event_attr`, first version (64 bytes: PERF_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}
// `flags` is the bit-field word after read_format; 64 = PERF_ATTR_SIZE_VER0.
abi_layout!(PerfEventAttr, 64; kind @ 0, size @ 4, config @ 8, sample_period @ 16, sample_type @ 24, read_format @ 32, flags @ 40, wakeup_events @ 48, bp_type @ 52, config1 @ 56);

/// A BPF output perf event on one CPU with its mapped ring.
#[derive(Debug)]
pub struct PerfRing {
    fd: OwnedFd,
    ptr: *mut libc::c_void,
    len: usize,
    page: usize,
}

// SAFETY: the mapping is owned by this value; head/tail are accessed
// atomically and the data pages are only read.
unsafe impl Send for PerfRing {}

impl PerfRing {
    /// Opens the event on `cpu`, maps 1 + `pages` pages (`pages` a power
    /// of 2) and enables it.
    pub fn open(cpu: u32, pages: usize) -> Result<PerfRing> {
        let what = format!("cpu {cpu}");
        let attr = PerfEventAttr {
            kind: PERF_TYPE_SOFTWARE,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_SW_BPF_OUTPUT,
            sample_period: 1,
            sample_type: PERF_SAMPLE_RAW,
            wakeup_events: 1,
            ..Default::default()
        };
        // SAFETY: attr is a valid perf_event_attr of the size it states,
        // alive for the call; no other pointers.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                -1 as libc::pid_t,
                cpu as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if ret < 0 {
            return Err(Error::new("perf_event_open", io::Error::last_os_error()).on(what));
        }
        // SAFETY: ret is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(ret as i32) };
        let page = super::ringbuf::page_size();
        let len = page * (1 + pages.max(1).next_power_of_two());
        // SAFETY: a fresh shared mapping of the perf event's ring; the
        // kernel checks the length.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::new("mmap", io::Error::last_os_error()).on(what));
        }
        let ring = PerfRing { fd, ptr, len, page };
        // SAFETY: PERF_EVENT_IOC_ENABLE takes no argument pointer.
        if unsafe { libc::ioctl(ring.fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0 {
            return Err(Error::new("PERF_EVENT_IOC_ENABLE", io::Error::last_os_error()).on(what));
        }
        Ok(ring)
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> usize {
        self.len - self.page
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        // SAFETY: off is DATA_HEAD or DATA_TAIL, 8-aligned inside the
        // header page, which lives as long as self.
        unsafe { &*((self.ptr as *const u8).add(off) as *const AtomicU64) }
    }

    /// `data_head` (acquire): where the kernel will write next.
    pub fn head(&self) -> u64 {
        self.word(DATA_HEAD).load(Ordering::Acquire)
    }

    /// `data_tail`: where the reader is.
    pub fn tail(&self) -> u64 {
        self.word(DATA_TAIL).load(Ordering::Relaxed)
    }

    /// Stores `data_tail` (release): the bytes before it are free.
    pub fn set_tail(&self, tail: u64) {
        self.word(DATA_TAIL).store(tail, Ordering::Release)
    }

    /// The data area (read only; records may wrap at its end).
    pub fn data(&self) -> &[u8] {
        // SAFETY: the data area is the mapping after its first page, alive
        // as long as the borrow of self; the kernel writes only past
        // data_head, which the caller does not read.
        unsafe {
            std::slice::from_raw_parts((self.ptr as *const u8).add(self.page), self.data_size())
        }
    }
}

impl AsFd for PerfRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: ptr/len are the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

//! Read-only mappings of kernel-published files. `/sys/kernel/btf/*` can
//! be mapped (Linux 6.16+): the kernel maps its own BTF pages, so reading
//! 5+ MB of vmlinux BTF costs neither a copy nor fresh pages. Only for
//! files nothing rewrites while mapped; callers fall back to reading.

use super::{Error, Result};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// A private read-only mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub struct MappedFile {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; sharing or
// moving the pointer across threads is as safe as sharing a `&[u8]`.
unsafe impl Send for MappedFile {}
// SAFETY: as above, nothing writes through the pointer.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps the file at `path` read-only. Empty files are refused (nothing
    /// to map); so are files the kernel will not map (`EINVAL`, `ENODEV`…).
    pub fn open(path: &Path) -> Result<MappedFile> {
        let err = |e: io::Error| Error::new("mmap", e).on(path.display().to_string());
        let file = File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: a fresh private read-only mapping of an open descriptor;
        // the kernel checks the length against the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(MappedFile { ptr, len })
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr maps len readable bytes for as long as self lives,
        // and nothing writes to a private read-only mapping.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: ptr/len are the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

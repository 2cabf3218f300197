//! BTF_LOAD: upload raw BTF to the kernel, with its log on failure.

use super::fd::owned_from_ret;
use super::{bpf, cmd, ptr, BtfFd, Error};

#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    btf_log_true_size: u32,
}
// btf_log_true_size (6.4) by hand.
abi_layout!(BtfLoadAttr, 32; btf @ 0, btf_log_buf @ 8, btf_size @ 16, btf_log_size @ 20, btf_log_level @ 24, btf_log_true_size @ 28);

/// A failed BTF_LOAD with the kernel's BTF log.
#[derive(Debug)]
pub struct BtfLoadError {
    /// The syscall error.
    pub error: Error,
    /// The kernel's BTF verifier log.
    pub log: String,
}

impl std::fmt::Display for BtfLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last = super::prog::last_log_line(&self.log);
        match last {
            Some(line) => write!(f, "{}: {}", self.error, line.trim()),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for BtfLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl BtfLoadError {
    /// The class of failure, from the errno.
    pub fn kind(&self) -> crate::ErrorKind {
        self.error.kind()
    }
}

/// BTF_LOAD of raw BTF bytes (header, types, strings). On failure it is
/// retried with a log so the error says what the kernel disliked.
pub fn load(raw: &[u8]) -> Result<BtfFd, BtfLoadError> {
    match load_with_log(raw, 0) {
        Ok(fd) => Ok(fd),
        Err(_) => load_with_log(raw, 1),
    }
}

fn load_with_log(raw: &[u8], level: u32) -> Result<BtfFd, BtfLoadError> {
    let mut log = if level > 0 {
        vec![0u8; 1 << 20]
    } else {
        Vec::new()
    };
    let mut attr = BtfLoadAttr {
        btf: ptr(raw.as_ptr()),
        btf_size: raw.len() as u32,
        btf_log_buf: if log.is_empty() {
            0
        } else {
            ptr(log.as_mut_ptr())
        },
        btf_log_size: log.len() as u32,
        btf_log_level: level,
        ..Default::default()
    };
    // SAFETY: btf and btf_log_buf point at buffers of the sizes given.
    let ret = unsafe { bpf(cmd::BTF_LOAD, &mut attr) };
    ret.map(|fd| BtfFd::from_kernel(owned_from_ret(fd)))
        .map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            BtfLoadError {
                error: Error::new("BPF_BTF_LOAD", e),
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            }
        })
}

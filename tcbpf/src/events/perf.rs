//! The perf ring consumer: `struct perf_event_header` records (type, misc,
//! size) from `data_tail` to `data_head`, which may wrap at the end of the
//! data area (copied into a scratch buffer then). `PERF_RECORD_SAMPLE`
//! carries a u32 size and the raw bytes; `PERF_RECORD_LOST` an id and the
//! count of samples the kernel dropped.

use super::Record;
use crate::sys::map;
use crate::sys::perf::PerfRing;
use crate::sys::MapFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// `PERF_RECORD_LOST`.
const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
const RECORD_SAMPLE: u32 = 9;

pub(super) struct PerfReader {
    cpu: u32,
    ring: PerfRing,
    scratch: Vec<u8>,
}

/// Where the kernel lists the CPUs online now.
const ONLINE: &str = "/sys/devices/system/cpu/online";

fn online_cpus() -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(ONLINE).ok()?;
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => (part.parse().ok()?, part.parse().ok()?),
        };
        out.extend(a..=b);
    }
    Some(out)
}

/// Opens a ring on every online CPU below `slots` and stores its
/// descriptor in the array at the CPU's index.
pub(super) fn open_all(
    array: &MapFd,
    slots: u32,
    pages: usize,
) -> Result<Vec<PerfReader>, crate::sys::Error> {
    let cpus = online_cpus().unwrap_or_else(|| (0..slots).collect());
    let mut out = Vec::new();
    for cpu in cpus.into_iter().filter(|&c| c < slots) {
        let ring = PerfRing::open(cpu, pages)?;
        let fd = ring.as_fd().as_raw_fd() as u32;
        map::update(
            array,
            &cpu.to_ne_bytes(),
            &fd.to_ne_bytes(),
            map::update::ANY,
        )
        .map_err(|e| e.on(format!("perf event array slot {cpu}")))?;
        out.push(PerfReader {
            cpu,
            ring,
            scratch: Vec::new(),
        });
    }
    Ok(out)
}

impl PerfReader {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    /// Hands every record between tail and head to `f` until it returns false.
    pub(super) fn drain(&mut self, f: &mut dyn FnMut(Record<'_>) -> bool) {
        let head = self.ring.head();
        let mut tail = self.ring.tail();
        let data = self.ring.data();
        let size = data.len() as u64;
        while tail < head {
            let off = (tail % size) as usize;
            let mut hdr = [0u8; 8];
            copy_wrapped(data, off, &mut hdr);
            let kind = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let len = u16::from_ne_bytes([hdr[6], hdr[7]]) as usize;
            if len < 8 || (len as u64) > head - tail {
                // Corrupt: drop what is there rather than loop on it.
                tail = head;
                break;
            }
            let rec: &[u8] = if off + len <= data.len() {
                &data[off..off + len]
            } else {
                self.scratch.resize(len, 0);
                copy_wrapped(data, off, &mut self.scratch);
                &self.scratch
            };
            let keep_going = match kind {
                RECORD_SAMPLE if len >= 12 => {
                    let n = u32::from_ne_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
                    let n = n.min(len - 12);
                    f(Record::Sample {
                        cpu: Some(self.cpu),
                        data: &rec[12..12 + n],
                    })
                }
                RECORD_LOST if len >= 24 => {
                    let mut c = [0u8; 8];
                    c.copy_from_slice(&rec[16..24]);
                    f(Record::Lost {
                        cpu: self.cpu,
                        count: u64::from_ne_bytes(c),
                    })
                }
                _ => true,
            };
            tail += len as u64;
            if !keep_going {
                break;
            }
        }
        self.ring.set_tail(tail);
    }
}

/// Copies `out.len()` bytes from `data` at `off`, wrapping at its end.
fn copy_wrapped(data: &[u8], off: usize, out: &mut [u8]) {
    let first = (data.len() - off).min(out.len());
    out[..first].copy_from_slice(&data[off..off + first]);
    let rest = out.len() - first;
    out[first..].copy_from_slice(&data[..rest]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_copies_join_the_end_and_the_start() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut out = [0u8; 5];
        copy_wrapped(&data, 6, &mut out);
        assert_eq!(out, [7, 8, 1, 2, 3]);
        let mut out = [0u8; 2];
        copy_wrapped(&data, 2, &mut out);
        assert_eq!(out, [3, 4]);
    }
}

//! The ring buffer consumer: records are an 8-byte header (length, with
//! the BUSY bit while the producer writes it and the DISCARD bit for a
//! discarded record) then the data, padded to 8 bytes; `consumer_pos` is
//! advanced past each one, as libbpf's `ringbuf_process_ring` does.

use super::Record;
use crate::sys::ringbuf::RingMapping;
use crate::sys::MapFd;

/// `BPF_RINGBUF_BUSY_BIT`.
const BUSY: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`.
const DISCARD: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
const HDR: usize = 8;

pub(super) struct RingReader {
    ring: RingMapping,
    /// Largest record seen (with header), to tell a full ring.
    largest: u64,
    /// True while the ring is reported full (reported once per episode).
    full: bool,
}

impl RingReader {
    pub(super) fn new(map: &MapFd, size: usize) -> Result<RingReader, crate::sys::Error> {
        Ok(RingReader {
            ring: RingMapping::new(map, size)?,
            largest: HDR as u64,
            full: false,
        })
    }

    /// Hands every committed record to `f` until it returns false.
    pub(super) fn drain(&mut self, f: &mut dyn FnMut(Record<'_>) -> bool) {
        let size = self.ring.size() as u64;
        let mut cons = self.ring.consumer_pos();
        let pending = self.ring.producer_pos().saturating_sub(cons);
        if pending < size / 2 {
            self.full = false;
        }
        // Full: the next record (as large as the largest seen, this one
        // included) would not have fit when the ring was looked at.
        let mut checked = false;
        loop {
            let prod = self.ring.producer_pos();
            let mut progressed = false;
            while cons < prod {
                let off = (cons % size) as usize;
                let hdr = self.ring.header_at(off);
                if hdr & BUSY != 0 {
                    return;
                }
                let len = (hdr & !(BUSY | DISCARD)) as usize;
                let total = (len + HDR).div_ceil(8) * 8;
                self.largest = self.largest.max(total as u64);
                if !std::mem::replace(&mut checked, true)
                    && pending + self.largest > size
                    && !std::mem::replace(&mut self.full, true)
                    && !f(Record::RingFull { pending })
                {
                    return;
                }
                let keep_going = if hdr & DISCARD == 0 {
                    f(Record::Sample {
                        cpu: None,
                        data: self.ring.data(off + HDR, len),
                    })
                } else {
                    true
                };
                cons += total as u64;
                self.ring.set_consumer_pos(cons);
                progressed = true;
                if !keep_going {
                    return;
                }
            }
            if !progressed {
                return;
            }
        }
    }
}

//! Rate limiting of the importer's "dropped a datagram" warnings: a
//! hostile local user can send refused datagrams as fast as the kernel
//! takes them, and one warning line each would flood (or, on a pipe nobody
//! reads, block) the importer. The first few are reported in full, then one
//! summary line per interval with the count and the last sender.
//!
//! Pure bookkeeping: the caller passes the time and prints the lines.

use super::receive::Dropped;
use std::time::{Duration, Instant};

/// How many drops are reported one by one.
pub const FULL_WARNINGS: u32 = 5;
/// How often, at most, a summary line follows.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Counts dropped datagrams and says which deserve a line.
#[derive(Debug, Default)]
pub struct DropWarnings {
    total: u64,
    unreported: u64,
    last: Option<Dropped>,
    last_line: Option<Instant>,
}

impl DropWarnings {
    /// A fresh counter.
    pub fn new() -> DropWarnings {
        DropWarnings::default()
    }

    /// Notes one drop at `now`: the line to print, if any.
    pub fn note(&mut self, dropped: &Dropped, now: Instant) -> Option<String> {
        self.total += 1;
        if self.total <= u64::from(FULL_WARNINGS) {
            self.last_line = Some(now);
            let more = if self.total == u64::from(FULL_WARNINGS) {
                " (further drops are counted and summarised)"
            } else {
                ""
            };
            return Some(format!("{dropped}{more}"));
        }
        self.unreported += 1;
        self.last = Some(dropped.clone());
        let due = self.last_line.map_or(true, |t| {
            now.saturating_duration_since(t) >= SUMMARY_INTERVAL
        });
        if due {
            self.last_line = Some(now);
            return self.summary();
        }
        None
    }

    /// The summary of drops not reported yet (None when there are none);
    /// counts them as reported.
    pub fn summary(&mut self) -> Option<String> {
        if self.unreported == 0 {
            return None;
        }
        let last = match self.last.as_ref().and_then(|d| d.creds) {
            Some(c) => format!("uid {} (pid {})", c.uid, c.pid),
            None => "a sender without credentials".to_string(),
        };
        let line = format!(
            "dropped {} more datagram(s) from senders that are not allowed ({} in all; the last from {last})",
            self.unreported, self.total
        );
        self.unreported = 0;
        Some(line)
    }

    /// Every drop so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scm::Credentials;

    fn drop_from(uid: u32) -> Dropped {
        Dropped {
            creds: Some(Credentials {
                pid: 9,
                uid,
                gid: uid,
            }),
            fds: 0,
        }
    }

    #[test]
    fn first_drops_in_full_then_one_summary_per_interval() {
        let mut w = DropWarnings::new();
        let t0 = Instant::now();
        let lines: Vec<String> = (0..1000)
            .filter_map(|i| w.note(&drop_from(1000 + i), t0 + Duration::from_millis(i as u64)))
            .collect();
        assert_eq!(lines.len(), FULL_WARNINGS as usize, "{lines:?}");
        assert!(lines[0].contains("uid 1000"));
        assert!(lines[4].contains("summarised"));
        let later = w.note(
            &drop_from(7),
            t0 + SUMMARY_INTERVAL + Duration::from_secs(1),
        );
        let later = later.expect("a summary after the interval");
        assert!(
            later.contains("dropped 996 more") && later.contains("1001 in all"),
            "{later}"
        );
        assert!(later.contains("uid 7"), "{later}");
        assert_eq!(w.summary(), None, "nothing left to report");
        assert_eq!(w.total(), 1001);
    }
}

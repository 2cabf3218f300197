//! The keeper's log, rate-limited by kind: at most [`LOG_BURST`] lines of
//! one kind per [`LOG_INTERVAL`], then one line saying how many were left
//! out, so that a hostile client cannot fill the disk or the journal
//! through the keeper. Pure: times come in, decisions and summary lines
//! go out; the server writes them.

use std::time::{Duration, Instant};

/// The window of the rate limit.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Lines of one kind logged per [`LOG_INTERVAL`] at most.
pub const LOG_BURST: u32 = 20;

/// The kinds of line limited one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// accept(2) failed (the open-files limit, mostly).
    Accept = 0,
    /// A connection was answered "busy".
    Connection = 1,
    /// A request was refused.
    Request = 2,
    /// A client was dropped (does not read, went away).
    Dropped = 3,
}

impl LogKind {
    const ALL: [LogKind; 4] = [
        LogKind::Accept,
        LogKind::Connection,
        LogKind::Request,
        LogKind::Dropped,
    ];

    fn what(self) -> &'static str {
        match self {
            LogKind::Accept => "accept",
            LogKind::Connection => "refused-connection",
            LogKind::Request => "refused-request",
            LogKind::Dropped => "dropped-client",
        }
    }
}

/// One kind's window: lines in it so far, and how many were left out.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    lines: u32,
    suppressed: u64,
}

/// The rate limit of every kind.
#[derive(Debug, Clone)]
pub struct RateLog {
    windows: [Window; 4],
}

impl RateLog {
    /// Fresh windows starting at `now`.
    pub fn new(now: Instant) -> RateLog {
        RateLog {
            windows: [Window {
                start: now,
                lines: 0,
                suppressed: 0,
            }; 4],
        }
    }

    /// True when a line of `kind` may be written now (else it is counted
    /// as suppressed). Call [`RateLog::roll`] first.
    pub fn allow(&mut self, kind: LogKind) -> bool {
        let w = &mut self.windows[kind as usize];
        if w.lines < LOG_BURST {
            w.lines += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// Starts a new window for each kind whose window has passed at `now`
    /// (for every kind when `all`, at the end); returns a line for each
    /// that left lines out.
    pub fn roll(&mut self, now: Instant, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        for kind in LogKind::ALL {
            let w = &mut self.windows[kind as usize];
            let age = now.saturating_duration_since(w.start);
            if !all && age < LOG_INTERVAL {
                continue;
            }
            if w.suppressed > 0 {
                out.push(format!(
                    "{} more {} line(s) suppressed in the last {} s",
                    w.suppressed,
                    kind.what(),
                    age.as_secs()
                ));
            }
            *w = Window {
                start: now,
                lines: 0,
                suppressed: 0,
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_kind_and_window_then_one_summary_line() {
        let t0 = Instant::now();
        let mut r = RateLog::new(t0);
        let allowed = (0..1000).filter(|_| r.allow(LogKind::Accept)).count();
        assert_eq!(allowed, LOG_BURST as usize);
        // Other kinds have their own share.
        assert!(r.allow(LogKind::Request));
        assert!(r.roll(t0 + Duration::from_secs(1), false).is_empty());
        let lines = r.roll(t0 + LOG_INTERVAL, false);
        assert_eq!(
            lines,
            ["980 more accept line(s) suppressed in the last 10 s"]
        );
        assert!(r.allow(LogKind::Accept), "a new window");
        for _ in 0..=LOG_BURST {
            r.allow(LogKind::Dropped);
        }
        assert_eq!(
            r.roll(t0 + LOG_INTERVAL + Duration::from_secs(2), true),
            ["1 more dropped-client line(s) suppressed in the last 2 s"]
        );
    }
}

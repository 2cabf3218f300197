//! Reading the event streams eBPF programs write, from user space: a ring
//! buffer map (`BPF_MAP_TYPE_RINGBUF`: one shared ring, records committed
//! in order) or a perf event array (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`: one
//! perf ring per CPU, whose descriptor is stored in the array at the
//! CPU's index). [`EventReader`] sleeps in epoll until the kernel has
//! records (it never spins), hands each record to a callback, reports lost
//! samples (perf) and a ring buffer found full, and wakes for SIGINT,
//! SIGTERM and a closed output pipe when asked to watch them. Its
//! [`EventReader::write_output`] writes the caller's lines without ever
//! blocking past those signals: a reader whose output pipe is full still
//! stops on SIGTERM.
//!
//! The record formats are parsed here; every syscall and mapping is in
//! `sys::{ringbuf, perf, epoll}`. No printing: the caller formats.

mod perf;
mod ring;

use crate::abi::MapType;
use crate::sys::epoll::{self, Epoll};
use crate::sys::file;
use crate::sys::info::MapInfo;
use crate::sys::signal::{StopSignals, INT_TERM};
use crate::sys::MapFd;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Default number of data pages per CPU for perf rings (as bpftool's
/// `map event_pipe`).
pub const DEFAULT_PERF_PAGES: usize = 16;

/// What a reader hands to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// One event: its bytes, and the CPU it came from (perf only).
    Sample {
        /// The CPU whose perf ring it came from; `None` for a ring buffer.
        cpu: Option<u32>,
        /// The record's bytes (perf: as the kernel padded them, to 8 bytes
        /// with the size word).
        data: &'a [u8],
    },
    /// The kernel dropped `count` samples of CPU `cpu` (its ring was full).
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many.
        count: u64,
    },
    /// The ring buffer was found full: the program's next records may be
    /// refused (`bpf_ringbuf_output` fails) until it drains.
    RingFull {
        /// Bytes waiting to be read when it was seen.
        pending: u64,
    },
}

/// Why `EventReader::poll` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Records were handed over (or the callback asked to stop).
    Records,
    /// The time given ran out with nothing to read.
    Timeout,
    /// SIGINT or SIGTERM arrived (with `watch_stop_signals`).
    Signal(u32),
    /// The watched output's reader went away (with `watch_output`).
    OutputClosed,
}

/// Why a reader could not be set up or read.
#[derive(Debug)]
pub enum Error {
    /// The map is neither a ring buffer nor a perf event array.
    NotAStream(String),
    /// A system call failed.
    Sys(crate::sys::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAStream(t) => write!(
                f,
                "a {t} map holds no event stream (events reads ringbuf and perf_event_array maps)"
            ),
            Error::Sys(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotAStream(_) => None,
            Error::Sys(e) => Some(e),
        }
    }
}

impl Error {
    /// The class of failure: bad input for a map that holds no stream, the
    /// system call's errno class otherwise.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Error::NotAStream(_) => crate::ErrorKind::BadInput,
            Error::Sys(e) => e.kind(),
        }
    }
}

impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Self {
        Error::Sys(e)
    }
}

enum Source {
    Ring(ring::RingReader),
    Perf(Vec<perf::PerfReader>),
}

const TOKEN_RING: u64 = u64::MAX - 1;
const TOKEN_SIGNAL: u64 = u64::MAX - 2;
const TOKEN_OUTPUT: u64 = u64::MAX - 3;

/// A reader of one ring buffer or perf event array.
pub struct EventReader {
    source: Source,
    epoll: Epoll,
    signals: Option<StopSignals>,
    /// Waits for room in the output or a stop signal (made on first need).
    output_wait: Option<OutputWait>,
}

/// An epoll set of the output (writable) and the stop signals.
enum OutputWait {
    Watched(Epoll),
    /// The output cannot be polled (a regular file): it never stays full.
    Unwatchable,
}

/// What the wait for room in the output ended with.
enum Room {
    Ready,
    Stop(Wake),
    Unwatchable,
}

/// Largest write that a pipe with any room takes whole (`PIPE_BUF`).
const PIPE_BUF: usize = 4096;

impl fmt::Debug for EventReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.source {
            Source::Ring(_) => "ringbuf".to_string(),
            Source::Perf(p) => format!("perf_event_array ({} CPUs)", p.len()),
        };
        f.debug_struct("EventReader")
            .field("source", &kind)
            .finish()
    }
}

impl EventReader {
    /// Sets up reading `map` (described by `info`): maps the ring buffer,
    /// or opens a perf ring of `perf_pages` data pages on each CPU the
    /// array has a slot for and stores its descriptor there (replacing
    /// whatever reader was there, as `bpftool map event_pipe` does).
    pub fn open(map: &MapFd, info: &MapInfo, perf_pages: usize) -> Result<EventReader, Error> {
        let epoll = Epoll::new()?;
        let source = match info.kind() {
            Some(MapType::Ringbuf) => {
                let r = ring::RingReader::new(map, info.max_entries as usize)?;
                epoll.add(map.as_fd(), epoll::IN, TOKEN_RING)?;
                Source::Ring(r)
            }
            Some(MapType::PerfEventArray) => {
                let readers = perf::open_all(map, info.max_entries, perf_pages)?;
                for (i, r) in readers.iter().enumerate() {
                    epoll.add(r.fd(), epoll::IN, i as u64)?;
                }
                Source::Perf(readers)
            }
            _ => return Err(Error::NotAStream(info.type_name())),
        };
        Ok(EventReader {
            source,
            epoll,
            signals: None,
            output_wait: None,
        })
    }

    /// Makes SIGINT and SIGTERM wake `poll` (returning `Wake::Signal`)
    /// instead of ending the process. Blocks them in the calling thread
    /// (threads it starts later inherit that) while the reader lives.
    pub fn watch_stop_signals(&mut self) -> Result<(), Error> {
        let s = StopSignals::new(&INT_TERM)
            .map_err(|e| crate::sys::Error::new("signalfd", e).on("SIGINT/SIGTERM"))?;
        self.epoll.add(s.fd(), epoll::IN, TOKEN_SIGNAL)?;
        self.signals = Some(s);
        Ok(())
    }

    /// Makes a broken `output` (a pipe whose reader closed) wake `poll`
    /// (returning `Wake::OutputClosed`). Outputs epoll cannot watch
    /// (files, /dev/null) are ignored: they never close under us.
    pub fn watch_output(&mut self, output: BorrowedFd<'_>) {
        let _ = self.epoll.add(output, 0, TOKEN_OUTPUT);
    }

    /// Writes all of `bytes` to `output`, waiting for room in it only
    /// while no stop signal (with `watch_stop_signals`) has come: returns
    /// `Some(Wake::Signal)` as soon as one does, with the rest unwritten,
    /// and `Some(Wake::OutputClosed)` when the reader of a pipe went away.
    /// Its descriptor's flags are left as they are (no `O_NONBLOCK` on a
    /// pipe shared with other processes).
    pub fn write_output(
        &mut self,
        output: BorrowedFd<'_>,
        mut bytes: &[u8],
    ) -> Result<Option<Wake>, Error> {
        let fail = |e: std::io::Error| Error::Sys(crate::sys::Error::new("write", e).on("output"));
        while !bytes.is_empty() {
            let written = match file::write_nowait(output, bytes) {
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    // No non-blocking write for this file (a terminal):
                    // wait for room, then write at most what room means.
                    match self.wait_for_room(output)? {
                        Room::Stop(w) => return Ok(Some(w)),
                        Room::Ready => {
                            let n = bytes.len().min(PIPE_BUF);
                            file::write(output, &bytes[..n])
                        }
                        Room::Unwatchable => file::write(output, bytes),
                    }
                }
                other => other,
            };
            match written {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    match self.wait_for_room(output)? {
                        Room::Stop(w) => return Ok(Some(w)),
                        Room::Ready => {}
                        // A file on a busy disk: write the rest waiting.
                        Room::Unwatchable => {
                            let n = file::write(output, bytes).map_err(fail)?;
                            bytes = &bytes[n..];
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    return Ok(Some(Wake::OutputClosed))
                }
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(None)
    }

    /// Sleeps until `output` has room, a stop signal comes or the output
    /// closes.
    fn wait_for_room(&mut self, output: BorrowedFd<'_>) -> Result<Room, Error> {
        if self.output_wait.is_none() {
            let ep = Epoll::new()?;
            let watched = ep.add(output, epoll::OUT, TOKEN_OUTPUT).is_ok();
            if let Some(s) = &self.signals {
                ep.add(s.fd(), epoll::IN, TOKEN_SIGNAL)?;
            }
            self.output_wait = Some(if watched {
                OutputWait::Watched(ep)
            } else {
                OutputWait::Unwatchable
            });
        }
        let Some(OutputWait::Watched(ep)) = &self.output_wait else {
            return Ok(Room::Unwatchable);
        };
        loop {
            for (token, events) in ep.wait(-1, 2)? {
                match token {
                    TOKEN_SIGNAL => {
                        if let Some(sig) = self.signals.as_ref().and_then(|s| s.take()) {
                            return Ok(Room::Stop(Wake::Signal(sig as u32)));
                        }
                    }
                    _ if events & (epoll::ERR | epoll::HUP) != 0 => {
                        return Ok(Room::Stop(Wake::OutputClosed))
                    }
                    _ => return Ok(Room::Ready),
                }
            }
        }
    }

    /// Number of CPUs read (perf), or 1 (ring buffer).
    pub fn rings(&self) -> usize {
        match &self.source {
            Source::Ring(_) => 1,
            Source::Perf(p) => p.len(),
        }
    }

    /// Waits until records arrive (at most `timeout`; `None` forever),
    /// then hands every record available to `f` until it returns false.
    /// Records not handed over stay for the next call.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(Record<'_>) -> bool,
    ) -> Result<Wake, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    // Round up so a short wait does not become a busy loop.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let ready = self.epoll.wait(ms, 64)?;
            let mut records = false;
            for &(token, events) in &ready {
                match token {
                    TOKEN_SIGNAL => {
                        if let Some(sig) = self.signals.as_ref().and_then(|s| s.take()) {
                            return Ok(Wake::Signal(sig as u32));
                        }
                    }
                    TOKEN_OUTPUT if events & (epoll::ERR | epoll::HUP) != 0 => {
                        return Ok(Wake::OutputClosed)
                    }
                    _ => records = true,
                }
            }
            if records {
                let mut go = true;
                match &mut self.source {
                    Source::Ring(r) => r.drain(&mut |rec| {
                        go = f(rec);
                        go
                    }),
                    Source::Perf(readers) => {
                        for &(token, _) in &ready {
                            if let Some(r) = readers.get_mut(token as usize) {
                                if !go {
                                    break;
                                }
                                r.drain(&mut |rec| {
                                    go = f(rec);
                                    go
                                });
                            }
                        }
                    }
                }
                return Ok(Wake::Records);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Wake::Timeout);
            }
        }
    }
}

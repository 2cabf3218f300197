//! `tcbpf dump`: every packet a tc program handles and the verdict it gave,
//! as tcpdump-style lines, JSON or pcapng. The `tcbpf-dump` binary is a thin
//! `main` over this crate; the crate is a library too so its tests can run
//! the read loop on records the kernel wrote.
//!
//! The kernel side (fentry/fexit programs per traced program, the
//! in-kernel filter, the ring buffer) is `tcbpf::trace`; here are the
//! grammar ([`args`]), the pcap compile ([`filter`]), the output formats
//! ([`decode`], [`pcapng`], [`output`]) and the read loop ([`read_loop`]).
#![forbid(unsafe_code)] // unsafe lives in the library's `sys`, behind safe calls

pub mod args;
pub mod decode;
pub mod filter;
pub mod output;
pub mod pcapng;

use args::{Args, Fail, ProgSel};
use output::Sink;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use tcbpf::attach::discover::Hook;
use tcbpf::events::{EventReader, Record, Wake};
use tcbpf::sys::{self, info, MapFd};
use tcbpf::tc::Socket;
use tcbpf::trace::{self, Counts, Event, Target};

/// Most records written between two looks at signals and the output.
const BATCH: usize = 1024;
/// Longest time spent writing records between two such looks.
const BATCH_TIME: Duration = Duration::from_millis(50);

/// The tracing object, compiled from `bpf/dump.c`.
pub const DUMP_OBJECT: &[u8] = include_bytes!("../../bpf/dump.o");

/// The programs to trace: the one `prog`/`pinned` names, or every program
/// on the device's hooks in run order.
pub fn select_targets(
    sock: &Socket,
    a: &Args,
    ifindex: u32,
) -> Result<Vec<(Target, sys::ProgFd)>, Fail> {
    let on_device = match &a.dev {
        Some(_) => trace::targets_on(sock, ifindex, &a.directions)
            .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?,
        None => Vec::new(),
    };
    let Some(sel) = &a.prog else {
        let found: Vec<_> = on_device
            .into_iter()
            .filter_map(|(mut t, fd)| {
                if a.tcx_only {
                    t.places.retain(|p| matches!(p.hook, Hook::Tcx { .. }));
                    if t.places.is_empty() {
                        return None;
                    }
                }
                Some((t, fd))
            })
            .collect();
        if found.is_empty() {
            let dirs: Vec<String> = a.directions.iter().map(|d| d.to_string()).collect();
            return Err(Fail::not_found(format!(
                "no {}program on {} {}",
                if a.tcx_only { "tcx " } else { "tc " },
                a.dev.as_deref().unwrap_or("?"),
                dirs.join(" or ")
            )));
        }
        return Ok(found);
    };
    let fd = match sel {
        ProgSel::Id(id) => sys::obj::prog_by_id(*id),
        ProgSel::Pinned(path) => sys::obj::get_pinned_prog(path),
    }
    .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let info = info::prog_info(&fd).map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let known = on_device.into_iter().find(|(t, _)| t.info.id == info.id);
    let (places, classid_verdict) = known
        .map(|(t, _)| (t.places, t.classid_verdict))
        .unwrap_or_default();
    Ok(vec![(
        Target {
            info,
            places,
            classid_verdict,
        },
        fd,
    )])
}

/// Reads records from `ring` (written by the tracing programs of
/// `targets`, indexed by the record's `target`) into the output `a` asks
/// for, until `count` records, SIGINT, SIGTERM or a closed output.
pub fn read_loop(a: &Args, sock: &Socket, ring: &MapFd, targets: &[Target]) -> Result<(), Fail> {
    read_loop_into(a, sock, ring, targets, || Sink::open(a, targets))
}

/// [`read_loop`] into the sink `open` makes once the ring is open (a test
/// writes `-j`'s lines to a file: `Sink::Json(Out::File(…))`).
pub fn read_loop_into(
    a: &Args,
    sock: &Socket,
    ring: &MapFd,
    targets: &[Target],
    open: impl FnOnce() -> std::io::Result<Sink>,
) -> Result<(), Fail> {
    let ring_info = info::map_info(ring).map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let mut reader = EventReader::open(ring, &ring_info, 0)
        .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    reader
        .watch_stop_signals()
        .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
    let mut sink = open().map_err(Fail::io)?;
    let stdout = std::io::stdout();
    if sink.on_stdout() {
        reader.watch_output(stdout.as_fd());
    }
    let (mono, real) = sys::frontend::monotonic_and_realtime_ns();
    let clock = real.wrapping_sub(mono);
    let mut names = output::IfNames::new(sock);
    let mut written: u64 = 0;
    let mut ring_full = false;
    loop {
        let mut err = None;
        // The ring never runs dry under a flood faster than the output: a
        // batch ends after BATCH records or BATCH_TIME so that signals and
        // a closed output are seen between batches.
        let batch_start = Instant::now();
        let mut batch = 0usize;
        let wake = reader
            .poll(Some(Duration::from_secs(1)), |rec| match rec {
                Record::Sample { data, .. } => {
                    let Some(e) = Event::parse(data) else {
                        return true;
                    };
                    let Some(t) = targets.get(e.target as usize) else {
                        return true;
                    };
                    let time_ns = clock.wrapping_add(e.ktime_ns);
                    if let Err(x) = sink.write(&e, t, time_ns, &mut names) {
                        err = Some(x);
                        return false;
                    }
                    written += 1;
                    batch += 1;
                    a.count.map_or(true, |n| written < n)
                        && batch < BATCH
                        && batch_start.elapsed() < BATCH_TIME
                }
                Record::RingFull { .. } => {
                    if !ring_full {
                        ring_full = true;
                        eprintln!(
                            "tcbpf dump: the ring buffer is full: records are being lost \
                             (counted; a larger 'buffer' or a 'filter' helps)"
                        );
                    }
                    true
                }
                Record::Lost { .. } => true,
            })
            .map_err(|e| Fail::from_kind(e.kind(), e.to_string()))?;
        if let Some(e) = err {
            return closed_or(e);
        }
        if let Err(e) = sink.flush() {
            return closed_or(e);
        }
        if a.count.is_some_and(|n| written >= n) {
            return Ok(());
        }
        match wake {
            Wake::Signal(_) | Wake::OutputClosed => return Ok(()),
            Wake::Records | Wake::Timeout => {}
        }
    }
}

/// A reader that went away ends the dump cleanly; other write errors fail it.
fn closed_or(e: std::io::Error) -> Result<(), Fail> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Fail::io(e))
    }
}

/// The kernel's counts of `targets`, on stderr: what was written and
/// what was lost.
pub fn report(targets: &[Target], counts: &[Counts]) {
    let sum = counts.iter().fold(Counts::default(), |mut s, c| {
        s.seen += c.seen;
        s.filtered += c.filtered;
        s.skipped += c.skipped;
        s.written += c.written;
        s.lost += c.lost;
        s
    });
    eprintln!(
        "tcbpf dump: {} records written, {} lost (ring buffer full); {} packets seen, {} refused by the filter, {} with another verdict",
        sum.written, sum.lost, sum.seen, sum.filtered, sum.skipped
    );
    if counts.len() > 1 {
        for (t, c) in targets.iter().zip(counts) {
            eprintln!(
                "  prog {} {}: {} written, {} lost, {} seen, {} filtered, {} other verdict",
                t.info.id, t.info.name, c.written, c.lost, c.seen, c.filtered, c.skipped
            );
        }
    }
}

//! An open map: its descriptor, what the kernel says about it (info,
//! element sizes, BTF key/value types read on first use) and the one
//! streaming walk over its entries that every reader uses (`map dump`, the
//! exporter's scrapes, `map watch`, [`crate::maps::read_all`]):
//!
//! - small maps: LOOKUP_BATCH on the calling thread;
//! - large maps: a walker thread fills chunks while the caller handles the
//!   previous ones (the batch token stays opaque: one walk, in the kernel's
//!   order);
//! - map types without batch support: GET_NEXT_KEY + LOOKUP per element.
//!
//! A hash bucket holding more entries than a chunk makes the kernel say
//! ENOSPC: the chunk grows and the same step is retried. Nothing here
//! formats or writes output, nor writes to the map.

use super::mapref::MapRef;
use super::words::{Error, Words};
use crate::abi::MapType;
use crate::sys::{self, info::MapInfo, map as sysmap, map::ElemSizes, MapFd};
use crate::value::typed::MapTypes;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{mpsc, OnceLock};

/// An opened map with what the kernel says about it.
#[derive(Debug)]
pub struct Map {
    /// The descriptor.
    pub fd: MapFd,
    /// Kernel info (sizes, type, name, id).
    pub info: MapInfo,
    /// The map type, when tcbpf knows it.
    pub kind: Option<MapType>,
    /// Element sizes as user space sees them (per-CPU aware).
    pub sizes: ElemSizes,
    /// How the command line named it, for messages (`pinned /sys/fs/bpf/x`).
    pub label: String,
    /// The map's BTF types, read on first use (`None`: it has none, or
    /// the kernel would not give them).
    pub btf: OnceLock<Option<MapTypes>>,
}

impl Map {
    /// Parses MAP words and opens the map read-write.
    pub fn parse(w: &mut Words) -> Result<Map, Error> {
        let r = MapRef::parse(w)?;
        Map::open(&r, sys::obj::open::RDWR)
    }

    /// Parses MAP words and opens the map for reading only (`id`, `pinned`
    /// and `name` ask for a read-only descriptor, which is all a pin's file
    /// mode may allow; held descriptors are used as they are).
    pub fn parse_read(w: &mut Words) -> Result<Map, Error> {
        let r = MapRef::parse(w)?;
        Map::open(&r, sys::obj::open::RDONLY)
    }

    /// Opens `r` with `open_flags` (`sys::obj::open::*`) and reads its info.
    pub fn open(r: &MapRef, open_flags: u32) -> Result<Map, Error> {
        let label = r.to_string();
        let fd = r.open_with(open_flags).map_err(|e| e.context(&label))?;
        Map::from_fd(fd, label)
    }

    /// A map held as `fd`, named `label` in messages.
    pub fn from_fd(fd: MapFd, label: String) -> Result<Map, Error> {
        let info = sys::info::map_info(&fd).map_err(|e| {
            let e = e.on(label.clone());
            Error::caused(e.kind(), e.to_string(), e)
        })?;
        let kind = info.kind();
        let sizes = ElemSizes::from_info(&info, kind.is_some_and(MapType::is_percpu))
            .map_err(|e| Error::caused(e.kind(), format!("{label}: {e}"), e))?;
        Ok(Map {
            fd,
            info,
            kind,
            sizes,
            label,
            btf: OnceLock::new(),
        })
    }

    /// True for per-CPU maps.
    pub fn is_percpu(&self) -> bool {
        self.kind.is_some_and(MapType::is_percpu)
    }

    /// True for queue and stack maps.
    pub fn is_queue_or_stack(&self) -> bool {
        self.kind.is_some_and(MapType::is_queue_or_stack)
    }

    /// A sys error on this map, named as the command line named the map.
    pub fn err(&self, e: sys::Error) -> sys::Error {
        e.on(self.label.clone())
    }

    /// Calls `f(keys, values, n)` for every chunk of the map's entries, `n`
    /// elements packed at the map's element sizes (see the module doc for
    /// how). A kernel error is named by the map's label.
    pub fn for_each_batch<E: From<sys::Error>>(
        &self,
        f: impl FnMut(&[u8], &[u8], usize) -> Result<(), E>,
    ) -> Result<(), E> {
        for_each_batch(
            self.fd.as_fd(),
            &self.sizes,
            self.info.max_entries,
            &self.label,
            f,
        )
    }
}

/// Bytes of keys and values asked for per LOOKUP_BATCH call.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks the walker may have filled ahead of the caller, so a caller
/// that is briefly off the CPU does not stop the walk.
const AHEAD: usize = 4;
/// Maps at least this large are walked by a second thread.
const PIPELINE_MIN: usize = 1 << 14;

/// How a walk ended: `Err((any_read, error))` on a kernel error, so the
/// per-element walk can take over when nothing was read.
type Walked = Result<(), (bool, sys::Error)>;

/// [`Map::for_each_batch`] on a descriptor: `sizes` and `max_entries` as
/// the kernel gave them, `label` names the map in errors (empty: the
/// error as the kernel said it).
pub fn for_each_batch<E: From<sys::Error>>(
    fd: BorrowedFd<'_>,
    sizes: &ElemSizes,
    max_entries: u32,
    label: &str,
    mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), E>,
) -> Result<(), E> {
    let named = |e: sys::Error| {
        if label.is_empty() {
            E::from(e)
        } else {
            E::from(e.on(label.to_string()))
        }
    };
    let (ks, vs) = (sizes.key(), sizes.value());
    let max = max_entries as usize;
    let count = (BATCH_BYTES / (ks + vs).max(1))
        .clamp(64, 1 << 15)
        .min(max.max(1));
    let walk = Walk { fd, sizes };
    let walked = if max < PIPELINE_MIN {
        walk.on_this_thread(count, &mut f)?
    } else {
        walk.pipelined(count, &mut f)?
    };
    match walked {
        Ok(()) => Ok(()),
        Err((false, e)) if sysmap::is_unsupported(&e) => walk.by_element(f, named),
        Err((_, e)) => Err(named(e)),
    }
}

/// Buffers for one LOOKUP_BATCH call.
struct Chunk {
    keys: Vec<u8>,
    values: Vec<u8>,
    n: usize,
}

/// One walk's descriptor and sizes.
#[derive(Clone, Copy)]
struct Walk<'a> {
    fd: BorrowedFd<'a>,
    sizes: &'a ElemSizes,
}

impl Walk<'_> {
    fn chunk(&self, count: usize) -> Chunk {
        Chunk {
            keys: vec![0; count * self.sizes.key()],
            values: vec![0; count * self.sizes.value()],
            n: 0,
        }
    }

    /// The next elements of the walk into `c`; grows on ENOSPC and
    /// retries the step.
    fn fill(&self, c: &mut Chunk, cursor: &mut sysmap::BatchCursor) -> Result<usize, sys::Error> {
        loop {
            match sysmap::lookup_batch(self.fd, self.sizes, cursor, &mut c.keys, &mut c.values) {
                Ok(n) => {
                    c.n = n;
                    return Ok(n);
                }
                Err(e) if e.errno() == Some(libc::ENOSPC) => {
                    let grown = c.keys.len().max(1) * 2;
                    c.keys.resize(grown, 0);
                    let grown = c.values.len().max(1) * 2;
                    c.values.resize(grown, 0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn on_this_thread<E>(
        &self,
        count: usize,
        f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), E>,
    ) -> Result<Walked, E> {
        let mut chunk = self.chunk(count);
        let mut cursor = sysmap::BatchCursor::new(self.sizes);
        let mut any = false;
        while !cursor.is_done() {
            match self.fill(&mut chunk, &mut cursor) {
                Ok(n) => {
                    any |= n > 0;
                    f(&chunk.keys, &chunk.values, n)?;
                }
                Err(e) => return Ok(Err((any, e))),
            }
        }
        Ok(Ok(()))
    }

    /// One walker thread handing filled chunks over and getting them back.
    fn pipelined<E>(
        &self,
        count: usize,
        f: &mut impl FnMut(&[u8], &[u8], usize) -> Result<(), E>,
    ) -> Result<Walked, E> {
        let walk = *self;
        std::thread::scope(|scope| {
            let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(AHEAD);
            let (free_tx, free_rx) = mpsc::channel::<Chunk>();
            for _ in 0..AHEAD {
                let _ = free_tx.send(walk.chunk(count));
            }
            let walker = scope.spawn(move || {
                let mut cursor = sysmap::BatchCursor::new(walk.sizes);
                let mut any = false;
                while !cursor.is_done() {
                    // The consumer hung up (its own error): stop quietly.
                    let Ok(mut chunk) = free_rx.recv() else {
                        return Ok(());
                    };
                    match walk.fill(&mut chunk, &mut cursor) {
                        Ok(0) => {}
                        Ok(_) => {
                            any = true;
                            if full_tx.send(chunk).is_err() {
                                return Ok(());
                            }
                        }
                        Err(e) => return Err((any, e)),
                    }
                }
                Ok(())
            });
            let consumed = (|| {
                for chunk in full_rx {
                    f(&chunk.keys, &chunk.values, chunk.n)?;
                    let _ = free_tx.send(chunk);
                }
                Ok(())
            })();
            drop(free_tx);
            let walked = match walker.join() {
                Ok(w) => w,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            consumed.map(|()| walked)
        })
    }

    /// The per-element walk: GET_NEXT_KEY then LOOKUP, in chunks for `f`.
    /// Entries deleted between the two calls are skipped.
    fn by_element<E>(
        &self,
        mut f: impl FnMut(&[u8], &[u8], usize) -> Result<(), E>,
        named: impl Fn(sys::Error) -> E,
    ) -> Result<(), E> {
        const CHUNK: usize = 1024;
        let (ks, vs) = (self.sizes.key(), self.sizes.value());
        let mut keys = vec![0u8; CHUNK * ks];
        let mut values = vec![0u8; CHUNK * vs];
        let mut prev: Option<Vec<u8>> = None;
        let mut next = vec![0u8; ks];
        let mut n = 0;
        loop {
            let more = sysmap::next_key(self.fd, prev.as_deref(), &mut next).map_err(&named)?;
            if !more {
                break;
            }
            let (k, v) = (
                &mut keys[n * ks..(n + 1) * ks],
                &mut values[n * vs..(n + 1) * vs],
            );
            match sysmap::lookup(self.fd, &next, v, 0) {
                Ok(()) => {
                    k.copy_from_slice(&next);
                    n += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(named(e)),
            }
            prev.get_or_insert_with(Vec::new).clone_from(&next);
            if n == CHUNK {
                f(&keys, &values, n)?;
                n = 0;
            }
        }
        if n > 0 {
            f(&keys, &values, n)?;
        }
        Ok(())
    }
}

//! Tracing tc programs without changing them (`tcbpf dump`): `bpf/dump.c`'s
//! fentry and fexit programs are loaded by the library's own loader once
//! per traced program (`attach_prog_fd` = the target, `attach_btf_id` = its
//! function in its BTF), their ring buffer, stash and counters shared by
//! all loads, and attached with BPF_LINK_CREATE. The targets stay attached
//! as they were; dropping the [`Tracer`] closes its links, which detaches
//! every tracing program (nothing is pinned).
//!
//! [`targets_on`] finds the programs of a device's hooks in run order (tcx
//! first, then cls_bpf filters by pref, as the kernel runs them);
//! [`classic::translate`] turns a pcap filter's classic BPF into the body
//! of the in-kernel filter; [`event`] parses the records. No printing here.

pub mod classic;
pub mod event;

pub use event::{verdict_by_name, verdict_name, Event};

use crate::abi::{Insn, TRACE_SECTIONS};
use crate::attach::discover::{self, Hook};
use crate::attach::tcx::Direction;
use crate::elf::{MapOrigin, ObjectSpec};
use crate::load::{self, LoadError, LoadOptions, LoadedObject, ObjectIdentity, TraceTarget};
use crate::sys::info::ProgInfo;
use crate::sys::{self, link, LinkFd, MapFd, ProgFd};
use crate::tc::Socket;
use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;

/// Most programs one tracer follows (`MAX_TARGETS` in `dump.c`).
pub const MAX_TARGETS: usize = 64;
/// Bytes captured per packet by default.
pub const DEFAULT_SNAPLEN: u32 = 128;
/// Bytes the in-kernel filter may look at, at least (more than a short
/// `snaplen` when a filter is set, so headers are always seen).
pub const FILTER_SNAP: u32 = 256;

/// Where a traced program runs on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The hook's direction.
    pub direction: Direction,
    /// 1-based position in the hook's run order (tcx programs, then
    /// cls_bpf filters).
    pub position: usize,
    /// Filter or tcx link.
    pub hook: Hook,
}

/// One traced program.
#[derive(Debug, Clone)]
pub struct Target {
    /// The program's info (id, name, tag, BTF).
    pub info: ProgInfo,
    /// Where it is attached on the device (empty for `prog ID` / `pinned`
    /// targets that are not attached there).
    pub places: Vec<Place>,
    /// For cls_bpf filters without `da`: the return value is a classid,
    /// not a tc action.
    pub classid_verdict: bool,
}

impl Target {
    /// The place of the program in the direction the packet went.
    pub fn place(&self, ingress: bool) -> Option<&Place> {
        let d = if ingress {
            Direction::Ingress
        } else {
            Direction::Egress
        };
        self.places.iter().find(|p| p.direction == d)
    }
}

/// Why tracing could not start.
#[derive(Debug)]
pub enum Error {
    /// A target has no BTF: fentry/fexit need its function's type.
    NoBtf {
        /// Program id.
        id: u32,
        /// Program name.
        name: String,
    },
    /// Nothing to trace, or too much.
    Targets(String),
    /// The kernel refused the tracing programs for lack of privilege:
    /// CAP_BPF and CAP_PERFMON missing, or (with both) a kernel whose BPF
    /// trampolines are closed (lockdown, an LSM, a build without them).
    Refused {
        /// The capabilities this process lacks (empty: it has both).
        missing: Vec<&'static str>,
        /// The loader's error.
        source: Box<LoadError>,
    },
    /// The filter could not be translated.
    Filter(classic::TranslateError),
    /// The tracing object did not load (verifier, permission…).
    Load(Box<LoadError>),
    /// A system call failed (attach, lookup).
    Sys(sys::Error),
    /// Discovery on the device failed.
    Tc(crate::tc::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoBtf { id, name } => write!(
                f,
                "program {id} '{name}' has no BTF: fentry/fexit tracing attaches to a program's \
                 BTF function (load objects built with 'clang -g', as bpf/ objects are)"
            ),
            Error::Targets(t) => write!(f, "{t}"),
            Error::Refused { missing, source } if !missing.is_empty() => write!(
                f,
                "tracing needs CAP_BPF and CAP_PERFMON; this process lacks {} ({source})",
                missing.join(" and ")
            ),
            Error::Refused { source, .. } => write!(
                f,
                "the kernel refused the fentry/fexit programs although this process has \
                 CAP_BPF and CAP_PERFMON: BPF trampolines are not allowed here (lockdown, \
                 an LSM or the kernel's build) ({source})"
            ),
            Error::Filter(e) => write!(f, "filter: {e}"),
            Error::Load(e) => write!(f, "loading the tracing programs: {e}"),
            Error::Sys(e) => write!(f, "{e}"),
            Error::Tc(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NoBtf { .. } | Error::Targets(_) => None,
            Error::Refused { source, .. } => Some(source.as_ref()),
            Error::Filter(e) => Some(e),
            Error::Load(e) => Some(e.as_ref()),
            Error::Sys(e) => Some(e),
            Error::Tc(e) => Some(e),
        }
    }
}

impl Error {
    /// The class of failure: no BTF, no targets and a bad filter are bad
    /// input; the rest say what the kernel said.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Error::NoBtf { .. } | Error::Filter(_) => crate::ErrorKind::BadInput,
            Error::Targets(_) => crate::ErrorKind::NotFound,
            Error::Refused { .. } => crate::ErrorKind::Permission,
            Error::Load(e) => e.kind(),
            Error::Sys(e) => e.kind(),
            Error::Tc(e) => e.kind(),
        }
    }
}

impl From<sys::Error> for Error {
    fn from(e: sys::Error) -> Self {
        Error::Sys(e)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        Error::Load(Box::new(e))
    }
}

/// The programs on `directions` of device `ifindex`, in run order per
/// direction, each program once (with every place it holds), each opened
/// by id so it cannot go away while traced.
pub fn targets_on(
    sock: &Socket,
    ifindex: u32,
    directions: &[Direction],
) -> Result<Vec<(Target, ProgFd)>, Error> {
    let found = discover::attachments(sock, ifindex, directions).map_err(Error::Tc)?;
    let mut out: Vec<(Target, ProgFd)> = Vec::new();
    for &direction in directions {
        // The kernel runs tcx programs first, then the clsact filters.
        let tcx = found
            .iter()
            .filter(|a| a.direction == direction && matches!(a.hook, Hook::Tcx { .. }));
        let filters = found
            .iter()
            .filter(|a| a.direction == direction && matches!(a.hook, Hook::Filter { .. }));
        for (i, a) in tcx.chain(filters).enumerate() {
            let place = Place {
                direction,
                position: i + 1,
                hook: a.hook.clone(),
            };
            if let Some((t, _)) = out.iter_mut().find(|(t, _)| t.info.id == a.prog_id) {
                if t.place(direction == Direction::Ingress).is_none() {
                    t.places.push(place);
                }
                continue;
            }
            let fd = sys::obj::prog_by_id(a.prog_id)?;
            let info = sys::info::prog_info(&fd)?;
            out.push((
                Target {
                    info,
                    places: vec![place],
                    classid_verdict: matches!(
                        a.hook,
                        Hook::Filter {
                            direct_action: false,
                            ..
                        }
                    ),
                },
                fd,
            ));
        }
    }
    Ok(out)
}

/// What to trace and keep.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Only packets on this device (0: any device the program runs on).
    pub ifindex: u32,
    /// Only this direction (`None`: both).
    pub direction: Option<Direction>,
    /// Bytes of each packet written (at most [`classic::SNAP_MAX`]).
    pub snaplen: u32,
    /// The in-kernel filter (from [`classic::translate`]).
    pub filter: Option<Vec<Insn>>,
    /// Keep only packets the program returned this for.
    pub verdict: Option<i32>,
    /// Ring buffer size in bytes (a power of two, whole pages; `None`:
    /// the object's 4 MiB).
    pub ring_bytes: Option<u32>,
}

/// Per-program counts kept by the tracing programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets on the device and direction asked for.
    pub seen: u64,
    /// Refused by the filter.
    pub filtered: u64,
    /// Another verdict than the one asked for.
    pub skipped: u64,
    /// Records written to the ring buffer.
    pub written: u64,
    /// Records lost: the ring buffer was full.
    pub lost: u64,
}

const ENTRY: &str = "dump_entry";
const EXIT: &str = "dump_exit";
const FILTER_FN: &str = "dump_filter";
const SHARED: [&str; 3] = ["dump_events", "dump_stash", "dump_counters"];
const CONFIG_LEN: usize = 32;

/// Tracing programs attached to targets; dropping it detaches them all.
pub struct Tracer {
    targets: Vec<Target>,
    // Links first: they are dropped (detached) before the objects close.
    links: Vec<LinkFd>,
    _objects: Vec<LoadedObject>,
    ring: Arc<MapFd>,
    counters: Arc<MapFd>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("targets", &self.targets.len())
            .field("links", &self.links.len())
            .finish()
    }
}

impl Tracer {
    /// Loads the tracing object `object` (the bytes of `bpf/dump.o`) once
    /// per target and attaches its fentry and fexit programs. On any
    /// failure everything attached so far is detached again.
    pub fn attach(
        object: &[u8],
        targets: Vec<(Target, ProgFd)>,
        opts: &TraceOptions,
    ) -> Result<Tracer, Error> {
        if targets.is_empty() {
            return Err(Error::Targets("no program to trace".into()));
        }
        if targets.len() > MAX_TARGETS {
            return Err(Error::Targets(format!(
                "{} programs: at most {MAX_TARGETS} are traced at once (name one with 'prog ID')",
                targets.len()
            )));
        }
        for (t, _) in &targets {
            if t.info.btf_id == 0 || t.info.main_func_type_id == 0 {
                return Err(Error::NoBtf {
                    id: t.info.id,
                    name: t.info.name.clone(),
                });
            }
        }
        // The ELF reader wants its bytes aligned as the file's structs; an
        // `include_bytes!` slice is not, a fresh heap copy is (malloc: 16).
        let object = object.to_vec();
        let mut spec = ObjectSpec::parse("dump.o", &object).map_err(LoadError::from)?;
        if let Some(bytes) = opts.ring_bytes {
            if let Some(m) = spec.maps.iter_mut().find(|m| m.name == SHARED[0]) {
                m.max_entries = bytes;
            }
        }
        if let Some(body) = &opts.filter {
            let entry = spec
                .programs
                .iter_mut()
                .find(|p| p.name == ENTRY)
                .ok_or_else(|| Error::Targets(format!("dump.o has no program '{ENTRY}'")))?;
            entry
                .replace_last_function(FILTER_FN, body.clone())
                .map_err(|e| Error::Filter(classic::TranslateError(e)))?;
        }
        let bss = spec
            .maps
            .iter()
            .position(|m| m.origin == MapOrigin::GlobalData && m.name.ends_with(".bss"))
            .filter(|&i| spec.maps[i].value_size as usize == CONFIG_LEN)
            .ok_or_else(|| {
                Error::Targets("dump.o: no 32-byte .bss holding 'struct dump_config'".into())
            })?;
        let identity = ObjectIdentity {
            path: "dump.o".into(),
            sha1_hex: String::new(),
            dev: 0,
            ino: 0,
        };
        let mut shared: Vec<(String, Arc<MapFd>)> = Vec::new();
        let mut objects = Vec::new();
        let mut links = Vec::new();
        let mut kept = Vec::new();
        for (index, (target, fd)) in targets.into_iter().enumerate() {
            let mut spec = spec.clone();
            spec.maps[bss].data = Some(config_bytes(index as u32, opts).to_vec());
            let load_opts = LoadOptions {
                program: Some(ENTRY.into()),
                also_programs: vec![EXIT.into()],
                trace_target: Some(TraceTarget {
                    prog: Some(Arc::new(fd)),
                    func_type_id: target.info.main_func_type_id,
                }),
                shared_maps: shared.clone(),
                ..Default::default()
            };
            let obj = load::load_spec(&spec, &identity, &load_opts).map_err(|e| {
                if e.kind() == crate::ErrorKind::Permission {
                    Error::Refused {
                        missing: missing_capabilities(),
                        source: Box::new(e),
                    }
                } else {
                    Error::from(e)
                }
            })?;
            if shared.is_empty() {
                for name in SHARED {
                    let m = obj
                        .map(name)
                        .ok_or_else(|| Error::Targets(format!("dump.o has no map '{name}'")))?;
                    shared.push((name.to_string(), Arc::new(m.fd.try_clone()?)));
                }
            }
            for p in &obj.programs {
                let attach = crate::abi::trace_section_by_name(&p.section)
                    .or_else(|| TRACE_SECTIONS.first())
                    .and_then(|row| row.attach)
                    .map_or(0, |a| a.as_u32());
                let l = link::create(&link::LinkCreate {
                    prog: p.fd.as_fd(),
                    target_ifindex: 0,
                    attach_type: attach,
                    flags: 0,
                    relative: 0,
                    expected_revision: 0,
                })
                .map_err(|e| {
                    Error::Sys(e.on(format!(
                        "{} on program {} '{}'",
                        p.name, target.info.id, target.info.name
                    )))
                })?;
                links.push(l);
            }
            objects.push(obj);
            kept.push(target);
        }
        let ring = shared[0].1.clone();
        let counters = shared[2].1.clone();
        Ok(Tracer {
            targets: kept,
            links,
            _objects: objects,
            ring,
            counters,
        })
    }

    /// The traced programs; an event's `target` indexes this.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The ring buffer the records arrive in (read it with
    /// `events::EventReader`).
    pub fn ring(&self) -> &MapFd {
        &self.ring
    }

    /// The ids of the tracing links (two per target).
    pub fn link_ids(&self) -> Vec<u32> {
        self.links
            .iter()
            .filter_map(|l| link::link_info(l).ok().map(|i| i.id))
            .collect()
    }

    /// The counts of each target (per-CPU values summed), in target order.
    pub fn counts(&self) -> Result<Vec<Counts>, Error> {
        let cpus = sys::possible_cpus()
            .map_err(|e| sys::Error::new("possible CPUs", e))?
            .max(1);
        let mut out = Vec::with_capacity(self.targets.len());
        let mut value = vec![0u8; 40 * cpus];
        for i in 0..self.targets.len() as u32 {
            sys::map::lookup(self.counters.as_fd(), &i.to_ne_bytes(), &mut value, 0)?;
            let mut c = Counts::default();
            for cpu in value.chunks_exact(40) {
                let f = |n: usize| {
                    u64::from_ne_bytes(cpu[n * 8..n * 8 + 8].try_into().unwrap_or_default())
                };
                c.seen += f(0);
                c.filtered += f(1);
                c.skipped += f(2);
                c.written += f(3);
                c.lost += f(4);
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Detaches every tracing program now (as dropping does), reporting
    /// a link the kernel would not detach.
    pub fn detach(mut self) -> Result<(), Error> {
        let mut first = None;
        for l in self.links.drain(..) {
            if let Err(e) = link::detach(&l) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(Error::Sys(e)))
    }
}

/// Which of CAP_BPF and CAP_PERFMON this process lacks (from
/// `/proc/self/status`; both when it cannot be read).
pub fn missing_capabilities() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    [(39, "CAP_BPF"), (38, "CAP_PERFMON")]
        .into_iter()
        .filter(|(bit, _)| caps & (1u64 << bit) == 0)
        .map(|(_, name)| name)
        .collect()
}

/// `struct dump_config` for target `index`.
fn config_bytes(index: u32, opts: &TraceOptions) -> [u8; CONFIG_LEN] {
    let snaplen = opts.snaplen.min(classic::SNAP_MAX);
    let filter_snap = if opts.filter.is_some() {
        snaplen.max(FILTER_SNAP)
    } else {
        snaplen
    };
    let direction = match opts.direction {
        None => 0u32,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    };
    let words: [u32; 8] = [
        index,
        opts.ifindex,
        direction,
        snaplen,
        filter_snap,
        u32::from(opts.filter.is_some()),
        u32::from(opts.verdict.is_some()),
        opts.verdict.unwrap_or(0) as u32,
    ];
    let mut out = [0u8; CONFIG_LEN];
    for (i, w) in words.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    out
}

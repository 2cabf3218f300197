//! `chain apply`'s I/O: make a tcx hook run the programs a chain file
//! lists, in that order, changing only what differs from what tcbpf
//! attached for the chain before ([`apply`]).
//!
//! The links attached for a chain are pinned under
//! `BPFFS/tc/chains/DEV-DIR/` as `LINKID-KEY` (KEY says which entry: the
//! object's SHA-1, section and function, or the pinned program's id), so a
//! later apply knows them; programs anyone else attached are left where
//! they are. Each object is loaded once, so its programs share its maps.
//! New links go in with anchors (after the previous entry) and the hook's
//! revision (`expected_revision`); a concurrent change (ESTALE) undoes
//! what the attempt attached and starts again ([`ATTEMPTS`] attempts,
//! backing off a little more each time). Any other failure undoes the
//! attempt's links: the hook is left as it was. Links no entry wants are
//! detached last, once every new one is in place. Applies on one hook take
//! turns: each holds the chain directory `flock`ed from its first query to
//! its last detach. Planning is [`super::Plan`] (pure); nothing here
//! prints.

use super::{ChainEntry, OwnedLink, Place, Plan};
use crate::attach::tcx::{self, Anchor, Direction, Relative};
use crate::attach::{self, AttachError, AttachTarget, Hook};
use crate::load::{self, LoadError, LoadOptions, LoadedObject};
use crate::sys::{self, link, LinkFd, ProgFd};
use crate::tc::{self, bpffs};
use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How many times a concurrent change of the hook restarts the apply.
pub const ATTEMPTS: usize = 20;
/// How long an apply waits for another one on the same hook.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The hook a chain goes on.
#[derive(Debug, Clone, Copy)]
pub struct ChainHook<'a> {
    /// The device's name (it names the chain's directory).
    pub dev: &'a str,
    /// Its interface index (in the caller's network namespace).
    pub ifindex: u32,
    /// The tcx side.
    pub direction: Direction,
}

impl ChainHook<'_> {
    /// `BPFFS/tc/chains/DEV-DIR`: where the chain's links are pinned.
    pub fn dir(&self) -> PathBuf {
        bpffs::root()
            .join("tc")
            .join("chains")
            .join(format!("{}-{}", self.dev, self.direction))
    }
}

/// A link an apply attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// The link's id.
    pub link_id: u32,
    /// The program's id.
    pub prog_id: u32,
    /// The program's name.
    pub name: String,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The ids of the links that stayed.
    pub kept: Vec<u32>,
    /// The links attached.
    pub attached: Vec<NewLink>,
    /// The ids of the links detached.
    pub detached: Vec<u32>,
    /// The hook's revision at the end.
    pub revision: u64,
    /// How many attempts a concurrent change of the hook undid.
    pub retries: usize,
}

/// Why an apply failed.
#[derive(Debug)]
pub enum ApplyError {
    /// An `obj` entry's file could not be read.
    ReadObject {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An `obj` entry's object did not parse, has no such program, or did
    /// not load.
    Load(LoadError),
    /// A `pinned` entry names no pin.
    NoSuchPin(PathBuf),
    /// A `pinned` entry's pin is no program (a map, a directory, a file
    /// outside bpffs).
    NotAProgram {
        /// The pin.
        path: PathBuf,
        /// What it is instead.
        why: String,
    },
    /// A `pinned` entry's pin could not be opened.
    Pinned {
        /// The pin.
        path: PathBuf,
        /// Why.
        source: sys::Error,
    },
    /// Entry `entry` (from 1) lists the same program as an earlier one.
    Duplicate {
        /// The entry, from 1.
        entry: usize,
    },
    /// The chain's directory could not be made or locked.
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: sys::Error,
    },
    /// Another apply held the hook for [`LOCK_WAIT`].
    Locked {
        /// The chain's directory.
        dir: PathBuf,
    },
    /// Reading the hook failed.
    Hook(tc::Error),
    /// Reopening a kept link or reading a new one failed.
    Sys(sys::Error),
    /// Attaching entry `entry` (from 1) failed; the attempt's links were
    /// detached.
    Attach {
        /// The entry, from 1.
        entry: usize,
        /// Why.
        source: Box<AttachError>,
    },
    /// Pinning a new link failed; the attempt's links were detached.
    Pin(sys::Error),
    /// An attempt failed and what it attached was undone: the hook is as
    /// it was.
    Undone(Box<ApplyError>),
}

impl ApplyError {
    /// True for a concurrent change of the hook (ESTALE on attach).
    fn is_stale(&self) -> bool {
        match self {
            ApplyError::Attach { source, .. } => {
                matches!(&**source, AttachError::Attach(t) if t.errno() == Some(libc::ESTALE))
            }
            _ => false,
        }
    }

    /// The crate-wide kind of the failure.
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind as K;
        match self {
            ApplyError::ReadObject { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => K::NotFound,
                _ => K::BadInput,
            },
            ApplyError::Load(e) => e.kind(),
            ApplyError::NoSuchPin(_) => K::NotFound,
            ApplyError::NotAProgram { .. } | ApplyError::Duplicate { .. } => K::BadInput,
            ApplyError::Pinned { source, .. }
            | ApplyError::Dir { source, .. }
            | ApplyError::Sys(source)
            | ApplyError::Pin(source) => source.kind(),
            ApplyError::Locked { .. } | ApplyError::Attach { .. } => K::System,
            ApplyError::Hook(e) => e.kind(),
            ApplyError::Undone(e) => e.kind(),
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::ReadObject { file, source } => {
                write!(f, "{}: {}", file.display(), sys::strip_os(source))
            }
            ApplyError::Load(e) => write!(f, "{e}"),
            ApplyError::NoSuchPin(p) => write!(f, "pinned '{}': no such pin", p.display()),
            ApplyError::NotAProgram { path, why } => {
                write!(f, "pinned '{}': not a bpf program: {why}", path.display())
            }
            ApplyError::Pinned { path, source } => {
                write!(f, "pinned '{}': {source}", path.display())
            }
            ApplyError::Duplicate { entry } => {
                write!(f, "entry {entry} lists the same program as an earlier one")
            }
            ApplyError::Dir { path, source } => write!(f, "'{}': {source}", path.display()),
            ApplyError::Locked { dir } => write!(
                f,
                "another chain apply has held the hook for {} s ('{}' is locked)",
                LOCK_WAIT.as_secs(),
                dir.display()
            ),
            ApplyError::Hook(e) => write!(f, "{e}"),
            ApplyError::Sys(e) => write!(f, "{e}"),
            ApplyError::Attach { entry, source } => write!(f, "entry {entry}: {source}"),
            ApplyError::Pin(e) => write!(f, "pinning a chain link: {e}"),
            ApplyError::Undone(e) => write!(f, "{e} (the hook is as it was)"),
        }
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApplyError::ReadObject { source, .. } => Some(source),
            ApplyError::Load(e) => Some(e),
            ApplyError::Pinned { source, .. }
            | ApplyError::Dir { source, .. }
            | ApplyError::Sys(source)
            | ApplyError::Pin(source) => Some(source),
            ApplyError::Hook(e) => Some(e),
            ApplyError::Attach { source, .. } => Some(&**source),
            ApplyError::Undone(e) => Some(e),
            ApplyError::NoSuchPin(_)
            | ApplyError::NotAProgram { .. }
            | ApplyError::Duplicate { .. }
            | ApplyError::Locked { .. } => None,
        }
    }
}

/// Makes `hook` run `entries` in order (see the module's text). Checks
/// every entry before touching anything; `on_retry` hears each concurrent
/// change that restarts the apply.
pub fn apply(
    hook: &ChainHook<'_>,
    entries: &[ChainEntry],
    on_retry: &mut dyn FnMut(&ApplyError),
) -> Result<Applied, ApplyError> {
    let resolved = resolve(entries)?;
    let dir = hook.dir();
    let root = bpffs::root();
    bpffs::ensure_mounted(&root).map_err(|source| ApplyError::Dir {
        path: root.clone(),
        source,
    })?;
    std::fs::create_dir_all(&dir).map_err(|e| ApplyError::Dir {
        path: dir.clone(),
        source: sys::Error::new("mkdir", e),
    })?;
    let _lock = lock_hook(&dir)?;
    let mut retries = 0;
    let mut loads = Vec::new();
    loop {
        match attempt(hook, &dir, entries, &resolved, &mut loads) {
            Ok(mut done) => {
                done.retries = retries;
                return Ok(done);
            }
            Err(e) if e.is_stale() && retries + 1 < ATTEMPTS => {
                retries += 1;
                on_retry(&e);
                // Back off a little more each time, out of step with whoever
                // is changing the hook.
                std::thread::sleep(Duration::from_millis(3 * retries as u64));
            }
            Err(e) => return Err(ApplyError::Undone(Box::new(e))),
        }
    }
}

/// Holds the hook's chain directory locked (`flock`, exclusive) so that
/// applies on one hook run one after the other: each then plans against
/// what the one before left, and the hook ends as exactly one chain. Waits
/// up to [`LOCK_WAIT`] for another apply. The lock goes with the
/// descriptor, so a killed apply never leaves it held.
fn lock_hook(dir: &Path) -> Result<sys::fs::DirLock, ApplyError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let lock = sys::fs::try_lock_dir(dir).map_err(|source| ApplyError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(lock) = lock {
            return Ok(lock);
        }
        if start.elapsed() >= LOCK_WAIT {
            return Err(ApplyError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Opens the program pinned at `path` (tc's `m:` shorthand resolved).
fn open_pinned_prog(path: &Path) -> Result<ProgFd, ApplyError> {
    // The library's kind: a directory or a file outside bpffs is bad
    // input (not the kernel's EACCES/EPERM/EINVAL), a missing pin not found.
    sys::obj::get_pinned_prog(path).map_err(|e| match e.kind() {
        crate::ErrorKind::NotFound => ApplyError::NoSuchPin(path.to_path_buf()),
        crate::ErrorKind::BadInput => ApplyError::NotAProgram {
            path: path.to_path_buf(),
            why: sys::obj::not_a_pin(path).unwrap_or_else(|| e.to_string()),
        },
        _ => ApplyError::Pinned {
            path: path.to_path_buf(),
            source: e,
        },
    })
}

/// What each entry is: its key, its object group, and for objects the
/// function to load.
struct Resolved {
    keys: Vec<String>,
    groups: Vec<usize>,
    /// For `obj` entries: the function name.
    functions: Vec<Option<String>>,
}

/// Keys, groups and function names of the entries, from the files and pins
/// (nothing loaded, nothing attached).
fn resolve(entries: &[ChainEntry]) -> Result<Resolved, ApplyError> {
    let mut keys = Vec::new();
    let mut groups = Vec::new();
    let mut functions = Vec::new();
    let mut objects: HashMap<PathBuf, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        match e {
            ChainEntry::Obj {
                file,
                section,
                program,
            } => {
                let bytes =
                    crate::elf::read_object(file).map_err(|source| ApplyError::ReadObject {
                        file: file.clone(),
                        source,
                    })?;
                let id = load::ObjectIdentity::of(file, &bytes).map_err(ApplyError::Load)?;
                let spec = crate::elf::ObjectSpec::parse(&file.display().to_string(), &bytes)
                    .map_err(|e| ApplyError::Load(e.into()))?;
                let opts = LoadOptions {
                    section: section.clone(),
                    program: program.clone(),
                    ..LoadOptions::default()
                };
                let p =
                    &spec.programs[load::select_program(&spec, &opts).map_err(ApplyError::Load)?];
                keys.push(format!("obj:{}:{}:{}", id.sha1_hex, p.section, p.name));
                let canon = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
                let n = objects.len();
                groups.push(*objects.entry(canon).or_insert(n));
                functions.push(Some(p.name.clone()));
            }
            ChainEntry::Pinned(path) => {
                let path = bpffs::tc_path(&path.display().to_string());
                let fd = open_pinned_prog(&path)?;
                let info = sys::info::prog_info(&fd).map_err(ApplyError::Sys)?;
                keys.push(format!("prog:{}", info.id));
                groups.push(usize::MAX - i);
                functions.push(None);
            }
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err(ApplyError::Duplicate { entry: i + 1 });
        }
    }
    Ok(Resolved {
        keys,
        groups,
        functions,
    })
}

/// A key as a file name: `/` and `%` percent-encoded.
fn encode_key(key: &str) -> String {
    key.replace('%', "%25").replace('/', "%2F")
}

fn decode_key(name: &str) -> String {
    name.replace("%2F", "/").replace("%25", "%")
}

/// The links tcbpf owns on the hook (pins in `dir` named `LINKID-KEY` that
/// are attached there); pins of links no longer attached anywhere are removed.
fn owned_links(dir: &Path, hook: &ChainHook<'_>) -> Vec<(OwnedLink, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, key)) = name.split_once('-') else {
            continue;
        };
        let Ok((_, info)) = tcx::open_pinned(&path) else {
            continue;
        };
        if info.ifindex == 0 {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if info.ifindex == hook.ifindex
            && Direction::from_attach_type(info.attach_type) == Some(hook.direction)
        {
            out.push((
                OwnedLink {
                    link_id: info.id,
                    key: decode_key(key),
                },
                path,
            ));
        }
    }
    out
}

/// One try: plan against the hook as it is, load, attach with revision
/// checks, then detach what is no longer wanted. A failure detaches what
/// this try attached.
fn attempt(
    hook: &ChainHook<'_>,
    dir: &Path,
    entries: &[ChainEntry],
    r: &Resolved,
    loads: &mut Vec<(usize, LoadedObject)>,
) -> Result<Applied, ApplyError> {
    let (ifindex, direction) = (hook.ifindex, hook.direction);
    // Plan against the hook as it is; load what the plan needs (each object
    // once, with every function the chain lists from it, kept for later
    // attempts), then plan again, so that loading (slow) is not inside the
    // window between reading the revision and attaching.
    let (plan, owned, mut revision) = loop {
        let (progs, revision) =
            tcx::list_with_revision(ifindex, direction).map_err(ApplyError::Hook)?;
        let on_hook: Vec<u32> = progs.iter().map(|p| p.link_id).collect();
        let owned = owned_links(dir, hook);
        let owned_only: Vec<OwnedLink> = owned.iter().map(|(o, _)| o.clone()).collect();
        let plan = Plan::build(&on_hook, &owned_only, &r.keys, &r.groups);
        let mut loaded_now = false;
        for &(i, _) in &plan.attach {
            let g = r.groups[i];
            let ChainEntry::Obj { file, .. } = &entries[i] else {
                continue;
            };
            if loads.iter().any(|(lg, _)| *lg == g) {
                continue;
            }
            let names: Vec<String> = (0..entries.len())
                .filter(|j| r.groups[*j] == g)
                .filter_map(|j| r.functions[j].clone())
                .collect();
            let opts = LoadOptions {
                program: names.first().cloned(),
                also_programs: names[1..].to_vec(),
                ..LoadOptions::default()
            };
            loads.push((g, load::load_file(file, &opts).map_err(ApplyError::Load)?));
            loaded_now = true;
        }
        if !loaded_now {
            break (plan, owned, revision);
        }
    };

    // The programs to attach, opened before the first attach so that the
    // attaches follow one another closely (the revision may move between).
    let mut pinned_progs: Vec<(usize, ProgFd)> = Vec::new();
    for (i, _) in &plan.attach {
        if let ChainEntry::Pinned(path) = &entries[*i] {
            let path = bpffs::tc_path(&path.display().to_string());
            pinned_progs.push((*i, open_pinned_prog(&path)?));
        }
    }
    let prog_of = |i: usize| -> BorrowedFd<'_> {
        match &entries[i] {
            ChainEntry::Obj { .. } => {
                let (_, loaded) = loads
                    .iter()
                    .find(|(g, _)| *g == r.groups[i])
                    .expect("every object to attach was loaded");
                let name = r.functions[i].as_deref().unwrap_or_default();
                loaded
                    .program(name)
                    .expect("the loader loaded every function asked for")
                    .fd
                    .as_fd()
            }
            ChainEntry::Pinned(_) => pinned_progs
                .iter()
                .find(|(j, _)| *j == i)
                .expect("every pinned entry to attach was opened")
                .1
                .as_fd(),
        }
    };
    let mut links: Vec<Option<LinkFd>> = (0..r.keys.len()).map(|_| None).collect();
    for (i, k) in plan.kept.iter().enumerate() {
        if let Some(id) = k {
            links[i] = Some(sys::obj::link_by_id(*id).map_err(ApplyError::Sys)?);
        }
    }
    // Detaches this attempt's links and removes their pins.
    let undo = |links: &[Option<LinkFd>], new: &[usize], pins: &[PathBuf]| {
        for j in new {
            if let Some(l) = &links[*j] {
                let _ = tcx::detach(l);
            }
        }
        for pin in pins {
            let _ = std::fs::remove_file(pin);
        }
    };

    // Attach, each after the previous entry, at the revision we know.
    let mut new: Vec<usize> = Vec::new();
    for (i, place) in &plan.attach {
        let attached = {
            let anchor = match place {
                Place::Tail => Anchor::Tail,
                Place::AfterEntry(j) => Anchor::After(Relative::Link(
                    links[*j]
                        .as_ref()
                        .expect("earlier entries are placed")
                        .as_fd(),
                )),
                Place::BeforeLink(_) => Anchor::Before(Relative::Link(
                    links
                        .iter()
                        .flatten()
                        .next()
                        .expect("a kept link exists")
                        .as_fd(),
                )),
            };
            let target = AttachTarget {
                anchor,
                revision: Some(revision),
                ..AttachTarget::new(ifindex, Hook::Tcx(direction))
            };
            attach::attach(&target, prog_of(*i).into(), "")
                .map(|a| a.into_link().expect("a tcx hook attaches a link").0)
        };
        match attached {
            Ok(l) => {
                links[*i] = Some(l);
                new.push(*i);
                revision += 1;
            }
            Err(source) => {
                undo(&links, &new, &[]);
                return Err(ApplyError::Attach {
                    entry: i + 1,
                    source: Box::new(source),
                });
            }
        }
    }

    // Pin the new links so they outlive this process (and the next apply
    // knows them).
    let mut pins = Vec::new();
    let mut attached = Vec::new();
    for &i in &new {
        let l = links[i].as_ref().expect("attached above");
        let pinned = link::link_info(l).and_then(|info| {
            let pin = dir.join(format!("{}-{}", info.id, encode_key(&r.keys[i])));
            sys::obj::pin(l, &pin)?;
            Ok((info, pin))
        });
        match pinned {
            Ok((info, pin)) => {
                pins.push(pin);
                let name = sys::info::prog_info(prog_of(i))
                    .map(|p| p.name)
                    .unwrap_or_default();
                attached.push(NewLink {
                    link_id: info.id,
                    prog_id: info.prog_id,
                    name,
                });
            }
            Err(e) => {
                undo(&links, &new, &pins);
                return Err(ApplyError::Pin(e));
            }
        }
    }

    // Every new link is in place: now detach what the chain no longer has.
    let mut detached = Vec::new();
    for id in &plan.detach {
        if let Some((_, pin)) = owned.iter().find(|(o, _)| o.link_id == *id) {
            if let Ok((l, _)) = tcx::open_pinned(pin) {
                let _ = tcx::detach(&l);
            }
            let _ = std::fs::remove_file(pin);
            detached.push(*id);
        }
    }
    let (_, revision) = tcx::list_with_revision(ifindex, direction).map_err(ApplyError::Hook)?;
    Ok(Applied {
        kept: plan.kept.iter().flatten().copied().collect(),
        attached,
        detached,
        revision,
        retries: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_file_names() {
        let key = "obj:abc:1/0:f%x";
        assert!(!encode_key(key).contains('/'));
        assert_eq!(decode_key(&encode_key(key)), key);
    }
}

//! `tcbpf chain apply dev DEV tcx { ingress | egress } FILE`: make the tcx
//! hook run the programs FILE lists, in that order, changing only what
//! differs from what tcbpf attached for the chain before.
//!
//! The links tcbpf attaches for a chain are pinned under
//! `BPFFS/tc/chains/DEV-DIR/` as `LINKID-KEY` (KEY says which entry: the
//! object's SHA-1, section and function, or the pinned program's id), so a
//! later apply knows them; programs anyone else attached are left where they
//! are. Each object is loaded once, so its programs share its maps. New links
//! go in with anchors (after the previous entry) and the hook's revision
//! (`expected_revision`); a concurrent change (ESTALE) undoes what this
//! attempt attached and starts again (20 attempts, backing off a little more each time). Any other failure undoes
//! this attempt's links: the hook is left as it was. Links no entry wants
//! are detached last, once every new one is in place. Applies on one hook
//! take turns: each holds the chain directory `flock`ed from its first
//! query to its last detach.
//!
//! Planning is `tcbpf::tc::chain` (pure); this module does the I/O.

use super::error::{rolled_back, CliError};
use super::filter::TcxHook;
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::json;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use tcbpf::load::{LoadOptions, LoadedObject};
use tcbpf::sys::{self, link, LinkFd};
use tcbpf::tc::attach as tc_attach;
use tcbpf::tc::chain::{parse_chain, ChainEntry, OwnedLink, Place, Plan};
use tcbpf::tc::tcx::{self, Anchor, Direction, Relative};
use tcbpf::tc::{bpffs, device, Socket};

/// `tcbpf chain help`.
pub const USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] chain apply dev DEV tcx { ingress | egress } FILE

FILE lists programs in run order, one per line ('#' starts a comment):
    obj FILE [ sec NAME ] [ program FUNC ]
    pinned PATH
apply makes the tcx hook run them in that order: links tcbpf attached for
the chain before (pinned under BPFFS/tc/chains/DEV-DIR/) stay when still in
order, new ones go in after the previous entry, with the hook's revision
checked (a concurrent change is retried), and links the file no longer lists
are detached last. Each object is loaded once: its programs share its maps.
A failure leaves the hook as it was. Programs attached by others stay.
Applies on one hook take turns (a lock on the chain directory). FILE is a
regular file of at most 1 MiB of text.
";

/// How many times a concurrent change of the hook restarts the apply.
const ATTEMPTS: usize = 20;

#[derive(Debug)]
struct Args {
    dev: String,
    direction: Direction,
    file: PathBuf,
}

keywords! {
    /// The one verb of `tcbpf chain`.
    pub(crate) enum ChainVerb("chain command") { Apply = "apply" }
}

keywords! {
    /// The options of `chain apply` (the word after them is the file).
    pub(crate) enum ApplyOption("chain apply option") { Dev = "dev", Tcx = "tcx" }
}

fn parse(w: &mut Words) -> Result<Args, CliError> {
    let verb = w.expect("'apply'")?;
    let ChainVerb::Apply = ChainVerb::choose(&verb)?;
    let (mut dev, mut direction, mut file) = (None, None, None);
    while let Some(word) = w.next() {
        // After the hook, the first word that is no option is the file.
        let option = match ApplyOption::choose(&word) {
            Ok(o) => Some(o),
            Err(_) if file.is_none() && direction.is_some() => None,
            Err(e) => return Err(e.into()),
        };
        match option {
            Some(ApplyOption::Dev) => dev = Some(w.expect("a device after 'dev'")?),
            Some(ApplyOption::Tcx) => {
                let d = w.expect("ingress or egress after 'tcx'")?;
                direction = Some(TcxHook::direction(&d)?);
            }
            None => file = Some(PathBuf::from(word)),
        }
    }
    Ok(Args {
        dev: dev.ok_or_else(|| CliError::usage("expected 'dev DEV'"))?,
        direction: direction
            .ok_or_else(|| CliError::usage("expected 'tcx { ingress | egress }'"))?,
        file: file.ok_or_else(|| CliError::usage("expected the chain FILE"))?,
    })
}

/// Runs `tcbpf chain …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    let args = parse(w)?;
    let text = read_chain_file(&args.file)
        .map_err(|e| e.context(format!("chain file '{}'", args.file.display())))?;
    let entries = parse_chain(&text)
        .map_err(|e| CliError::usage(format!("chain file '{}': {e}", args.file.display())))?;
    let sock = Socket::open()?;
    let ifindex = device::ifindex(&sock, &args.dev)?;
    let hook = format!("dev '{}' tcx {}", args.dev, args.direction);
    let resolved = resolve(&entries)?;
    let dir = bpffs::root()
        .join("tc")
        .join("chains")
        .join(format!("{}-{}", args.dev, args.direction));
    bpffs::ensure_mounted(&bpffs::root())?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::from(e).context(format!("mkdir '{}'", dir.display())))?;
    let _lock = lock_hook(&dir, &hook)?;
    let mut retries = 0;
    let mut loads = Vec::new();
    loop {
        match attempt(
            ifindex,
            args.direction,
            &dir,
            &entries,
            &resolved,
            &mut loads,
        ) {
            Ok(done) => {
                return report(g, &args, &hook, done, retries);
            }
            Err(Attempt::Stale(e)) if retries + 1 < ATTEMPTS => {
                retries += 1;
                if g.verbose {
                    eline!("tcbpf: {hook} changed meanwhile ({e}); retrying");
                }
                // Back off a little more each time, out of step with whoever
                // is changing the hook.
                std::thread::sleep(std::time::Duration::from_millis(3 * retries as u64));
            }
            Err(Attempt::Stale(e)) | Err(Attempt::Failed(e)) => {
                return Err(e.context(format!("chain apply on {hook} (the hook is as it was)")))
            }
        }
    }
}

/// Longest chain file: a list of programs, not a stream.
const MAX_CHAIN_FILE_BYTES: u64 = 1 << 20;
/// How long an apply waits for another one on the same hook.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the chain file: a regular file of at most 1 MiB of text (a
/// directory, a device such as /dev/zero or a fifo is bad input, exit 2).
fn read_chain_file(path: &Path) -> Result<String, CliError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(CliError::from)?;
    let meta = file.metadata().map_err(CliError::from)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(CliError::usage(format!(
            "{what}: a chain file is a regular file"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CHAIN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(CliError::from)?;
    if bytes.len() as u64 > MAX_CHAIN_FILE_BYTES {
        return Err(CliError::usage(format!(
            "longer than {MAX_CHAIN_FILE_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        CliError::usage(format!("line {line}: not UTF-8 text"))
    })
}

/// Holds the hook's chain directory locked (`flock`, exclusive) so that
/// applies on one hook run one after the other: each then plans against
/// what the one before left, and the hook ends as exactly one chain. Waits
/// up to [`LOCK_WAIT`] for another apply, then fails (exit 4). The lock
/// goes with the descriptor, so a killed apply never leaves it held.
fn lock_hook(dir: &Path, hook: &str) -> Result<sys::fs::DirLock, CliError> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        if let Some(lock) = sys::fs::try_lock_dir(dir)? {
            return Ok(lock);
        }
        if start.elapsed() >= LOCK_WAIT {
            return Err(CliError::failure(format!(
                "chain apply on {hook}: another chain apply has held the hook for {} s ('{}' is locked)",
                LOCK_WAIT.as_secs(),
                dir.display()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Opens the program pinned at `path`: a pin that is no program (a map, a
/// directory, a file outside bpffs) is bad input (exit 2), a missing one
/// not found (exit 1).
fn open_pinned_prog(path: &Path) -> Result<sys::ProgFd, CliError> {
    let label = format!("pinned '{}'", path.display());
    sys::obj::get_pinned_prog(path).map_err(|e| match e.errno() {
        None => CliError::usage(format!("{label}: not a bpf program ({e})")),
        Some(libc::ENOENT) => CliError::not_found(format!("{label}: no such pin")),
        // The kernel's EACCES/EPERM/EINVAL for a directory or a file
        // outside bpffs is bad input, not a permission.
        _ => match sys::obj::not_a_pin(path) {
            Some(why) => CliError::usage(format!("{label}: not a bpf program: {why}")),
            None => CliError::from(e).context(label),
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
fn resolve(entries: &[ChainEntry]) -> Result<Resolved, CliError> {
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
                let bytes = tcbpf::elf::read_object(file)
                    .map_err(|e| super::error::object_read_error(file, e))?;
                let id = tcbpf::load::ObjectIdentity::of(file, &bytes).map_err(CliError::from)?;
                let spec = tcbpf::elf::ObjectSpec::parse(&file.display().to_string(), &bytes)
                    .map_err(|e| CliError::from(tcbpf::load::LoadError::from(e)))?;
                let opts = LoadOptions {
                    section: section.clone(),
                    program: program.clone(),
                    ..LoadOptions::default()
                };
                let p = &spec.programs
                    [tcbpf::load::select_program(&spec, &opts).map_err(CliError::from)?];
                keys.push(format!("obj:{}:{}:{}", id.sha1_hex, p.section, p.name));
                let canon = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
                let n = objects.len();
                groups.push(*objects.entry(canon).or_insert(n));
                functions.push(Some(p.name.clone()));
            }
            ChainEntry::Pinned(path) => {
                let path = bpffs::tc_path(&path.display().to_string());
                let fd = open_pinned_prog(&path)?;
                keys.push(format!("prog:{}", sys::info::prog_info(&fd)?.id));
                groups.push(usize::MAX - i);
                functions.push(None);
            }
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err(CliError::usage(format!(
                "entry {} lists the same program as an earlier one",
                i + 1
            )));
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
fn owned_links(dir: &Path, ifindex: u32, direction: Direction) -> Vec<(OwnedLink, PathBuf)> {
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
        if info.ifindex == ifindex
            && Direction::from_attach_type(info.attach_type) == Some(direction)
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

enum Attempt {
    /// The hook changed under us (ESTALE): undone, try again.
    Stale(CliError),
    /// Anything else: undone, give up.
    Failed(CliError),
}

/// What an attempt did.
struct Done {
    kept: Vec<u32>,
    attached: Vec<(u32, u32, String)>,
    detached: Vec<u32>,
    revision: u64,
}

/// One try: plan against the hook as it is, load, attach with revision
/// checks, then detach what is no longer wanted.
fn attempt(
    ifindex: u32,
    direction: Direction,
    dir: &Path,
    entries: &[ChainEntry],
    r: &Resolved,
    loads: &mut Vec<(usize, LoadedObject)>,
) -> Result<Done, Attempt> {
    let failed = |e: CliError| Attempt::Failed(e);
    // Plan against the hook as it is; load what the plan needs (each object
    // once, with every function the chain lists from it, kept for later
    // attempts), then plan again, so that loading (slow) is not inside the
    // window between reading the revision and attaching.
    let (plan, owned, mut revision) = loop {
        let (progs, revision) =
            tcx::list_with_revision(ifindex, direction).map_err(|e| failed(e.into()))?;
        let hook: Vec<u32> = progs.iter().map(|p| p.link_id).collect();
        let owned = owned_links(dir, ifindex, direction);
        let owned_only: Vec<OwnedLink> = owned.iter().map(|(o, _)| o.clone()).collect();
        let plan = Plan::build(&hook, &owned_only, &r.keys, &r.groups);
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
            let loaded =
                tcbpf::load::load_file(file, &opts).map_err(|e| failed(CliError::from(e)))?;
            loads.push((g, loaded));
            loaded_now = true;
        }
        if !loaded_now {
            break (plan, owned, revision);
        }
    };

    // The programs to attach, opened before the first attach so that the
    // attaches follow one another closely (the revision may move between).
    let mut pinned_progs: Vec<(usize, sys::ProgFd)> = Vec::new();
    for (i, _) in &plan.attach {
        if let ChainEntry::Pinned(path) = &entries[*i] {
            let path = bpffs::tc_path(&path.display().to_string());
            let fd = open_pinned_prog(&path).map_err(failed)?;
            pinned_progs.push((*i, fd));
        }
    }
    let prog_of = |i: usize| -> std::os::fd::BorrowedFd<'_> {
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
            links[i] = Some(sys::obj::link_by_id(*id).map_err(|e| failed(e.into()))?);
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
            let target = tc_attach::AttachTarget {
                anchor,
                revision: Some(revision),
                ..tc_attach::AttachTarget::new(ifindex, tc_attach::Hook::Tcx(direction))
            };
            tc_attach::attach(&target, prog_of(*i).into(), "")
                .map(|a| a.into_link().expect("a tcx hook attaches a link").0)
        };
        match attached {
            Ok(l) => {
                links[*i] = Some(l);
                new.push(*i);
                revision += 1;
            }
            Err(e) => {
                let stale = matches!(
                    &e,
                    tc_attach::AttachError::Attach(t) if t.errno() == Some(libc::ESTALE)
                );
                undo(&links, &new, &[]);
                let e = rolled_back(CliError::from(e).context(format!("entry {}", i + 1)));
                return Err(if stale { Attempt::Stale(e) } else { failed(e) });
            }
        }
    }

    // Pin the new links so they outlive this process (and the next apply
    // knows them).
    let mut pins = Vec::new();
    let mut attached = Vec::new();
    for &i in &new {
        let l = links[i].as_ref().expect("attached above");
        let pinned = link::link_info(l).map_err(CliError::from).and_then(|info| {
            let pin = dir.join(format!("{}-{}", info.id, encode_key(&r.keys[i])));
            sys::obj::pin(l, &pin)
                .map_err(|e| CliError::from(e).context("pinning a chain link"))?;
            Ok((info, pin))
        });
        match pinned {
            Ok((info, pin)) => {
                pins.push(pin);
                let name = sys::info::prog_info(prog_of(i))
                    .map(|p| p.name)
                    .unwrap_or_default();
                attached.push((info.id, info.prog_id, name));
            }
            Err(e) => {
                undo(&links, &new, &pins);
                return Err(failed(e));
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
    let (_, revision) =
        tcx::list_with_revision(ifindex, direction).map_err(|e| failed(e.into()))?;
    Ok(Done {
        kept: plan.kept.iter().flatten().copied().collect(),
        attached,
        detached,
        revision,
    })
}

fn report(g: &Global, args: &Args, hook: &str, d: Done, retries: usize) -> Result<(), CliError> {
    if g.json {
        let attached: Vec<_> = d
            .attached
            .iter()
            .map(|(l, p, n)| json!({"link_id": l, "prog_id": p, "name": n}))
            .collect();
        g.print_json(&json!({
            "dev": args.dev,
            "tcx": args.direction.to_string(),
            "kept": d.kept,
            "attached": attached,
            "detached": d.detached,
            "revision": d.revision,
            "retries": retries,
        }))?;
    } else {
        println!(
            "chain on {hook}: {} kept, {} attached, {} detached, revision {}",
            d.kept.len(),
            d.attached.len(),
            d.detached.len(),
            d.revision
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn apply_words_parse_and_keys_survive_file_names() {
        let a = parse(&mut words("apply dev v0 tcx egress /tmp/c.chain")).unwrap();
        assert_eq!(
            (a.dev.as_str(), a.direction, a.file.as_path()),
            ("v0", Direction::Egress, Path::new("/tmp/c.chain"))
        );
        assert!(parse(&mut words("apply dev v0 /f")).is_err());
        assert!(parse(&mut words("apply tcx ingress /f"))
            .unwrap_err()
            .message
            .contains("dev DEV"));
        let key = "obj:abc:1/0:f%x";
        assert!(!encode_key(key).contains('/'));
        assert_eq!(decode_key(&encode_key(key)), key);
    }
}

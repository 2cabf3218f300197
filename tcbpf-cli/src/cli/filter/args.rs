//! The words of `tcbpf filter …` and `tcbpf qdisc …`, parsed into typed
//! commands. No kernel calls here.

use super::super::error::CliError;
use super::super::filter_obj::{ObjArgs, ProgKind, ENV_UDS};
use super::super::map_export::entry_size;
use super::super::obj::prog_kind;
use super::super::words::{keywords, matches, Words};
use super::keywords::{
    ActionProgram, BpfOption, FilterOption, FilterVerb, ObjOption, PositionWord, QdiscOption,
    QdiscVerb,
};
use std::path::PathBuf;
use tcbpf::attach::cls_bpf::cls_flags;
use tcbpf::attach::tcx::Direction;
use tcbpf::tc::bpffs::tc_path;
use tcbpf::tc::classic::{parse_bytecode, ClassicInsn};
use tcbpf::tc::{Protocol, TcHandle};

/// `add`, `replace`, `del`, `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `add`: a new filter; a taken handle is an error.
    Add,
    /// `replace`: swap the program of the filter with this pref and handle.
    Replace,
    /// `del`.
    Delete,
    /// `show` (or `list`).
    Show,
}

/// Where filters go: a tc parent (`ingress`, `egress`, `parent H:M`) or a
/// tcx hook (`tcx ingress|egress`), as the library's attach takes it.
pub use tcbpf::attach::Hook;

/// What a tcx position is relative to (`before|after …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relative {
    /// `id N`: the program with this id.
    Id(u32),
    /// `pinned PATH`: the program pinned there.
    Pinned(PathBuf),
    /// `link PATH`: the program of the link pinned there.
    Link(PathBuf),
}

/// Where on a tcx hook the program goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// `head` (or `before head`).
    Head,
    /// `tail` (or `after tail`): the default.
    Tail,
    /// `before { id N | pinned PATH | link PATH }`.
    Before(Relative),
    /// `after { id N | pinned PATH | link PATH }`.
    After(Relative),
}

/// Where the program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgSource {
    /// `obj FILE …`: loaded by the object loader.
    Obj(ObjArgs),
    /// `pinned PATH`: a program pinned in bpffs.
    Pinned(PathBuf),
    /// `bytecode "N,c t f k,…"`: a classic BPF program.
    Classic(Vec<ClassicInsn>),
    /// `bytecode-file FILE`: a classic BPF program in a file (read when
    /// the command runs).
    ClassicFile(PathBuf),
}

/// The words after `bpf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfArgs {
    /// `da`.
    pub direct_action: bool,
    /// `classid H:M`.
    pub classid: Option<TcHandle>,
    /// `skip_sw` / `skip_hw` (`cls_flags::SKIP_*`).
    pub skip_flags: u32,
    /// The program.
    pub source: ProgSource,
    /// `action bpf pinned PATH`, in order.
    pub actions: Vec<PathBuf>,
}

/// A parsed `filter` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterArgs {
    /// What to do.
    pub verb: Verb,
    /// `dev DEV`.
    pub dev: String,
    /// The hook.
    pub hook: Hook,
    /// `pref N` (also `prio`, `priority`).
    pub pref: Option<u16>,
    /// `handle H`.
    pub handle: Option<u32>,
    /// `protocol P`.
    pub protocol: Option<Protocol>,
    /// `chain N`.
    pub chain: Option<u32>,
    /// `bpf …`.
    pub bpf: Option<BpfArgs>,
    /// `link PATH`: where a tcx link is pinned.
    pub link: Option<PathBuf>,
    /// tcx: `head`, `tail`, `before …`, `after …`.
    pub position: Option<Position>,
    /// tcx: `revision N`, the hook revision the attach expects.
    pub revision: Option<u64>,
}

/// Usage of `tcbpf filter`.
pub const FILTER_USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] filter { add | replace } dev DEV HOOK [ pref N ] [ handle H ]
              [ protocol P ] [ chain N ] bpf [ da ] [ classid H:M ] PROG
              [ action bpf pinned PATH ]… [ link PATH ]
       tcbpf [-j] [-n NETNS] filter add dev DEV tcx { ingress | egress } [ POSITION ]
              [ revision N ] bpf PROG [ link PATH ]
       tcbpf [-j] [-n NETNS] filter replace dev DEV tcx { ingress | egress } link PATH bpf PROG
       tcbpf [-j] [-n NETNS] filter del dev DEV HOOK [ pref N [ handle H ] ] [ protocol P ]
              [ chain N ] [ link PATH ]
       tcbpf [-j] [-n NETNS] filter show dev DEV HOOK [ pref N ] [ protocol P ] [ chain N ]
       tcbpf [-j] [-n NETNS] filter upgrade dev DEV HOOK … bpf obj FILE [ plan ] (filter upgrade help)
HOOK := { ingress | egress | parent H:M | tcx { ingress | egress } }
POSITION := { head | tail | { before | after } { id N | pinned PATH | link PATH | head | tail } }
PROG := { obj FILE [ type cls|act ] [ sec NAME ] [ program FUNC ]
               [ export UDS [ entry-size 20|24|28|36 ] ] [ allow-uid UID ]…
               [ max-memory BYTES ] [ verbose ] | pinned PATH
           | bytecode 'N,c t f k,...' | bytecode-file FILE } [ skip_sw | skip_hw ]
P    := { all | ip | ipv6 | 802.1Q | arp | … | NUMBER }

Long and short forms as in tc: object-file/obj, section/sec,
object-pinned/pinned/fd, direct-action/da, classid/flowid. A pinned PATH
written m:REST is REST under $TC_BPF_MNT/tc (default /sys/fs/bpf/tc).
'program FUNC' picks one function of a section that holds several.
bytecode and bytecode-file load classic BPF (the text of tc, bpf_asm and
tcpdump -ddd; in a file, newlines may stand for commas).
add creates the clsact qdisc when the device has none (and removes it again
when the filter fails). tcx hooks attach with a bpf link, pinned at
link PATH (default: BPFFS/tc/links/tcx-DEV-DIR-LINKID, BPFFS being
$TC_BPF_MNT or /sys/fs/bpf); del on a tcx hook detaches and unpins.
POSITION places the program on the tcx hook (default tail); 'revision N'
attaches only if the hook is still at revision N (filter show … tcx prints
it), else fails (exit 4) naming the revision now. replace … tcx … link PATH
swaps the program of that link in place (BPF_LINK_UPDATE).
$TC_BPF_UDS names the export socket when 'export' is not given. The socket
must be owned by root or this user (or a uid 'allow-uid' names) and lie in a
directory other users cannot write (unless it has the sticky bit).
entry-size sends struct bpf_elf_map entries of that many bytes (default 36,
as tc today) to importers built against older iproute2 headers.
";

/// Usage of `tcbpf qdisc`.
pub const QDISC_USAGE: &str = "\
Usage: tcbpf [-n NETNS] qdisc { add | del } dev DEV clsact
";

fn number<T: TryFrom<u64>>(w: &mut Words, what: &str) -> Result<T, CliError> {
    Ok(w.number(what)?)
}

fn handle(w: &mut Words, what: &str) -> Result<TcHandle, CliError> {
    let text = w.expect(what)?;
    TcHandle::parse(&text).ok_or_else(|| {
        CliError::usage(format!(
            "{what}: '{text}' is not a tc handle (MAJ:MIN in hex)"
        ))
    })
}

keywords! {
    /// The two tcx hooks.
    pub(crate) enum TcxHook("tcx hook") { Ingress = "ingress", Egress = "egress" }
}

impl TcxHook {
    /// The direction `word` names (`ingress` or `egress`, or a prefix).
    pub(crate) fn direction(word: &str) -> Result<Direction, CliError> {
        Ok(match TcxHook::choose(word)? {
            TcxHook::Ingress => Direction::Ingress,
            TcxHook::Egress => Direction::Egress,
        })
    }
}

fn direction(w: &mut Words) -> Result<Direction, CliError> {
    let word = w.expect("ingress or egress after 'tcx'")?;
    TcxHook::direction(&word)
}

/// Parses the words after `filter`.
pub fn parse_filter(w: &mut Words) -> Result<FilterArgs, CliError> {
    let verb_word = w.expect("a verb: add, replace, del, show")?;
    let verb = match FilterVerb::choose(&verb_word)? {
        FilterVerb::Add => Verb::Add,
        FilterVerb::Replace => Verb::Replace,
        FilterVerb::Delete => Verb::Delete,
        FilterVerb::Show => Verb::Show,
        FilterVerb::Upgrade => {
            return Err(CliError::usage(
                "'upgrade' has its own words: tcbpf filter upgrade help",
            ))
        }
    };
    let mut dev = None;
    let mut hook = None;
    let (mut pref, mut handle_v, mut protocol, mut chain, mut link) =
        (None, None, None, None, None);
    let mut bpf = None;
    let (mut position, mut revision) = (None, None);
    while let Some(word) = w.next() {
        let key = FilterOption::choose(&word)?;
        let set_hook = |h: Hook, hook: &mut Option<Hook>| {
            if hook.replace(h).is_some() {
                Err(CliError::usage(
                    "give one hook: ingress, egress, parent H:M or tcx DIR",
                ))
            } else {
                Ok(())
            }
        };
        match key {
            FilterOption::Dev => dev = Some(w.expect("a device name after 'dev'")?),
            FilterOption::Ingress => set_hook(Hook::Parent(TcHandle::INGRESS), &mut hook)?,
            FilterOption::Egress => set_hook(Hook::Parent(TcHandle::EGRESS), &mut hook)?,
            FilterOption::Parent => {
                let h = handle(w, "parent")?;
                set_hook(Hook::Parent(h), &mut hook)?
            }
            FilterOption::Tcx => {
                let d = direction(w)?;
                set_hook(Hook::Tcx(d), &mut hook)?
            }
            FilterOption::Pref => pref = Some(number::<u16>(w, "pref")?),
            FilterOption::Handle => handle_v = Some(number::<u32>(w, "handle")?),
            FilterOption::Protocol => {
                let text = w.expect("a protocol after 'protocol'")?;
                protocol = Some(Protocol::parse(&text).ok_or_else(|| {
                    CliError::usage(format!(
                        "protocol: '{text}' is not a known protocol or number"
                    ))
                })?)
            }
            FilterOption::Chain => chain = Some(number::<u32>(w, "chain")?),
            FilterOption::Link => link = Some(PathBuf::from(w.expect("a path after 'link'")?)),
            FilterOption::Before
            | FilterOption::After
            | FilterOption::Head
            | FilterOption::Tail => {
                if position.is_some() {
                    return Err(CliError::usage(
                        "give one position: head, tail, before … or after …",
                    ));
                }
                position = Some(match key {
                    FilterOption::Head => Position::Head,
                    FilterOption::Tail => Position::Tail,
                    before_or_after => parse_position(before_or_after == FilterOption::Before, w)?,
                });
            }
            FilterOption::Revision => revision = Some(number::<u64>(w, "revision")?),
            FilterOption::Bpf => {
                bpf = Some(parse_bpf(w, &mut link)?);
            }
        }
    }
    let dev = dev.ok_or_else(|| CliError::usage("expected 'dev DEV'"))?;
    let hook = hook.ok_or_else(|| {
        CliError::usage("expected a hook: ingress, egress, parent H:M or tcx { ingress | egress }")
    })?;
    let args = FilterArgs {
        verb,
        dev,
        hook,
        pref,
        handle: handle_v,
        protocol,
        chain,
        bpf,
        link,
        position,
        revision,
    };
    check(&args)?;
    Ok(args)
}

/// The words after `before` or `after`:
/// `{ id N | pinned PATH | link PATH | head | tail }`.
fn parse_position(before: bool, w: &mut Words) -> Result<Position, CliError> {
    let key = if before { "before" } else { "after" };
    let what = format!("id N, pinned PATH, link PATH, head or tail after '{key}'");
    let word = w.expect(&what)?;
    let rel = match PositionWord::choose(&word)? {
        PositionWord::Head => return Ok(Position::Head),
        PositionWord::Tail => return Ok(Position::Tail),
        PositionWord::Id => Relative::Id(number::<u32>(w, "a program id after 'id'")?),
        PositionWord::Pinned => Relative::Pinned(tc_path(&w.expect("a pinned program PATH")?)),
        PositionWord::Link => Relative::Link(tc_path(&w.expect("a pinned link PATH")?)),
    };
    Ok(if before {
        Position::Before(rel)
    } else {
        Position::After(rel)
    })
}

/// The words after `bpf`, up to the end (a trailing `link PATH` is taken too).
fn parse_bpf(w: &mut Words, link: &mut Option<PathBuf>) -> Result<BpfArgs, CliError> {
    let mut direct_action = false;
    let mut classid = None;
    let mut skip_flags = 0;
    let mut source: Option<ProgSource> = None;
    let mut actions = Vec::new();
    let one_program =
        "give one program: obj FILE, pinned PATH, bytecode CODE or bytecode-file FILE";
    while let Some(word) = w.next() {
        // tc's `bytecode` takes any prefix (`byte`); `bytecode-file` is exact.
        if word == "bytecode-file" || (!word.is_empty() && "bytecode".starts_with(word.as_str())) {
            if source.is_some() {
                return Err(CliError::usage(one_program));
            }
            let what = format!("'{word}'");
            let text = w.expect(&format!("a classic program after {what}"))?;
            source = Some(if word == "bytecode-file" {
                ProgSource::ClassicFile(PathBuf::from(text))
            } else {
                ProgSource::Classic(
                    parse_bytecode(&text).map_err(|e| CliError::usage(e.to_string()))?,
                )
            });
            continue;
        }
        match BpfOption::choose(&word)? {
            BpfOption::DirectAction => direct_action = true,
            BpfOption::Classid => classid = Some(handle(w, "classid")?),
            BpfOption::SkipSw => skip_flags |= cls_flags::SKIP_SW,
            BpfOption::SkipHw => skip_flags |= cls_flags::SKIP_HW,
            BpfOption::Police => {
                return Err(CliError::usage(
                    "'police' is not supported: tcbpf does not build police actions (rate \
                     tables); attach with tcbpf and police with tc, or use tc for the whole line",
                ))
            }
            BpfOption::Obj => {
                if source.is_some() {
                    return Err(CliError::usage(one_program));
                }
                source = Some(ProgSource::Obj(parse_obj(w)?));
            }
            BpfOption::Pinned => {
                if source.is_some() {
                    return Err(CliError::usage(one_program));
                }
                source = Some(ProgSource::Pinned(tc_path(
                    &w.expect("a bpffs path after 'pinned'")?,
                )));
            }
            BpfOption::Action => {
                let kind = w.expect("an action kind after 'action'")?;
                if kind != "bpf" {
                    return Err(CliError::usage(format!(
                        "action '{kind}': tcbpf builds act_bpf actions only ('action bpf pinned \
                         PATH'); gact, police, mirred and the other tc actions are tc's to build"
                    )));
                }
                let how = w.expect("'pinned PATH' after 'action bpf'")?;
                let ActionProgram::Pinned = ActionProgram::choose(&how)?;
                actions.push(tc_path(&w.expect("a bpffs path after 'pinned'")?));
            }
            BpfOption::Link => *link = Some(PathBuf::from(w.expect("a path after 'link'")?)),
        }
    }
    let source = source.ok_or_else(|| {
        CliError::usage(
            "expected 'obj FILE', 'pinned PATH', 'bytecode CODE' or 'bytecode-file FILE' after 'bpf'",
        )
    })?;
    if skip_flags == cls_flags::SKIP_SW | cls_flags::SKIP_HW {
        return Err(CliError::usage("give 'skip_sw' or 'skip_hw', not both"));
    }
    Ok(BpfArgs {
        direct_action,
        classid,
        skip_flags,
        source,
        actions,
    })
}

/// The words after `obj FILE`, stopping at the first word that is not an
/// object option.
fn parse_obj(w: &mut Words) -> Result<ObjArgs, CliError> {
    let file = PathBuf::from(w.expect("an object file after 'obj'")?);
    let mut obj = ObjArgs {
        file,
        kind: ProgKind::Cls,
        section: None,
        program: None,
        export: None,
        allowed_uids: Vec::new(),
        entry_size: Default::default(),
        max_memory: None,
        verbose: false,
    };
    while let Some(word) = w.peek() {
        // `e` stays tc's `export`: entry-size needs at least `ent`.
        if word.len() >= 3 && matches(word, "entry-size") {
            w.next();
            obj.entry_size = entry_size(w)?;
            continue;
        }
        let Ok(key) = ObjOption::choose(word) else {
            break;
        };
        w.next();
        match key {
            ObjOption::Type => obj.kind = prog_kind(w)?,
            ObjOption::Section => obj.section = Some(w.expect("a section name after 'sec'")?),
            ObjOption::Program => obj.program = Some(w.expect("a function name after 'program'")?),
            ObjOption::Export => {
                obj.export = Some(PathBuf::from(w.expect("a socket path after 'export'")?))
            }
            ObjOption::AllowUid => obj.allowed_uids.push(w.number("a uid after 'allow-uid'")?),
            ObjOption::MaxMemory => obj.max_memory = Some(w.number("BYTES after 'max-memory'")?),
            ObjOption::Verbose => obj.verbose = true,
        }
    }
    if obj.export.is_none() {
        obj.export = std::env::var_os(ENV_UDS)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    Ok(obj)
}

/// Rejects combinations that make no sense before anything is done.
fn check(a: &FilterArgs) -> Result<(), CliError> {
    let needs_prog = matches!(a.verb, Verb::Add | Verb::Replace);
    match (&a.bpf, needs_prog) {
        (None, true) => {
            return Err(CliError::usage(
                "expected 'bpf … { obj FILE | pinned PATH | bytecode CODE | bytecode-file FILE }'",
            ))
        }
        (Some(_), false) => return Err(CliError::usage("'bpf …' only goes with add and replace")),
        _ => {}
    }
    if let Hook::Tcx(_) = a.hook {
        if a.pref.is_some() || a.handle.is_some() || a.protocol.is_some() || a.chain.is_some() {
            return Err(CliError::usage(
                "tcx hooks take no pref, handle, protocol or chain",
            ));
        }
        if let Some(b) = &a.bpf {
            if b.classid.is_some() || !b.actions.is_empty() {
                return Err(CliError::usage("tcx hooks take no classid or actions"));
            }
            if b.skip_flags != 0 {
                return Err(CliError::usage("tcx hooks take no skip_sw or skip_hw"));
            }
            if matches!(
                b.source,
                ProgSource::Classic(_) | ProgSource::ClassicFile(_)
            ) {
                return Err(CliError::usage(
                    "tcx hooks take eBPF programs, not classic bytecode",
                ));
            }
        }
        if a.verb == Verb::Replace {
            if a.link.is_none() {
                return Err(CliError::usage(
                    "replace on a tcx hook needs 'link PATH': the link whose program to swap",
                ));
            }
            if a.position.is_some() || a.revision.is_some() {
                return Err(CliError::usage(
                    "replace keeps the link's position: no head, tail, before, after or revision",
                ));
            }
        }
        if (a.position.is_some() || a.revision.is_some()) && a.verb != Verb::Add {
            return Err(CliError::usage(
                "head, tail, before, after and revision go with add",
            ));
        }
    } else if a.link.is_some() {
        return Err(CliError::usage("'link PATH' goes with tcx hooks only"));
    } else if a.position.is_some() || a.revision.is_some() {
        return Err(CliError::usage(
            "head, tail, before, after and revision go with tcx hooks only",
        ));
    }
    if let Some(b) = &a.bpf {
        if b.direct_action && b.classid.is_some() {
            return Err(CliError::usage("give 'da' or 'classid', not both"));
        }
    }
    if a.verb == Verb::Delete && a.handle.is_some() && a.pref.is_none() {
        return Err(CliError::usage(
            "'handle' needs 'pref' to say which filter to delete",
        ));
    }
    Ok(())
}

/// Parses the words after `qdisc`: the verb (`add` or `del`) and the device.
pub fn parse_qdisc(w: &mut Words) -> Result<(bool, String), CliError> {
    let verb = w.expect("a verb: add or del")?;
    let add = match QdiscVerb::choose(&verb)? {
        QdiscVerb::Add => true,
        QdiscVerb::Delete => false,
    };
    let mut dev = None;
    let mut clsact = false;
    while let Some(word) = w.next() {
        match QdiscOption::choose(&word)? {
            QdiscOption::Dev => dev = Some(w.expect("a device name after 'dev'")?),
            QdiscOption::Clsact => clsact = true,
        }
    }
    let dev = dev.ok_or_else(|| CliError::usage("expected 'dev DEV'"))?;
    if !clsact {
        return Err(CliError::usage(
            "expected 'clsact' (the only qdisc tcbpf manages)",
        ));
    }
    Ok((add, dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<FilterArgs, CliError> {
        parse_filter(&mut Words::new(
            line.split_whitespace().map(String::from).collect(),
        ))
    }

    #[test]
    fn full_add_line_parses_into_typed_fields() {
        let a = parse("add dev v0 ingress pref 7 handle 0x3 protocol ip chain 2 bpf da pinned /p")
            .unwrap();
        assert_eq!(a.verb, Verb::Add);
        assert_eq!(a.dev, "v0");
        assert_eq!(a.hook, Hook::Parent(TcHandle::INGRESS));
        assert_eq!((a.pref, a.handle, a.chain), (Some(7), Some(3), Some(2)));
        assert_eq!(a.protocol, Some(Protocol::IP));
        let b = a.bpf.unwrap();
        assert!(b.direct_action);
        assert_eq!(b.source, ProgSource::Pinned("/p".into()));
    }

    #[test]
    fn obj_words_are_collected_for_the_loader() {
        let a =
            parse("add dev v0 parent 1:2 bpf classid 1:3 obj x.o type act sec cls export /u verb")
                .unwrap();
        assert_eq!(a.hook, Hook::Parent(TcHandle::new(1, 2)));
        let b = a.bpf.unwrap();
        assert_eq!(b.classid, Some(TcHandle::new(1, 3)));
        assert_eq!(
            b.source,
            ProgSource::Obj(ObjArgs {
                file: "x.o".into(),
                kind: ProgKind::Act,
                section: Some("cls".into()),
                program: None,
                export: Some("/u".into()),
                allowed_uids: Vec::new(),
                entry_size: Default::default(),
                max_memory: None,
                verbose: true,
            })
        );
    }

    #[test]
    fn tcx_hook_takes_a_link_path_and_refuses_tc_options() {
        let a = parse("add dev v0 tcx egress bpf pinned /p link /l").unwrap();
        assert_eq!(a.hook, Hook::Tcx(Direction::Egress));
        assert_eq!(a.link, Some("/l".into()));
        assert!(parse("add dev v0 tcx egress pref 1 bpf pinned /p").is_err());
        assert!(parse("replace dev v0 tcx egress bpf pinned /p").is_err());
        assert_eq!(
            parse("replace dev v0 tcx egress bpf pinned /p link /l")
                .unwrap()
                .verb,
            Verb::Replace
        );
        assert!(parse("add dev v0 ingress bpf pinned /p link /l").is_err());
    }

    #[test]
    fn bad_lines_get_usage_errors_that_say_what_is_wrong() {
        let msg = |l: &str| parse(l).unwrap_err().message;
        assert!(msg("add dev v0 ingress").contains("expected 'bpf"));
        assert!(msg("add ingress bpf pinned /p").contains("expected 'dev DEV'"));
        assert!(msg("add dev v0 bpf pinned /p").contains("expected a hook"));
        assert!(msg("add dev v0 ingress egress bpf pinned /p").contains("one hook"));
        assert!(msg("add dev v0 ingress protocol bogus bpf pinned /p").contains("'bogus'"));
        assert!(msg("add dev v0 parent 1 bpf pinned /p").contains("not a tc handle"));
        assert!(msg("add dev v0 ingress bpf da classid 1:1 pinned /p").contains("not both"));
        assert!(msg("del dev v0 ingress handle 1").contains("needs 'pref'"));
        assert!(msg("show dev v0 ingress bpf pinned /p").contains("only goes with"));
        assert!(msg("add dev v0 ingress pref 70000 bpf pinned /p").contains("pref"));
        assert_eq!(parse("sh dev v0 eg").unwrap().verb, Verb::Show);
    }

    #[test]
    fn export_socket_defaults_to_tc_bpf_uds() {
        std::env::set_var(ENV_UDS, "/run/from-env");
        let from_env = parse("add dev v0 ingress bpf obj x.o").unwrap();
        let given = parse("add dev v0 ingress bpf obj x.o export /given").unwrap();
        std::env::remove_var(ENV_UDS);
        let export = |a: FilterArgs| match a.bpf.unwrap().source {
            ProgSource::Obj(o) => o.export,
            _ => None,
        };
        assert_eq!(export(from_env), Some("/run/from-env".into()));
        let sized = parse("add dev v0 ingress bpf obj x.o export /u entry-size 28").unwrap();
        match sized.bpf.unwrap().source {
            ProgSource::Obj(o) => assert_eq!(o.entry_size, tcbpf::scm::EntrySize::V28),
            _ => panic!("obj source"),
        }
        assert!(parse("add dev v0 ingress bpf obj x.o entry-size 30")
            .unwrap_err()
            .message
            .contains("'30'"));
        assert_eq!(export(given), Some("/given".into()));
    }

    #[test]
    fn tc_word_forms_parse_to_the_same_fields() {
        let b = |l: &str| parse(l).unwrap().bpf.unwrap();
        assert_eq!(
            b("add dev v0 ingress bpf direct-action object-pinned /p").source,
            b("add dev v0 ingress bpf da fd /p").source
        );
        let words = [
            "add",
            "dev",
            "v0",
            "ingress",
            "bpf",
            "bytecode",
            "1,6 0 0 0",
            "skip_hw",
        ];
        let c = parse_filter(&mut Words::new(words.map(String::from).to_vec()))
            .unwrap()
            .bpf
            .unwrap();
        assert_eq!(c.skip_flags, cls_flags::SKIP_HW);
        assert!(matches!(c.source, ProgSource::Classic(ref i) if i.len() == 1));
        let o = b("add dev v0 ingress bpf obj x.o sec tc program tc3");
        match o.source {
            ProgSource::Obj(o) => assert_eq!(o.program.as_deref(), Some("tc3")),
            _ => panic!("obj"),
        }
        assert!(matches!(
            b("add dev v0 ingress bpf bytecode-file /f").source,
            ProgSource::ClassicFile(_)
        ));
        let msg = |l: &str| parse(l).unwrap_err().message;
        assert!(msg("add dev v0 ingress bpf pinned /p skip_sw skip_hw").contains("not both"));
        assert!(msg("add dev v0 ingress bpf pinned /p police rate 1mbit").contains("'police'"));
        assert!(
            msg("add dev v0 ingress bpf pinned /p action drop").contains("act_bpf actions only")
        );
        assert!(msg("add dev v0 ingress bpf pinned /p bytecode 1,6").contains("one program"));
        assert!(msg("add dev v0 tcx ingress bpf bytecode-file /f").contains("classic"));
    }

    #[test]
    fn qdisc_words_need_dev_and_clsact() {
        let q = |l: &str| {
            parse_qdisc(&mut Words::new(
                l.split_whitespace().map(String::from).collect(),
            ))
        };
        assert_eq!(q("add dev v0 clsact").unwrap(), (true, "v0".to_string()));
        assert_eq!(q("del dev v0 clsact").unwrap(), (false, "v0".to_string()));
        assert!(q("add dev v0").is_err());
        assert!(q("add clsact").is_err());
    }
}

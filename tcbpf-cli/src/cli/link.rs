//! `tcbpf link set dev DEV { xdp | xdpgeneric | xdpdrv | xdpoffload } …`:
//! an XDP program on a device, with the words of `ip link set … xdp`.
//!
//! Without `pin PATH` the program is attached by netlink and belongs to the
//! device until `off` (a program already there is an error, as `ip link`
//! without `-force`). With `pin PATH` it is held by a bpf link pinned
//! there; `link set` again with the same pin swaps the program in one step
//! (`BPF_LINK_UPDATE`), and `off pin PATH` detaches it and removes the pin.
//! Objects load as `filter … obj` does; `export UDS` then sends their maps
//! through the same hand-off (`tcbpf exec bpf import`, `tc exec bpf
//! import`). Attaching is `attach` with an XDP hook; nothing else here
//! touches the kernel but the pin's checks.

use super::error::CliError;
use super::obj::print_load_log;
use super::output::Global;
use super::words::{keywords, Words};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use tcbpf::attach::xdp::{self, XdpMode};
use tcbpf::attach::{self as tc_attach, AttachTarget, Attachment, Hook};
use tcbpf::load::{LoadOptions, ProgKind};
use tcbpf::scm;
use tcbpf::sys;
use tcbpf::tc::{device, Socket};

/// Usage of `tcbpf link`, printed by `tcbpf link help`.
pub const USAGE: &str = "\
Usage: tcbpf [-n NETNS] link set dev DEV { xdp | xdpgeneric | xdpdrv | xdpoffload }
             { obj FILE [ sec NAME ] [ program FUNC ] [ export UDS ] [ verbose ] | pinned PATH | off } [ pin PATH ]
       tcbpf link help

  xdp          native XDP when the driver has it, else generic (the kernel picks)
  xdpgeneric   generic XDP (any device)
  xdpdrv       native XDP, in the driver
  xdpoffload   offloaded to the NIC
  pin PATH     hold the program in a bpf link pinned at PATH (on a bpffs); again
               with the same PATH, the link's program is swapped in one step.
               Without it the program is attached by netlink and stays until 'off'.
  off          detach the device's XDP program(s) in that mode ('xdp': every mode);
               with 'pin PATH', also the link pinned there, and remove the pin
";

keywords! {
    /// The verbs of `tcbpf link`.
    pub(crate) enum LinkVerb("link command") {
        Set = "set",
    }
}

keywords! {
    /// The XDP hook's words (iproute2's).
    pub(crate) enum ModeWord("xdp mode") {
        Auto = "xdp",
        Generic = "xdpgeneric",
        Driver = "xdpdrv",
        Offload = "xdpoffload",
    }
}

keywords! {
    /// What goes on the hook.
    pub(crate) enum Source("program source") {
        Obj = "obj" | "object",
        Pinned = "pinned",
        Off = "off",
    }
}

keywords! {
    /// The options after the source.
    pub(crate) enum LinkOption("link option") {
        Section = "sec" | "section",
        Program = "program",
        Export = "export",
        Verbose = "verbose",
        Pin = "pin",
    }
}

/// What `link set` puts on the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Prog {
    /// `obj FILE [sec NAME] [program FUNC] [export UDS] [verbose]`.
    Obj {
        file: PathBuf,
        section: Option<String>,
        program: Option<String>,
        export: Option<PathBuf>,
        verbose: bool,
    },
    /// `pinned PATH`.
    Pinned(PathBuf),
    /// `off`.
    Off,
}

/// `link set …`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SetArgs {
    dev: String,
    mode: XdpMode,
    prog: Prog,
    pin: Option<PathBuf>,
}

fn parse_set(w: &mut Words) -> Result<SetArgs, CliError> {
    if !w.eat("dev") {
        return Err(CliError::usage("expected 'dev DEV'"));
    }
    let dev = w.expect("a device name after 'dev'")?;
    let mode = match ModeWord::choose(&w.expect("xdp, xdpgeneric, xdpdrv or xdpoffload")?)? {
        ModeWord::Auto => XdpMode::Auto,
        ModeWord::Generic => XdpMode::Generic,
        ModeWord::Driver => XdpMode::Driver,
        ModeWord::Offload => XdpMode::Offload,
    };
    let mut prog = match Source::choose(&w.expect("obj FILE, pinned PATH or off")?)? {
        Source::Obj => Prog::Obj {
            file: PathBuf::from(w.expect("an object FILE after 'obj'")?),
            section: None,
            program: None,
            export: None,
            verbose: false,
        },
        Source::Pinned => Prog::Pinned(PathBuf::from(w.expect("a PATH after 'pinned'")?)),
        Source::Off => Prog::Off,
    };
    let mut pin = None;
    while let Some(word) = w.next() {
        match (LinkOption::choose(&word)?, &mut prog) {
            (LinkOption::Pin, _) => pin = Some(PathBuf::from(w.expect("a PATH after 'pin'")?)),
            (_, Prog::Pinned(_) | Prog::Off) => {
                return Err(CliError::usage(format!(
                    "'{word}' goes only with 'obj FILE'"
                )))
            }
            (LinkOption::Section, Prog::Obj { section, .. }) => {
                *section = Some(w.expect("a section NAME after 'sec'")?)
            }
            (LinkOption::Program, Prog::Obj { program, .. }) => {
                *program = Some(w.expect("a FUNC after 'program'")?)
            }
            (LinkOption::Export, Prog::Obj { export, .. }) => {
                *export = Some(PathBuf::from(w.expect("a UDS after 'export'")?))
            }
            (LinkOption::Verbose, Prog::Obj { verbose, .. }) => *verbose = true,
        }
    }
    Ok(SetArgs {
        dev,
        mode,
        prog,
        pin,
    })
}

/// Runs `tcbpf link …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    match LinkVerb::choose(&w.expect("a link command")?)? {
        LinkVerb::Set => {
            let a = parse_set(w)?;
            set(g, &a)
        }
    }
}

fn set(g: &Global, a: &SetArgs) -> Result<(), CliError> {
    let sock = Socket::open()?;
    let ifindex = device::ifindex(&sock, &a.dev)?;
    let on_dev = |e: CliError| e.context(format!("dev '{}'", a.dev));
    match &a.prog {
        Prog::Off => off(&sock, ifindex, a).map_err(on_dev),
        Prog::Pinned(path) => {
            let prog = sys::obj::get_pinned_prog(path)
                .map_err(|e| CliError::from(e).context(format!("pinned '{}'", path.display())))?;
            put(ifindex, a, prog.as_fd()).map_err(on_dev)
        }
        Prog::Obj {
            file,
            section,
            program,
            export,
            verbose,
        } => {
            let verbose = *verbose || g.verbose;
            let opts = LoadOptions {
                prog_type: ProgKind::Xdp,
                section: section.clone(),
                program: program.clone(),
                verbose,
                ..LoadOptions::default()
            };
            let loaded = tcbpf::load::load_file(file, &opts)?;
            if verbose {
                print_load_log(&loaded);
            }
            if let Err(e) = put(ifindex, a, loaded.main_program().fd.as_fd()) {
                loaded.remove_created_pins();
                return Err(on_dev(e));
            }
            let Some(uds) = export else {
                return Ok(());
            };
            loaded
                .export(uds, &scm::SendOptions::default())
                .map_err(|e| {
                    CliError::from(e).context(format!(
                        "the XDP program '{}' is attached to dev '{}', but its maps were not exported to {}",
                        loaded.filter_name(),
                        a.dev,
                        uds.display()
                    ))
                })
        }
    }
}

/// Puts `prog` on the hook: by netlink, in a new pinned link, or into the
/// link already pinned at `pin` (one `BPF_LINK_UPDATE`).
fn put(ifindex: u32, a: &SetArgs, prog: BorrowedFd<'_>) -> Result<(), CliError> {
    let Some(pin) = &a.pin else {
        let target = AttachTarget::new(
            ifindex,
            Hook::Xdp {
                mode: a.mode,
                link: false,
            },
        );
        tc_attach::attach(&target, prog.into(), "")?;
        return Ok(());
    };
    if pin.symlink_metadata().is_ok() {
        let (link, info) = open_link(pin, ifindex, false)?;
        return xdp::update(&link, prog).map_err(|e| {
            CliError::from(e).context(format!("link {} pinned at '{}'", info.id, pin.display()))
        });
    }
    let target = AttachTarget::new(
        ifindex,
        Hook::Xdp {
            mode: a.mode,
            link: true,
        },
    );
    let Attachment::Link { link, id } = tc_attach::attach(&target, prog.into(), "")? else {
        return Err(CliError::failure("an XDP link attach returned no link"));
    };
    // A link that cannot be pinned is dropped here, which detaches it.
    sys::obj::pin(&link, pin)
        .map_err(|e| CliError::from(e).context(format!("pin link {id} at '{}'", pin.display())))
}

/// Opens the XDP link pinned at `pin`, which must be on device `ifindex`
/// (or, with `detached_ok`, detached from every device: ifindex 0).
fn open_link(
    pin: &Path,
    ifindex: u32,
    detached_ok: bool,
) -> Result<(sys::LinkFd, sys::link::LinkInfo), CliError> {
    let (link, info) = xdp::open_pinned(pin)
        .map_err(|e| CliError::from(e).context(format!("pin '{}'", pin.display())))?;
    if info.ifindex == 0 && !detached_ok {
        return Err(CliError::usage(format!(
            "pin '{}': link {} is detached (remove the pin with 'off pin PATH', then attach anew)",
            pin.display(),
            info.id
        )));
    }
    if info.ifindex != ifindex && info.ifindex != 0 {
        return Err(CliError::usage(format!(
            "pin '{}': link {} is on ifindex {}, not this device (ifindex {ifindex})",
            pin.display(),
            info.id,
            info.ifindex
        )));
    }
    Ok((link, info))
}

/// `off [pin PATH]`: the link pinned at PATH detached (unless it already
/// is) and its pin removed first, then every XDP program left in the mode
/// (links detached, others by netlink).
fn off(sock: &Socket, ifindex: u32, a: &SetArgs) -> Result<(), CliError> {
    if let Some(pin) = &a.pin {
        let (link, info) = open_link(pin, ifindex, true)?;
        if info.ifindex != 0 {
            sys::link::detach(&link)?;
        }
        std::fs::remove_file(pin)
            .map_err(|e| CliError::from(e).context(format!("remove pin '{}'", pin.display())))?;
    }
    for p in xdp::detach(sock, ifindex, a.mode)? {
        if p.link_id != 0 {
            eline!(
                "tcbpf: note: detached XDP link {} (program {}); a pin of it stays until removed \
                 (give 'pin PATH' to remove it too)",
                p.link_id,
                p.prog_id
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<SetArgs, CliError> {
        let mut w = Words::new(line.split_whitespace().map(String::from).collect());
        parse_set(&mut w)
    }

    #[test]
    fn set_takes_iproute2_mode_words_and_the_pin() {
        let a =
            parse("dev v1 xdpdrv obj f.o sec xdp export /run/x.sock pin /sys/fs/bpf/l").unwrap();
        assert_eq!(a.dev, "v1");
        assert_eq!(a.mode, XdpMode::Driver);
        assert_eq!(a.pin.as_deref(), Some(Path::new("/sys/fs/bpf/l")));
        assert_eq!(
            a.prog,
            Prog::Obj {
                file: "f.o".into(),
                section: Some("xdp".into()),
                program: None,
                export: Some("/run/x.sock".into()),
                verbose: false,
            }
        );
        assert_eq!(
            parse("dev v1 xdpgeneric off").unwrap().mode,
            XdpMode::Generic
        );
        assert_eq!(
            parse("dev v1 xdp pinned /p").unwrap().prog,
            Prog::Pinned("/p".into())
        );
    }

    #[test]
    fn set_rejects_what_does_not_fit_with_the_word_named() {
        let e = parse("dev v1 xdpfast off").unwrap_err();
        assert!(
            e.message.contains("unknown xdp mode 'xdpfast'"),
            "{}",
            e.message
        );
        let e = parse("dev v1 xdp off sec xdp").unwrap_err();
        assert!(
            e.message.contains("'sec' goes only with 'obj FILE'"),
            "{}",
            e.message
        );
        let e = parse("dev v1 xdp").unwrap_err();
        assert!(
            e.message.contains("expected obj FILE, pinned PATH or off"),
            "{}",
            e.message
        );
        let e = parse("v1 xdp off").unwrap_err();
        assert!(e.message.contains("expected 'dev DEV'"), "{}", e.message);
    }
}

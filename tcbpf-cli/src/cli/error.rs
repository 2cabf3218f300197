//! Command errors and the exit codes they map to. A library error exits
//! by its `kind()` alone, through the one table every tcbpf binary uses
//! (`tcbpf::ErrorKind::exit_code`): one `From` impl per library error type
//! (sys, io, tc, scm, keeper, load, object parse, maps, upgrade) says only
//! how its message reads. Command modules convert with `?` or
//! `CliError::from`, or name a kind (`CliError::of`) for their own
//! findings; none picks an exit from an errno.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | not found: key, entry, map, pin, queue empty |
//! | 2 | usage or bad input: grammar, sizes, values that do not parse |
//! | 3 | permission denied |
//! | 4 | any other failure (kernel or system error) |

use std::fmt;
use tcbpf::ErrorKind as K;

/// Why a command failed, as an exit code class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit 0: `help` (or `-h`, `--help`) stood at a grammar position.
    /// Not a failure: `cli::run` prints the usage of the object named and
    /// exits 0; a word of help is never taken as a FILE, socket or device.
    Help = 0,
    /// Exit 1 (the library's code for a thing not there).
    NotFound = K::NotFound.exit_code() as isize,
    /// Exit 2 (bad input).
    Usage = K::BadInput.exit_code() as isize,
    /// Exit 3 (permission).
    Permission = K::Permission.exit_code() as isize,
    /// Exit 4 (any other failure).
    Failure = K::System.exit_code() as isize,
}

impl Exit {
    /// The exit of a failure of `kind`, by the library's one table
    /// ([`tcbpf::ErrorKind::exit_code`]).
    pub fn of(kind: K) -> Exit {
        [Exit::NotFound, Exit::Usage, Exit::Permission]
            .into_iter()
            .find(|e| *e as u8 == kind.exit_code())
            .unwrap_or(Exit::Failure)
    }
}

/// A one-line error and its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code class.
    pub exit: Exit,
    /// The message, without the leading `tcbpf: `.
    pub message: String,
}

impl CliError {
    /// A failure of `kind`, exiting as every tcbpf binary does for it.
    pub fn of(kind: tcbpf::ErrorKind, message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::of(kind),
            message: message.into(),
        }
    }

    /// A usage or bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::of(K::BadInput, message)
    }

    /// Help asked at a grammar position (exit 0 with the object's usage).
    pub fn help() -> Self {
        CliError {
            exit: Exit::Help,
            message: String::new(),
        }
    }

    /// A help request raised inside a command whose position has a usage of
    /// its own (`exec bpf graft`): that usage is printed instead of the
    /// object's. Other errors pass through.
    pub fn with_usage(self, usage: &str) -> Self {
        if self.is_help() && self.message.is_empty() {
            CliError {
                exit: Exit::Help,
                message: usage.into(),
            }
        } else {
            self
        }
    }

    /// True when this is [`CliError::help`].
    pub fn is_help(&self) -> bool {
        self.exit == Exit::Help
    }

    /// A not-found error (exit 1).
    pub fn not_found(message: impl Into<String>) -> Self {
        CliError::of(K::NotFound, message)
    }

    /// Any other failure (exit 4).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError::of(K::System, message)
    }

    /// Prefixes the message with context (`map 'x': …`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a refused command lacked and how to get it, added to every
/// permission error (exit 3) as it leaves `tcbpf`: the library's messages
/// name the refused command (`BPF_MAP_CREATE`, `RTM_NEWQDISC`), which says
/// the capability. A refusal by a file's permissions or a keeper's policy
/// names neither and is left as it is.
pub fn with_remedy(mut e: CliError) -> CliError {
    if e.exit != Exit::Permission || e.message.contains("run as root") {
        return e;
    }
    let m = &e.message;
    // Element commands (lookup, update, delete, batch, freeze) refused on
    // a read-only descriptor or a frozen map are refused to root as well:
    // only the commands that create, load, attach or reach objects by id
    // get a remedy.
    const NEEDS_CAP_BPF: &[&str] = &[
        "BPF_MAP_CREATE",
        "BPF_PROG_LOAD",
        "BPF_BTF_LOAD",
        "BPF_LINK_CREATE",
        "BPF_LINK_UPDATE",
        "BPF_LINK_DETACH",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_QUERY",
        "BPF_PROG_TEST_RUN",
    ];
    let needs = if m.contains("needs CAP_") {
        ""
    } else if m.contains("RTM_") {
        " (needs CAP_NET_ADMIN"
    } else if m.contains("_GET_NEXT_ID") || m.contains("_GET_FD_BY_ID") {
        " (needs CAP_SYS_ADMIN"
    } else if NEEDS_CAP_BPF.iter().any(|op| m.contains(op)) {
        " (needs CAP_BPF and CAP_NET_ADMIN"
    } else {
        return e;
    };
    if needs.is_empty() {
        e.message.push_str(": run as root");
    } else {
        e.message.push_str(needs);
        e.message.push_str(": run as root)");
    }
    e
}

/// A step that failed in the middle of a plan the command rolled back
/// (a chain entry, an anchored tcx attach): exit 4 whatever the cause,
/// since what the words named was there when the plan was made.
pub fn rolled_back(e: CliError) -> CliError {
    CliError {
        exit: Exit::Failure,
        ..e
    }
}

/// A failed system call by its kind (the errno's, or the one its call
/// site gave); an error tcbpf made itself (no errno: "not a network
/// namespace") by its io kind.
impl From<tcbpf::sys::Error> for CliError {
    fn from(e: tcbpf::sys::Error) -> Self {
        CliError::of(e.kind(), e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::of(tcbpf::ErrorKind::from_io(&e), tcbpf::sys::strip_os(&e))
    }
}

impl From<tcbpf::tc::Error> for CliError {
    fn from(e: tcbpf::tc::Error) -> Self {
        // Lookups tcbpf makes itself read best as the plain sentence.
        let message = if matches!(e.op, "find device" | "find qdisc") {
            e.message.clone()
        } else {
            e.to_string()
        };
        CliError::of(e.kind(), message)
    }
}

impl From<tcbpf::scm::Error> for CliError {
    fn from(e: tcbpf::scm::Error) -> Self {
        CliError {
            exit: Exit::of(e.kind()),
            message: e.message,
        }
    }
}

/// A map access (typed entries, diff-apply, a policy generation): by its kind.
impl From<tcbpf::maps::Error> for CliError {
    fn from(e: tcbpf::maps::Error) -> Self {
        CliError {
            exit: Exit::of(e.kind()),
            message: e.to_string(),
        }
    }
}

/// A front-end failure (words, opening a MAP): a word of help is the
/// usage; anything else by its kind.
impl From<tcbpf::front::Error> for CliError {
    fn from(e: tcbpf::front::Error) -> Self {
        if e.help {
            return CliError::help();
        }
        CliError {
            exit: Exit::of(e.kind()),
            message: e.message,
        }
    }
}

impl From<tcbpf::keeper::Error> for CliError {
    fn from(e: tcbpf::keeper::Error) -> Self {
        CliError {
            exit: Exit::of(e.kind()),
            message: e.message,
        }
    }
}

/// A failed attach: the kernel's refusal as a tc error, an action's pin
/// as `action bpf pinned: …` (callers add the device where it belongs).
impl From<tcbpf::attach::AttachError> for CliError {
    fn from(e: tcbpf::attach::AttachError) -> Self {
        use tcbpf::attach::AttachError as E;
        match e {
            E::Action { source, .. } => CliError::from(source).context("action bpf pinned"),
            E::Socket(e) | E::Attach(e) => CliError::from(e),
            E::LinkInfo(e) => CliError::from(e),
            E::ClassicOnTcx => CliError::usage(E::ClassicOnTcx.to_string()),
        }
    }
}

/// A failed `chain apply`, each cause as it exits alone: an unreadable
/// object as [`object_read_error`], a missing pin 1, a pin that is no
/// program or a program listed twice 2, another apply holding the hook 4,
/// a refused attach 4 (rolled back, whatever the kernel said). The caller
/// names the hook.
impl From<tcbpf::attach::chain::ApplyError> for CliError {
    fn from(e: tcbpf::attach::chain::ApplyError) -> Self {
        use tcbpf::attach::chain::ApplyError as E;
        match e {
            E::ReadObject { file, source } => object_read_error(&file, source),
            E::Load(e) => CliError::from(e),
            e @ E::NoSuchPin(_) => CliError::not_found(e.to_string()),
            e @ (E::NotAProgram { .. } | E::Duplicate { .. }) => CliError::usage(e.to_string()),
            E::Pinned { path, source } => {
                CliError::from(source).context(format!("pinned '{}'", path.display()))
            }
            E::Dir { path, source } => {
                CliError::from(source).context(format!("chain directory '{}'", path.display()))
            }
            e @ E::Locked { .. } => CliError::failure(e.to_string()),
            E::Hook(e) => CliError::from(e),
            E::Sys(e) => CliError::from(e),
            E::Attach { entry, source } => {
                rolled_back(CliError::from(*source).context(format!("entry {entry}")))
            }
            E::Pin(e) => CliError::from(e).context("pinning a chain link"),
            E::Undone(e) => CliError::from(*e),
        }
    }
}

/// A failed load, by its kind: 1 file or program not found, 2 bad object
/// or request (including a verifier rejection), 3 permission, 4 other (a
/// missing kernel feature; a missing kernel object behind an errno is a
/// failure, not "not found").
impl From<tcbpf::load::LoadError> for CliError {
    fn from(e: tcbpf::load::LoadError) -> Self {
        CliError::of(e.kind(), e.to_string())
    }
}

/// An object file that could not be read (1 when it is not there, 2
/// otherwise, as a parse error), said as the parser says it.
pub fn object_read_error(path: &std::path::Path, e: std::io::Error) -> CliError {
    CliError::from(tcbpf::elf::ParseError::read(&path.display().to_string(), e))
}

/// An object that does not parse (exit 2), or is not there (exit 1).
impl From<tcbpf::elf::ParseError> for CliError {
    fn from(e: tcbpf::elf::ParseError) -> Self {
        CliError::of(e.kind(), e.to_string())
    }
}

/// A failed upgrade: its kind's exit (a refused map is bad input, exit 2).
impl From<tcbpf::upgrade::Error> for CliError {
    fn from(e: tcbpf::upgrade::Error) -> Self {
        CliError {
            exit: Exit::of(e.kind()),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod remedy_tests {
    use super::*;

    fn perm(message: &str) -> String {
        with_remedy(CliError {
            exit: Exit::Permission,
            message: message.into(),
        })
        .message
    }

    #[test]
    fn remedies_name_the_capability_only_where_root_helps() {
        assert!(
            perm("BPF_MAP_CREATE map 'x': Operation not permitted (EPERM)")
                .ends_with("(needs CAP_BPF and CAP_NET_ADMIN: run as root)")
        );
        assert!(
            perm("dev 'lo': RTM_NEWQDISC clsact: Operation not permitted (EPERM)")
                .ends_with("(needs CAP_NET_ADMIN: run as root)")
        );
        assert!(
            perm("BPF_MAP_GET_NEXT_ID after id 0: Operation not permitted (EPERM)")
                .ends_with("(needs CAP_SYS_ADMIN: run as root)")
        );
        // A frozen map or a read-only descriptor refuses root too.
        let frozen = "pinned /x: BPF_MAP_UPDATE_ELEM: Operation not permitted (EPERM)";
        assert_eq!(perm(frozen), frozen);
        // Not a permission error: as it was.
        let e = with_remedy(CliError::failure("BPF_MAP_CREATE: Invalid argument"));
        assert_eq!(e.message, "BPF_MAP_CREATE: Invalid argument");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(errno: i32) -> CliError {
        CliError::from(tcbpf::sys::Error::new(
            "BPF_OBJ_GET",
            std::io::Error::from_raw_os_error(errno),
        ))
    }

    #[test]
    fn errno_classes_are_not_found_permission_and_failure() {
        assert_eq!(sys(libc::ENOENT).exit, Exit::NotFound);
        assert_eq!(sys(libc::EPERM).exit, Exit::Permission);
        assert_eq!(sys(libc::EACCES).exit, Exit::Permission);
        assert_eq!(sys(libc::ESTALE).exit, Exit::Failure);
        assert_eq!(sys(libc::EINVAL).exit, Exit::Failure);
    }

    #[test]
    fn every_kind_exits_with_the_library_code() {
        use tcbpf::ErrorKind as K;
        for kind in [
            K::NotFound,
            K::BadInput,
            K::Permission,
            K::NotListening,
            K::TimedOut,
            K::Interrupted,
            K::System,
        ] {
            assert_eq!(Exit::of(kind) as u8, kind.exit_code(), "{kind:?}");
        }
    }

    #[test]
    fn missing_object_file_is_not_found_and_reads_as_the_parser_says() {
        let path = std::path::Path::new("/nonexistent/tcbpf-object.o");
        let io = std::fs::File::open(path).unwrap_err();
        let e = object_read_error(path, io);
        assert_eq!(e.exit, Exit::NotFound);
        assert!(
            e.message.contains("/nonexistent/tcbpf-object.o"),
            "{}",
            e.message
        );
        assert!(e.message.contains("No such file"), "{}", e.message);
    }

    #[test]
    fn a_load_that_names_a_missing_program_is_not_found() {
        let e = CliError::from(tcbpf::load::LoadError::NoProgram {
            file: "x.o".into(),
            wanted: "program 'nope'".into(),
            available: vec![],
        });
        assert_eq!(e.exit, Exit::NotFound);
    }

    #[test]
    fn a_program_load_refused_before_the_verifier_spoke_is_permission() {
        let load = |errno, log: &str| tcbpf::sys::prog::ProgLoadError {
            error: tcbpf::sys::Error::new(
                "BPF_PROG_LOAD",
                std::io::Error::from_raw_os_error(errno),
            ),
            log: log.into(),
        };
        let exit = |e: tcbpf::sys::prog::ProgLoadError| Exit::of(e.kind());
        assert_eq!(exit(load(libc::EPERM, "log")), Exit::Permission);
        assert_eq!(exit(load(libc::EACCES, " \n")), Exit::Permission);
        assert_eq!(exit(load(libc::EACCES, "R1 invalid")), Exit::Failure);
    }
}

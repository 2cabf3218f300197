//! Command errors and the exit codes they map to. Every mapping of a
//! library error to an exit code is here, one `From` impl per library
//! error type (sys, io, tc, scm, keeper, load, object parse, maps, upgrade), matched
//! exhaustively on the error's kind where it has one; command modules
//! convert with `?` or `CliError::from` and never pick an exit themselves
//! from an errno.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | not found: key, entry, map, pin, queue empty |
//! | 2 | usage or bad input: grammar, sizes, values that do not parse |
//! | 3 | permission denied |
//! | 4 | any other failure (kernel or system error) |

use std::fmt;

/// Why a command failed, as an exit code class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit 0: `help` (or `-h`, `--help`) stood at a grammar position.
    /// Not a failure: `cli::run` prints the usage of the object named and
    /// exits 0; a word of help is never taken as a FILE, socket or device.
    Help = 0,
    /// Exit 1.
    NotFound = 1,
    /// Exit 2.
    Usage = 2,
    /// Exit 3.
    Permission = 3,
    /// Exit 4.
    Failure = 4,
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
    /// A usage or bad-input error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
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
        CliError {
            exit: Exit::NotFound,
            message: message.into(),
        }
    }

    /// Any other failure (exit 4).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Failure,
            message: message.into(),
        }
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

/// The exit class of an errno.
pub fn exit_for_errno(errno: Option<i32>) -> Exit {
    match errno {
        Some(libc::ENOENT) => Exit::NotFound,
        Some(libc::EPERM) | Some(libc::EACCES) => Exit::Permission,
        _ => Exit::Failure,
    }
}

/// The exit class of an io::Error: by its errno, or by its kind when
/// tcbpf made the error itself (a refusal said in words keeps its kind).
pub fn exit_for_io(e: &std::io::Error) -> Exit {
    match (e.raw_os_error(), e.kind()) {
        (Some(errno), _) => exit_for_errno(Some(errno)),
        (None, std::io::ErrorKind::PermissionDenied) => Exit::Permission,
        (None, std::io::ErrorKind::NotFound) => Exit::NotFound,
        (None, std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData) => Exit::Usage,
        (None, _) => Exit::Failure,
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

/// The exit class of a failed program load that a command makes itself
/// (`map add`): no privilege is EPERM, or EACCES before the verifier
/// wrote anything; every other refusal is a failure.
pub fn exit_for_prog_load(errno: Option<i32>, verifier_log: &str) -> Exit {
    match errno {
        Some(libc::EPERM) => Exit::Permission,
        Some(libc::EACCES) if verifier_log.trim().is_empty() => Exit::Permission,
        _ => Exit::Failure,
    }
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

/// A failed system call by its errno; an error tcbpf made itself (no
/// errno: "not a network namespace") by its kind.
impl From<tcbpf::sys::Error> for CliError {
    fn from(e: tcbpf::sys::Error) -> Self {
        CliError {
            exit: exit_for_io(&e.source),
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError {
            exit: exit_for_io(&e),
            message: tcbpf::sys::strip_os(&e),
        }
    }
}

impl From<tcbpf::tc::Error> for CliError {
    fn from(e: tcbpf::tc::Error) -> Self {
        let exit = match e.errno() {
            Some(libc::ENODEV) => Exit::NotFound,
            other => exit_for_errno(other),
        };
        // Lookups tcbpf makes itself read best as the plain sentence.
        let message = if matches!(e.op, "find device" | "find qdisc") {
            e.message.clone()
        } else {
            e.to_string()
        };
        CliError { exit, message }
    }
}

/// The exit class of a library error's kind: every kind has its code here
/// (a kind added to the library fails to compile until it has one).
pub fn exit_for_kind(kind: tcbpf::ErrorKind) -> Exit {
    use tcbpf::ErrorKind as K;
    match kind {
        K::NotFound | K::NotListening => Exit::NotFound,
        K::BadInput => Exit::Usage,
        K::Permission => Exit::Permission,
        K::TimedOut | K::Interrupted | K::System => Exit::Failure,
    }
}

impl From<tcbpf::scm::Error> for CliError {
    fn from(e: tcbpf::scm::Error) -> Self {
        CliError {
            exit: exit_for_kind(e.kind()),
            message: e.message,
        }
    }
}

/// A map access (typed entries, diff-apply, a policy generation): by its kind.
impl From<tcbpf::maps::Error> for CliError {
    fn from(e: tcbpf::maps::Error) -> Self {
        CliError {
            exit: exit_for_kind(e.kind()),
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
            exit: exit_for_kind(e.kind()),
            message: e.message,
        }
    }
}

impl From<tcbpf::keeper::Error> for CliError {
    fn from(e: tcbpf::keeper::Error) -> Self {
        CliError {
            exit: exit_for_kind(e.kind()),
            message: e.message,
        }
    }
}

/// A failed attach: the kernel's refusal as a tc error, an action's pin
/// as `action bpf pinned: …` (callers add the device where it belongs).
impl From<tcbpf::tc::attach::AttachError> for CliError {
    fn from(e: tcbpf::tc::attach::AttachError) -> Self {
        use tcbpf::tc::attach::AttachError as E;
        match e {
            E::Action { source, .. } => CliError::from(source).context("action bpf pinned"),
            E::Socket(e) | E::Attach(e) => CliError::from(e),
            E::LinkInfo(e) => CliError::from(e),
            E::ClassicOnTcx => CliError::usage(E::ClassicOnTcx.to_string()),
        }
    }
}

/// A failed load: 1 file or program not found, 2 bad object or request
/// (including a verifier rejection), 3 permission, 4 other (a missing
/// kernel object behind an errno is a failure, not "not found").
impl From<tcbpf::load::LoadError> for CliError {
    fn from(e: tcbpf::load::LoadError) -> Self {
        let exit = if e.is_not_found() {
            Exit::NotFound
        } else if let tcbpf::load::LoadError::Unsupported { .. } = e {
            // A kernel feature the object needs is missing: 4, as for
            // act_bpf or skip_sw on a kernel without them.
            Exit::Failure
        } else if e.is_bad_input() {
            Exit::Usage
        } else {
            match exit_for_errno(e.errno()) {
                Exit::NotFound => Exit::Failure,
                other => other,
            }
        };
        CliError {
            exit,
            message: e.to_string(),
        }
    }
}

/// An object file that could not be read (1 when it is not there, 2
/// otherwise, as a parse error), said as the parser says it.
pub fn object_read_error(path: &std::path::Path, e: std::io::Error) -> CliError {
    let exit = match e.kind() {
        std::io::ErrorKind::NotFound => Exit::NotFound,
        _ => Exit::Usage,
    };
    let parse = tcbpf::elf::ParseError::new(&path.display().to_string(), tcbpf::sys::strip_os(&e));
    CliError {
        exit,
        message: parse.to_string(),
    }
}

/// An object that does not parse (exit 2).
impl From<tcbpf::elf::ParseError> for CliError {
    fn from(e: tcbpf::elf::ParseError) -> Self {
        CliError::usage(e.to_string())
    }
}

/// A failed upgrade: its kind's exit (a refused map is bad input, exit 2).
impl From<tcbpf::upgrade::Error> for CliError {
    fn from(e: tcbpf::upgrade::Error) -> Self {
        CliError {
            exit: exit_for_kind(e.kind()),
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

    #[test]
    fn errno_classes_are_not_found_permission_and_failure() {
        assert_eq!(exit_for_errno(Some(libc::ENOENT)), Exit::NotFound);
        assert_eq!(exit_for_errno(Some(libc::EPERM)), Exit::Permission);
        assert_eq!(exit_for_errno(Some(libc::EACCES)), Exit::Permission);
        assert_eq!(exit_for_errno(Some(libc::ESTALE)), Exit::Failure);
        assert_eq!(exit_for_errno(None), Exit::Failure);
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
        assert_eq!(
            exit_for_prog_load(Some(libc::EPERM), "log"),
            Exit::Permission
        );
        assert_eq!(
            exit_for_prog_load(Some(libc::EACCES), " \n"),
            Exit::Permission
        );
        assert_eq!(
            exit_for_prog_load(Some(libc::EACCES), "R1 invalid"),
            Exit::Failure
        );
    }
}

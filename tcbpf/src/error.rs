//! The one class of failure every library error reports through its
//! `kind()`, so a caller (the CLI's exit codes, an agent's retry policy)
//! branches on a value instead of on message text. Each error type keeps its
//! own fields and its cause (`source()`); this module holds no logic.

/// The class of a failure, as a caller acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for is not there (a file, a map, a key, a program
    /// section, a set in the keeper).
    NotFound,
    /// The request or the data is wrong: a bad path or argument, an object
    /// that does not parse, a program the verifier rejects, a peer that sent
    /// something that is not a valid transfer.
    BadInput,
    /// The kernel, a socket's mode, a policy or a peer's credentials refused
    /// access (EPERM/EACCES).
    Permission,
    /// No one listens at a Unix socket path.
    NotListening,
    /// A wait ran out.
    TimedOut,
    /// A terminating signal arrived while waiting.
    Interrupted,
    /// Any other system failure.
    System,
}

impl ErrorKind {
    /// The class of an errno, the one classification of a system call's
    /// failure in the workspace (sys, tc, scm, keeper, load and the
    /// binaries all use it): ENOENT and ENODEV are not found, EPERM/EACCES
    /// permission, ECONNREFUSED not listening, ETIMEDOUT timed out, EINTR
    /// interrupted, anything else (EINVAL, E2BIG, ERANGE, EBUSY, …) a
    /// system failure.
    ///
    /// EINVAL is a system failure here because tcbpf checks what it is given
    /// before it calls the kernel: an EINVAL on a well-formed request is the
    /// kernel refusing it. Where the kernel's EINVAL (or EPERM, ENOENT…)
    /// judges input the user gave straight through (a `pinned PATH` that is
    /// a directory, a program the verifier rejects), the call site that
    /// knows says so by giving its error that kind
    /// ([`crate::sys::Error::with_kind`], a variant with its own `kind()`),
    /// never by picking an exit code.
    pub fn from_errno(errno: Option<i32>) -> ErrorKind {
        match errno {
            Some(libc::ENOENT) | Some(libc::ENODEV) => ErrorKind::NotFound,
            Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
            Some(libc::ECONNREFUSED) => ErrorKind::NotListening,
            Some(libc::ETIMEDOUT) => ErrorKind::TimedOut,
            Some(libc::EINTR) => ErrorKind::Interrupted,
            _ => ErrorKind::System,
        }
    }

    /// The exit code of every tcbpf binary (`tcbpf`, `tcbpf-exporter`,
    /// `tcbpf-sync`, `tcbpf-dump`) for a failure of this kind, the one
    /// table (README, "Exit status"): 1 not found (nobody listening at a
    /// socket included), 2 usage or bad input, 3 permission denied, 4 any
    /// other failure (timed out, interrupted, system). 0 is success.
    pub const fn exit_code(self) -> u8 {
        match self {
            ErrorKind::NotFound | ErrorKind::NotListening => 1,
            ErrorKind::BadInput => 2,
            ErrorKind::Permission => 3,
            ErrorKind::TimedOut | ErrorKind::Interrupted | ErrorKind::System => 4,
        }
    }

    /// The class of an io::Error: its errno when it has one, else its
    /// std kind (NotFound, PermissionDenied, InvalidInput/InvalidData,
    /// TimedOut, Interrupted).
    pub fn from_io(e: &std::io::Error) -> ErrorKind {
        if let Some(errno) = e.raw_os_error() {
            return ErrorKind::from_errno(Some(errno));
        }
        use std::io::ErrorKind as Io;
        match e.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::Permission,
            Io::InvalidInput | Io::InvalidData => ErrorKind::BadInput,
            Io::TimedOut => ErrorKind::TimedOut,
            Io::Interrupted => ErrorKind::Interrupted,
            _ => ErrorKind::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;
    use std::error::Error as _;
    use std::io;

    fn sys_enoent() -> crate::sys::Error {
        crate::sys::Error::new("OBJ_GET", io::Error::from_raw_os_error(libc::ENOENT)).on("/x")
    }

    #[test]
    fn wrapped_errors_keep_the_system_call_as_source_and_message() {
        let tc: crate::tc::Error = sys_enoent().into();
        assert_eq!(
            tc.to_string(),
            "OBJ_GET /x: No such file or directory (ENOENT)"
        );
        assert_eq!(tc.kind(), ErrorKind::NotFound);
        let src = tc.source().expect("tc error keeps its cause");
        assert_eq!(src.to_string(), sys_enoent().to_string());

        let scm: crate::scm::Error =
            crate::sys::Error::new("connect", io::Error::from_raw_os_error(libc::EACCES)).into();
        assert_eq!(scm.kind(), ErrorKind::Permission);
        let io = scm.source().and_then(|s| s.source()).expect("errno kept");
        assert!(io.to_string().contains("os error 13"));

        let keeper: crate::keeper::Error = scm.into();
        assert_eq!(keeper.kind(), ErrorKind::Permission);
        assert!(keeper.source().is_some());
    }

    #[test]
    fn parse_errors_keep_the_btf_error_they_were_made_from() {
        let btf_err = crate::btf::Btf::parse(&[1, 2, 3]).unwrap_err();
        let text = btf_err.to_string();
        let e = crate::elf::ParseError::new("x.o", text.clone()).with_cause(btf_err);
        assert_eq!(e.kind(), ErrorKind::BadInput);
        assert_eq!(e.source().map(|s| s.to_string()), Some(text));
    }

    #[test]
    fn errno_classes() {
        assert_eq!(
            ErrorKind::from_errno(Some(libc::EPERM)),
            ErrorKind::Permission
        );
        assert_eq!(ErrorKind::from_errno(Some(libc::EINVAL)), ErrorKind::System);
        assert_eq!(ErrorKind::from_errno(Some(libc::E2BIG)), ErrorKind::System);
        assert_eq!(
            ErrorKind::from_errno(Some(libc::ENODEV)),
            ErrorKind::NotFound
        );
        assert_eq!(ErrorKind::from_errno(Some(libc::EBUSY)), ErrorKind::System);
        assert_eq!(ErrorKind::from_errno(None), ErrorKind::System);
    }

    #[test]
    fn a_call_site_that_knows_better_gives_the_kind() {
        let e = crate::sys::Error::new("BPF_OBJ_GET", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.kind(), ErrorKind::Permission);
        let e = e.with_kind(ErrorKind::BadInput);
        assert_eq!(e.kind(), ErrorKind::BadInput);
        assert_eq!(e.errno(), Some(libc::EACCES), "the errno is kept");
        // Carried through the errors that wrap a system call.
        let tc: crate::tc::Error = e.into();
        assert_eq!(tc.kind(), ErrorKind::BadInput);
        let dir = std::env::temp_dir();
        let e = crate::sys::obj::get_pinned_map(&dir, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    }

    #[test]
    fn a_program_load_is_refused_access_only_before_the_verifier_spoke() {
        let load = |errno, log: &str| crate::sys::prog::ProgLoadError {
            error: crate::sys::Error::new("BPF_PROG_LOAD", io::Error::from_raw_os_error(errno)),
            log: log.into(),
        };
        assert_eq!(load(libc::EPERM, "x").kind(), ErrorKind::Permission);
        assert_eq!(load(libc::EACCES, "\n").kind(), ErrorKind::Permission);
        assert_eq!(load(libc::EACCES, "R1 !read_ok").kind(), ErrorKind::System);
    }

    #[test]
    fn every_kind_has_the_documented_exit_code() {
        let table = [
            (ErrorKind::NotFound, 1),
            (ErrorKind::NotListening, 1),
            (ErrorKind::BadInput, 2),
            (ErrorKind::Permission, 3),
            (ErrorKind::TimedOut, 4),
            (ErrorKind::Interrupted, 4),
            (ErrorKind::System, 4),
        ];
        for (kind, code) in table {
            assert_eq!(kind.exit_code(), code, "{kind:?}");
        }
    }
}

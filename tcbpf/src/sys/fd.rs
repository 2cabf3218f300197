//! Typed owned descriptors for bpf objects. The kernel opens every bpf
//! object descriptor with `O_CLOEXEC`; a descriptor from elsewhere (inherited,
//! received) is checked to be the right kind before it becomes one of these.

use super::{Error, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// What kind of bpf object a descriptor refers to, read from the name of its
/// anonymous inode (`anon_inode:bpf-map`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    Map,
    Prog,
    Btf,
    Link,
}

impl FdKind {
    fn inode_name(self) -> &'static str {
        match self {
            FdKind::Map => "anon_inode:bpf-map",
            FdKind::Prog => "anon_inode:bpf-prog",
            FdKind::Btf => "anon_inode:btf",
            FdKind::Link => "anon_inode:bpf-link",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            FdKind::Map => "bpf map",
            FdKind::Prog => "bpf program",
            FdKind::Btf => "BTF object",
            FdKind::Link => "bpf link",
        }
    }
}

/// Checks that `fd` refers to a bpf object of `kind`.
pub(crate) fn check_kind(fd: BorrowedFd<'_>, kind: FdKind) -> Result<()> {
    let raw = fd.as_raw_fd();
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .map_err(|e| Error::new("readlink", e).on(format!("fd {raw}")))?;
    let target = link.to_string_lossy();
    // Links show as "anon_inode:bpf-link" ("bpf_link" on older kernels)
    // and, on some kernels, with a bracketed type suffix; maps and
    // programs are exact.
    let legacy_link = kind == FdKind::Link && target == "anon_inode:bpf_link";
    if legacy_link
        || target == kind.inode_name()
        || target.starts_with(&format!("{}[", kind.inode_name()))
    {
        Ok(())
    } else {
        Err(Error::new(
            "check fd",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("is {target}, not a {}", kind.noun()),
            ),
        )
        .on(format!("fd {raw}")))
    }
}

macro_rules! bpf_fd {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(OwnedFd);

        impl $name {
            /// Wraps a descriptor the kernel just returned for this kind of
            /// object; the caller knows what it is.
            pub(crate) fn from_kernel(fd: OwnedFd) -> Self {
                $name(fd)
            }

            /// Takes ownership of a descriptor from elsewhere (inherited,
            /// received), after checking it is this kind of bpf object.
            /// On error the descriptor is closed.
            pub fn from_owned(fd: OwnedFd) -> Result<Self> {
                check_kind(fd.as_fd(), $kind)?;
                Ok($name(fd))
            }

            /// Duplicates a descriptor this process holds but does not own
            /// (an inherited `fd N`), close-on-exec, after checking its kind.
            pub fn dup_from_raw(raw: RawFd) -> Result<Self> {
                if raw < 0 {
                    return Err(Error::new(
                        "check fd",
                        io::Error::from_raw_os_error(libc::EBADF),
                    )
                    .on(format!("fd {raw}"))
                    .with_kind(crate::ErrorKind::BadInput));
                }
                // SAFETY: fcntl(F_DUPFD_CLOEXEC) on any integer is memory safe; a
                // closed descriptor yields EBADF.
                let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
                if dup < 0 {
                    let e = Error::new("check fd", io::Error::last_os_error())
                        .on(format!("fd {raw}"));
                    // A number that is no open descriptor is the caller's input.
                    return Err(if e.errno() == Some(libc::EBADF) {
                        e.with_kind(crate::ErrorKind::BadInput)
                    } else {
                        e
                    });
                }
                // SAFETY: dup is a fresh descriptor that nothing else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(dup) };
                check_kind(owned.as_fd(), $kind).map_err(|e| e.on(format!("fd {raw}")))?;
                Ok($name(owned))
            }

            /// A second descriptor for the same object, close-on-exec.
            pub fn try_clone(&self) -> Result<Self> {
                self.0
                    .try_clone()
                    .map($name)
                    .map_err(|e| Error::new("dup", e).on(format!("fd {}", self.0.as_raw_fd())))
            }

            /// The descriptor, given up.
            pub fn into_owned(self) -> OwnedFd {
                self.0
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl IntoRawFd for $name {
            fn into_raw_fd(self) -> RawFd {
                self.0.into_raw_fd()
            }
        }
    };
}

bpf_fd!(
    /// A bpf map descriptor.
    MapFd,
    FdKind::Map
);
bpf_fd!(
    /// A bpf program descriptor.
    ProgFd,
    FdKind::Prog
);
bpf_fd!(
    /// A loaded BTF object descriptor.
    BtfFd,
    FdKind::Btf
);
bpf_fd!(
    /// A bpf link descriptor (tcx and other link-based attachments).
    LinkFd,
    FdKind::Link
);

/// Turns a bpf(2) return value that is a new descriptor into an `OwnedFd`.
pub(crate) fn owned_from_ret(ret: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

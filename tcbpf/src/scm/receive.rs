//! The importer's side: bind a socket path (mode 0600 unless asked),
//! receive a whole transfer with every sender's credentials checked, and
//! check each descriptor is the map its entry describes.
//!
//! On any error every descriptor received so far is closed (they are owned
//! values dropped with the error), and dropping the [`Receiver`] unlinks the
//! socket path it created (never a path it did not create).

use super::error::{Error, Result};
use super::socket;
use super::wire::{self, EntrySize, MapDesc, ObjectId, MAX_DATAGRAM_LEN, MAX_MAPS_PER_DATAGRAM};
use crate::sys::info::{map_info, MapInfo};
use crate::sys::signal::{self, StopSignals, STOP_SIGNALS};
use crate::sys::unix::{self, Credentials, Wake};
use crate::sys::MapFd;
use crate::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default socket mode: owner read/write only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How to receive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// Give up after this long (None: wait forever).
    pub timeout: Option<Duration>,
    /// Senders accepted besides root and this process's own uid.
    pub allowed_uids: Vec<u32>,
    /// End the wait with [`ErrorKind::Interrupted`] on SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE or SIGALRM, unless the
    /// process ignores it (blocks them in the calling thread for the wait; meant for
    /// single-threaded programs such as the CLI).
    pub stop_on_signals: bool,
    /// Receive the maps inheritable (no `MSG_CMSG_CLOEXEC`), for the exec
    /// proxy, which hands them to the command it becomes: that saves one
    /// `fcntl` per map between receiving and `execve`. Everything else
    /// tcbpf holds stays close-on-exec; rejected descriptors are closed as
    /// always. Leave it off in programs that fork or exec other things.
    pub inheritable: bool,
}

/// One received map: its entry, the descriptor (checked to be a bpf map of
/// the entry's type and sizes) and what the kernel says about it.
#[derive(Debug)]
pub struct ReceivedMap {
    /// The entry the exporter sent.
    pub desc: MapDesc,
    /// The map, close-on-exec.
    pub fd: MapFd,
    /// The kernel's info (name, kernel id, flags…).
    pub info: MapInfo,
}

/// A whole transfer.
#[derive(Debug)]
pub struct Received {
    /// The exporting object.
    pub object: ObjectId,
    /// Every map, in the order sent.
    pub maps: Vec<ReceivedMap>,
    /// True when the descriptors arrived without close-on-exec
    /// ([`ReceiveOptions::inheritable`]).
    pub inheritable: bool,
    /// The generation of `struct bpf_elf_map` the exporter sent (20, 24,
    /// 28 or 36 bytes per entry); the maps are the same whatever it is.
    pub entry_size: EntrySize,
}

/// A datagram dropped because its sender is not allowed; its descriptors
/// were closed.
#[derive(Debug, Clone)]
pub struct Dropped {
    /// The sender's credentials, None when the datagram carried none.
    pub creds: Option<Credentials>,
    /// How many descriptors it carried (all closed).
    pub fds: usize,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.creds {
            Some(c) => write!(
                f,
                "dropped a datagram from uid {} (pid {}, gid {}) that is not allowed; closed its {} descriptor(s)",
                c.uid, c.pid, c.gid, self.fds
            ),
            None => write!(
                f,
                "dropped a datagram without sender credentials; closed its {} descriptor(s)",
                self.fds
            ),
        }
    }
}

/// A bound importer socket. Dropping it closes the socket and unlinks its
/// path (when the path is still this socket).
#[derive(Debug)]
pub struct Receiver {
    sock: OwnedFd,
    path: PathBuf,
    inode: Option<(u64, u64)>,
    /// The stop signals blocked since before the bind, when asked for
    /// ([`Receiver::bind_stoppable`]), so no signal lands between binding and
    /// waiting and kills the process with its socket file left behind.
    stop: Option<StopSignals>,
}

impl Receiver {
    /// Binds a datagram socket at `path` with file mode `mode` (see
    /// [`DEFAULT_MODE`]), with SO_PASSCRED on from the start. Fails when the
    /// path exists or does not fit `sun_path`.
    pub fn bind(path: &Path, mode: u32) -> Result<Receiver> {
        Self::bind_inner(path, mode, None)
    }

    /// Like [`Receiver::bind`], but blocks the terminating signals first
    /// (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE,
    /// SIGALRM; not those the process ignores), in the calling thread: a signal that arrives from now on ends the wait of
    /// [`Receiver::receive`] as [`ErrorKind::Interrupted`], and the socket
    /// path is unlinked. For single-threaded programs such as the CLI.
    pub fn bind_stoppable(path: &Path, mode: u32) -> Result<Receiver> {
        let stop = StopSignals::new(&STOP_SIGNALS)
            .map_err(|e| Error::os("signalfd", "stop signals", e))?;
        Self::bind_inner(path, mode, Some(stop))
    }

    fn bind_inner(path: &Path, mode: u32, stop: Option<StopSignals>) -> Result<Receiver> {
        socket::check_path(path)?;
        if socket::path_exists(path) {
            return Err(Error::bad(format!(
                "socket path {} already exists (remove it or pick another path)",
                path.display()
            )));
        }
        let sock = socket::dgram_socket()?;
        socket::set_passcred(sock.as_fd())?;
        // A failed bind created nothing: nothing to remove.
        socket::bind_with_mode(sock.as_fd(), path, mode)?;
        let inode = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(Receiver {
            sock,
            path: path.to_path_buf(),
            inode,
            stop,
        })
    }

    /// Takes over a datagram socket bound by someone else (systemd socket
    /// activation) at `path`: SO_PASSCRED is turned on; the path is never
    /// unlinked by this receiver (its owner removes it).
    pub fn from_socket(sock: OwnedFd, path: &Path) -> Result<Receiver> {
        socket::set_passcred(sock.as_fd())?;
        Ok(Receiver {
            sock,
            path: path.to_path_buf(),
            inode: None,
            stop: None,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives one whole transfer. Datagrams from senders other than root,
    /// this process's uid and `opts.allowed_uids` are dropped (their
    /// descriptors closed) and reported to `on_drop`; anything malformed
    /// ends the transfer with an error and closes everything received.
    pub fn receive(
        &self,
        opts: &ReceiveOptions,
        mut on_drop: impl FnMut(&Dropped),
    ) -> Result<Received> {
        let own_stop = if opts.stop_on_signals && self.stop.is_none() {
            Some(
                StopSignals::new(&STOP_SIGNALS)
                    .map_err(|e| Error::os("signalfd", "stop signals", e))?,
            )
        } else {
            None
        };
        let stop = self.stop.as_ref().or(own_stop.as_ref());
        let (uid, euid) = unix::own_uids();
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        let mut transfer: Option<(ObjectId, u16)> = None;
        let mut entry_size: Option<EntrySize> = None;
        let mut maps: Vec<ReceivedMap> = Vec::new();
        let mut checker = MapCheck::default();
        loop {
            if let Some((_, total)) = &transfer {
                if maps.len() == usize::from(*total) {
                    break;
                }
            }
            let left = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(self.timed_out(opts, &transfer, maps.len()));
                    }
                    Some(d - now)
                }
            };
            match unix::wait_readable(self.sock.as_fd(), stop, left)
                .map_err(|e| Error::os("poll", self.path.display().to_string(), e))?
            {
                Wake::Readable => {}
                Wake::Again => continue,
                Wake::TimedOut => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(self.timed_out(opts, &transfer, maps.len()));
                    }
                    continue;
                }
                Wake::Signal(sig) => {
                    return Err(Error::new(
                        ErrorKind::Interrupted,
                        format!(
                            "interrupted by {} while waiting on {}; closed {} received map(s)",
                            signal::signal_name(sig),
                            self.path.display(),
                            maps.len()
                        ),
                    ))
                }
            }
            let dgram =
                match unix::recv_datagram(self.sock.as_fd(), MAX_DATAGRAM_LEN, opts.inheritable) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(Error::os("recvmsg", self.path.display().to_string(), e)),
                };
            let allowed = dgram.creds.is_some_and(|c| {
                c.uid == 0 || c.uid == uid || c.uid == euid || opts.allowed_uids.contains(&c.uid)
            });
            if !allowed {
                on_drop(&Dropped {
                    creds: dgram.creds,
                    fds: dgram.fds.len(),
                });
                continue; // dgram (and its descriptors) dropped here
            }
            let n = maps.len();
            let at = |what: String| Error::bad(format!("datagram after {n} map(s): {what}"));
            if dgram.ctrl_truncated {
                return Err(at(format!(
                    "control message truncated (MSG_CTRUNC): more than {MAX_MAPS_PER_DATAGRAM} descriptors"
                )));
            }
            if dgram.truncated {
                return Err(at(format!(
                    "payload larger than {MAX_DATAGRAM_LEN} bytes (MSG_TRUNC)"
                )));
            }
            if let Some((level, kind)) = dgram.other_cmsgs.first() {
                return Err(at(format!(
                    "unexpected control message (level {level}, type {kind}), expected SCM_RIGHTS"
                )));
            }
            if !dgram.saw_rights {
                return Err(at("no SCM_RIGHTS control message (no descriptors)".into()));
            }
            let chunk = wire::decode_datagram(&dgram.bytes, dgram.fds.len())
                .map_err(|e| at(e.to_string()).with_cause(e))?;
            match entry_size {
                Some(size) if size != chunk.entry_size => {
                    return Err(at(format!(
                        "map entries changed from {size} to {} bytes",
                        chunk.entry_size
                    )))
                }
                _ => entry_size = Some(chunk.entry_size),
            }
            match &transfer {
                None => transfer = Some((chunk.object.clone(), chunk.total)),
                Some((object, total)) => {
                    if *total != chunk.total {
                        return Err(at(format!(
                            "count num_ent changed from {total} to {}",
                            chunk.total
                        )));
                    }
                    if *object != chunk.object {
                        return Err(at(format!(
                            "object changed from '{}' to '{}'",
                            object.name, chunk.object.name
                        )));
                    }
                }
            }
            let expected = (usize::from(chunk.total) - n).min(MAX_MAPS_PER_DATAGRAM);
            if chunk.maps.len() != expected {
                return Err(at(format!(
                    "count num_ent {} leaves {} map(s) to come, so this datagram should carry {expected}, but it carries {}",
                    chunk.total,
                    usize::from(chunk.total) - n,
                    chunk.maps.len()
                )));
            }
            if dgram.fds.len() != chunk.maps.len() {
                return Err(at(format!(
                    "{} descriptor(s) for {} map entries",
                    dgram.fds.len(),
                    chunk.maps.len()
                )));
            }
            for (i, (desc, fd)) in chunk.maps.into_iter().zip(dgram.fds).enumerate() {
                maps.push(checker.check(n + i, desc, fd)?);
            }
        }
        let (object, _) = transfer.unwrap_or_default();
        Ok(Received {
            object,
            maps,
            inheritable: opts.inheritable,
            entry_size: entry_size.unwrap_or_default(),
        })
    }

    fn timed_out(
        &self,
        opts: &ReceiveOptions,
        transfer: &Option<(ObjectId, u16)>,
        got: usize,
    ) -> Error {
        let secs = opts.timeout.map_or(0.0, |t| t.as_secs_f64());
        let what = match transfer {
            Some((_, total)) => format!("received {got} of {total} maps"),
            None => "received nothing".to_string(),
        };
        Error::new(
            ErrorKind::TimedOut,
            format!(
                "timed out after {secs}s waiting on {} ({what}); closed every map received",
                self.path.display()
            ),
        )
    }

    /// Closes the socket and unlinks its path now (as drop does).
    pub fn close(self) {}
}

impl AsFd for Receiver {
    /// The bound socket, for a caller that waits on it with other
    /// descriptors (the keeper's poll loop) before calling `receive`.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.inode {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Scratch space for checking received maps: the probe's key and value
/// buffers, reused across maps, and the CPU count once a per-CPU map shows up.
#[derive(Default)]
pub(crate) struct MapCheck {
    key: Vec<u8>,
    value: Vec<u8>,
    cpus: Option<usize>,
}

impl MapCheck {
    /// Checks that `fd` is a bpf map with the type and sizes `desc` gives.
    ///
    /// Fast path: the kernel's map info (safe to ask of any descriptor: a
    /// non-map bpf object fills the same zeroed buffer with its own info,
    /// a non-bpf descriptor fails), compared with the entry, then a lookup
    /// that only a map gets past (see `socket::probe_is_map`). Whenever the
    /// kernel's answer is not certain, the descriptor's inode name decides
    /// (`MapFd::from_owned`), and it words the error.
    pub(crate) fn check(
        &mut self,
        index: usize,
        desc: MapDesc,
        fd: OwnedFd,
    ) -> Result<ReceivedMap> {
        let raw = fd.as_raw_fd();
        let not_a_map = |e: crate::sys::Error| {
            Error::bad(format!(
                "map {index} (entry id {}): descriptor is not a bpf map: {e}",
                desc.id
            ))
        };
        let info = match map_info(fd.as_fd()) {
            Ok(info) => info,
            Err(e) => {
                // Not a bpf object at all, most likely: the inode name says.
                MapFd::from_owned(fd).map_err(not_a_map)?;
                return Err(e.into());
            }
        };
        if info.map_type != desc.map_type
            || info.key_size != desc.key_size
            || info.value_size != desc.value_size
        {
            // A different map, or another kind of bpf object: say which.
            let fd = MapFd::from_owned(fd).map_err(not_a_map)?;
            let info = map_info(&fd)?;
            return Err(Error::bad(format!(
                "map {index} (entry id {}): entry says type {} key {} value {}, but fd {raw} is map '{}' of type {} key {} value {}",
                desc.id, desc.map_type, desc.key_size, desc.value_size, info.name, info.map_type, info.key_size, info.value_size
            )));
        }
        let value_len = self.value_len(&info);
        self.key.clear();
        self.key.resize(info.key_size as usize, 0);
        self.value.clear();
        self.value.resize(value_len, 0);
        let fd = match socket::probe_is_map(fd.as_fd(), &self.key, &mut self.value) {
            Some(true) => MapFd::from_kernel(fd),
            _ => MapFd::from_owned(fd).map_err(not_a_map)?,
        };
        Ok(ReceivedMap { desc, fd, info })
    }

    /// Bytes a lookup of this map writes: the value, or one 8-aligned value
    /// per possible CPU for per-CPU maps.
    fn value_len(&mut self, info: &MapInfo) -> usize {
        let size = info.value_size as usize;
        if info.kind().is_some_and(|k| k.is_percpu()) {
            let cpus = *self
                .cpus
                .get_or_insert_with(|| crate::sys::possible_cpus().unwrap_or(4096));
            size.next_multiple_of(8) * cpus
        } else {
            size
        }
    }
}

/// Binds `path` (mode [`DEFAULT_MODE`]), receives one transfer and unlinks
/// the path: the agent's one-call import.
pub fn receive_maps(path: &Path, opts: &ReceiveOptions) -> Result<Received> {
    let receiver = if opts.stop_on_signals {
        Receiver::bind_stoppable(path, DEFAULT_MODE)?
    } else {
        Receiver::bind(path, DEFAULT_MODE)?
    };
    receiver.receive(opts, |_| {})
}

//! The client's side: connect to a keeper (checking it runs as root or as
//! this user), ask, and take the reply: a listing, or maps as descriptors,
//! each checked as `exec bpf import` checks what it receives.
//!
//! It never binds anything and never execs (that is `exec`).

use super::proto::{self, Access, Listing, Op, Request, Status};
use super::{Error, Result};
use crate::scm::socket as scmsock;
use crate::scm::{wire, MapCheck, ObjectId, Received};
use crate::sys;
use crate::sys::unix::{self, Wake};
use crate::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client waits for a whole reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a keeper.
#[derive(Debug)]
pub struct Client {
    sock: OwnedFd,
    path: PathBuf,
}

/// Maps a keeper handed over.
#[derive(Debug)]
pub struct Got {
    /// The maps, as an import would have received them.
    pub received: Received,
    /// True when the descriptors are read-only.
    pub read_only: bool,
}

impl Client {
    /// Connects to the keeper at `path`. Refuses a keeper that runs as
    /// neither root nor this process's user: a socket that hands out maps
    /// is a trust boundary both ways.
    pub fn connect(path: &Path) -> Result<Client> {
        let sock = sys::net::unix_socket(libc::SOCK_SEQPACKET)
            .map_err(|e| Error::os("socket", "AF_UNIX SOCK_SEQPACKET", e))?;
        scmsock::connect(sock.as_fd(), path).map_err(|e| {
            let mut err = Error::from(e);
            if err.kind == ErrorKind::NotListening {
                err.message = format!(
                    "no keeper is listening on {} (start 'tcbpf keeper {}' first)",
                    path.display(),
                    path.display()
                );
            }
            err
        })?;
        let (_, uid, _) = sys::net::peer_credentials(sock.as_fd())
            .map_err(|e| Error::os("getsockopt", "SO_PEERCRED", e))?;
        let (me, _) = unix::own_uids();
        if uid != 0 && uid != me {
            return Err(Error::new(
                ErrorKind::Permission,
                format!(
                    "the keeper at {} runs as uid {uid}, neither root nor you (uid {me}): not trusted",
                    path.display()
                ),
            ));
        }
        Ok(Client {
            sock,
            path: path.to_path_buf(),
        })
    }

    fn send(&self, req: &Request) -> Result<()> {
        let bytes = proto::encode_request(req).map_err(|e| Error::new(ErrorKind::BadInput, e.0))?;
        unix::send_datagram(self.sock.as_fd(), &bytes, &[]).map_err(|e| self.refused_or(e))
    }

    /// The keeper's own reason when it refused this connection before the
    /// request went out (it answers "busy: …" and closes, so the send
    /// fails with EPIPE or ECONNRESET while the answer waits unread);
    /// otherwise the failed send.
    fn refused_or(&self, e: std::io::Error) -> Error {
        if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
            // A pending ECONNRESET is reported before the queued answer,
            // and only once: the second read finds the answer.
            for _ in 0..2 {
                match unix::recv_datagram(self.sock.as_fd(), proto::MAX_REPLY_LEN, false) {
                    Ok(d) if !d.bytes.is_empty() => {
                        if let Err(refusal) = self.header(&d) {
                            return refusal;
                        }
                        break;
                    }
                    Err(r) if r.raw_os_error() == Some(libc::ECONNRESET) => continue,
                    _ => break,
                }
            }
        }
        Error::os("sendmsg", self.path.display().to_string(), e)
    }

    /// One reply message (descriptors inheritable when asked), within
    /// `deadline`.
    fn recv(&self, deadline: Instant, inheritable: bool) -> Result<unix::RawDatagram> {
        // The keeper closing with our request unread (it answered "busy")
        // makes the kernel report ECONNRESET once, before the answer that
        // is still queued: read on after the first one.
        let mut reset_seen = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "the keeper at {} did not answer in time",
                        self.path.display()
                    ),
                ));
            }
            match unix::wait_readable(self.sock.as_fd(), None, Some(left))
                .map_err(|e| Error::os("poll", self.path.display().to_string(), e))?
            {
                Wake::Readable => {}
                _ => continue,
            }
            match unix::recv_datagram(self.sock.as_fd(), proto::MAX_REPLY_LEN, inheritable) {
                Ok(d) if d.bytes.is_empty() && !d.truncated => {
                    return Err(Error::new(
                        ErrorKind::System,
                        format!(
                            "the keeper at {} closed the connection",
                            self.path.display()
                        ),
                    ))
                }
                Ok(d) => return Ok(d),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) && !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(e) => return Err(Error::os("recvmsg", self.path.display().to_string(), e)),
            }
        }
    }

    /// Checks a reply's header; a refusal becomes the error it names.
    fn header<'a>(&self, d: &'a unix::RawDatagram) -> Result<(u8, &'a [u8])> {
        if d.truncated || d.ctrl_truncated {
            return Err(Error::new(
                ErrorKind::System,
                "reply larger than the protocol allows (truncated)",
            ));
        }
        let (h, body) = proto::decode_reply(&d.bytes)
            .map_err(|e| Error::new(ErrorKind::System, format!("keeper reply: {e}")))?;
        let kind = match h.status {
            Status::Ok => return Ok((h.flags, body)),
            Status::NotFound => ErrorKind::NotFound,
            Status::BadRequest => ErrorKind::BadInput,
            Status::Denied => ErrorKind::Permission,
            Status::Failure => ErrorKind::System,
        };
        Err(Error::new(
            kind,
            format!("keeper: {}", String::from_utf8_lossy(body)),
        ))
    }

    fn listing(&self, op: Op) -> Result<Listing> {
        self.send(&Request::new(op, "", &[], Access::Best))?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut text = Vec::new();
        loop {
            let d = self.recv(deadline, false)?;
            if !d.fds.is_empty() {
                return Err(Error::new(
                    ErrorKind::System,
                    "listing came with descriptors",
                ));
            }
            let (flags, body) = self.header(&d)?;
            text.extend_from_slice(body);
            if text.len() > 64 * 1024 * 1024 {
                return Err(Error::new(ErrorKind::System, "listing larger than 64 MiB"));
            }
            if flags & proto::FLAG_MORE == 0 {
                break;
            }
        }
        let text = String::from_utf8(text)
            .map_err(|_| Error::new(ErrorKind::System, "listing is not UTF-8"))?;
        proto::decode_listing(&text).map_err(|e| Error::new(ErrorKind::System, e.0))
    }

    /// The sets and maps this client may get.
    pub fn list(&self) -> Result<Listing> {
        self.listing(Op::List)
    }

    /// The listing with the keeper's counters and recent clients.
    pub fn status(&self) -> Result<Listing> {
        self.listing(Op::Status)
    }

    /// Gets maps: the set `set` (empty: the only set this client may get,
    /// or the one holding `maps[0]`), only `maps` when given. With
    /// `inheritable` the descriptors arrive without close-on-exec, for a
    /// process about to exec the command that uses them.
    pub fn get(
        &self,
        set: &str,
        maps: &[String],
        access: Access,
        inheritable: bool,
    ) -> Result<Got> {
        self.send(&Request::new(Op::Get, set, maps, access))?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut checker = MapCheck::default();
        let mut got = Vec::new();
        let mut transfer: Option<(ObjectId, u16)> = None;
        let mut read_only;
        loop {
            let d = self.recv(deadline, inheritable)?;
            let (flags, body) = self.header(&d)?;
            let n = got.len();
            let at = |what: String| {
                Error::new(
                    ErrorKind::System,
                    format!("keeper reply after {n} map(s): {what}"),
                )
            };
            let chunk = wire::decode_chunk(body).map_err(|e| at(e.to_string()))?;
            match &transfer {
                None => transfer = Some((chunk.object.clone(), chunk.total)),
                Some((_, total)) if *total != chunk.total => {
                    return Err(at(format!("count changed from {total} to {}", chunk.total)))
                }
                _ => {}
            }
            read_only = flags & proto::FLAG_READ_ONLY != 0;
            let left = usize::from(chunk.total) - n;
            if chunk.maps.len() != left.min(wire::MAX_MAPS_PER_DATAGRAM)
                || d.fds.len() != chunk.maps.len()
            {
                return Err(at(format!(
                    "{} entries and {} descriptor(s) where {} were due",
                    chunk.maps.len(),
                    d.fds.len(),
                    left.min(wire::MAX_MAPS_PER_DATAGRAM)
                )));
            }
            for (i, (desc, fd)) in chunk.maps.into_iter().zip(d.fds).enumerate() {
                got.push(checker.check(n + i, desc, fd)?);
            }
            if got.len() == usize::from(chunk.total) {
                break;
            }
        }
        let (object, _) = transfer.unwrap_or_default();
        Ok(Got {
            received: Received {
                object,
                maps: got,
                inheritable,
                // The keeper answers in today's 36-byte entries.
                entry_size: Default::default(),
            },
            read_only,
        })
    }

    /// Sends raw bytes (and descriptors) as one request without waiting
    /// for the reply (for tests of hostile clients).
    pub fn send_raw(&self, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<()> {
        unix::send_datagram(self.sock.as_fd(), bytes, fds).map_err(|e| self.refused_or(e))
    }

    /// Sends raw bytes as one request (for tests of hostile clients) and
    /// returns the reply's status and body.
    pub fn raw_request(
        &self,
        bytes: &[u8],
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(Status, Vec<u8>)> {
        self.send_raw(bytes, fds)?;
        let d = self.recv(Instant::now() + REPLY_TIMEOUT, false)?;
        let (h, body) = proto::decode_reply(&d.bytes)
            .map_err(|e| Error::new(ErrorKind::System, format!("keeper reply: {e}")))?;
        Ok((h.status, body.to_vec()))
    }
}

/// Gets one map named `[SET/]MAP` (the `keeper SOCK [SET/]MAP` reference
/// of the map helper, the exporter and `map watch`): read-only when
/// `read_only`, else the best access the policy grants.
pub fn get_map(sock: &Path, name: &str, read_only: bool) -> Result<crate::sys::MapFd> {
    let (set, map) = name.split_once('/').unwrap_or(("", name));
    let access = if read_only {
        Access::ReadOnly
    } else {
        Access::Best
    };
    get(sock, set, &[map.to_string()], access, false)?
        .received
        .maps
        .into_iter()
        .next()
        .map(|m| m.fd)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::System,
                format!("keeper {}: sent no map for '{name}'", sock.display()),
            )
        })
}

/// Connects to the keeper at `sock` and gets maps (see [`Client::get`]).
pub fn get(
    sock: &Path,
    set: &str,
    maps: &[String],
    access: Access,
    inheritable: bool,
) -> Result<Got> {
    Client::connect(sock)?.get(set, maps, access, inheritable)
}

//! The keeper's loop: one thread polls the import socket (exports arrive
//! as iproute2 transfers, checked by `scm::Receiver`), the client socket
//! (SOCK_SEQPACKET; each connection identified by SO_PEERCRED), every
//! client connection and a signalfd for SIGTERM/SIGINT.
//!
//! Replies go out non-blocking through a queue per connection: while a
//! connection's reply is not sent whole, the loop waits for room on that
//! socket alone and reads no further request from it, so a client that
//! does not read costs only itself (and is dropped after
//! [`SEND_PATIENCE`] without progress). A malformed request is answered
//! with the reason and the connection closed; descriptors a client sends
//! are closed unread.
//!
//! Each new connection is let in or answered "busy" as
//! [`super::admission`] decides (root and the policy's `rw` users are
//! never shut out). At the open-files limit a spare descriptor, kept for
//! that, is closed to accept (and answer) the waiting connection; when
//! none can be freed the listener rests [`ACCEPT_BACKOFF`] instead of
//! spinning.
//!
//! The loop never prints: it reports events to a log callback,
//! rate-limited by kind ([`super::ratelog`]).

use super::admission::{self, Admission, Open};
use super::policy::{Grant, Peer, Policy};
use super::proto::{self, Access, ClientLine, Listing, Op, Request, Status};
use super::ratelog::{LogKind, RateLog};
use super::reply::Outgoing;
use super::store::{Set, Store};
use super::{Error, Result};
use crate::scm::socket as scmsock;
use crate::scm::{ReceiveOptions, Receiver};
use crate::sys;
use crate::sys::signal::{StopSignals, STOP_SIGNALS};
use crate::sys::unix;
use crate::ErrorKind;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection idle this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one import transfer may take once its first datagram arrived.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(1);
/// A client whose reply makes no progress this long (it does not read) is
/// dropped. Only that client waits: the loop goes on serving the others.
pub const SEND_PATIENCE: Duration = Duration::from_secs(5);
/// How long the listener rests when the keeper is at its open-files limit
/// and no descriptor could be freed to accept with.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up at most (the others wait their turn
/// behind the clients already connected).
const ACCEPT_BATCH: usize = 64;
/// Clients remembered for `status`.
const RECENT_CLIENTS: usize = 64;

/// A callback that takes one line (events, the ready message).
pub type LineFn = Box<dyn FnMut(&str)>;

/// What to run.
pub struct Config {
    /// The client socket path (SOCK).
    pub sock: PathBuf,
    /// The import socket path (default `SOCK.import`).
    pub import: PathBuf,
    /// The policy (empty: root only).
    pub policy: Policy,
    /// A bpffs directory to pin the sets in and pick them up from.
    pub state: Option<PathBuf>,
    /// Mode of the client socket file (the import socket is always 0600).
    pub mode: u32,
    /// Sockets handed over by systemd (client, import), instead of binding.
    pub activated: Option<(OwnedFd, OwnedFd)>,
    /// Called once the sockets are ready (sd_notify READY=1).
    pub on_ready: Option<LineFn>,
    /// Where events go (one line each).
    pub log: LineFn,
}

impl Config {
    /// A keeper at `sock` with the defaults: import at `SOCK.import`,
    /// root-only policy, no state, mode 0600, events dropped.
    pub fn new(sock: &Path) -> Config {
        let mut import = sock.as_os_str().to_owned();
        import.push(".import");
        Config {
            sock: sock.to_path_buf(),
            import: PathBuf::from(import),
            policy: Policy::default(),
            state: None,
            mode: 0o600,
            activated: None,
            on_ready: None,
            log: Box::new(|_| {}),
        }
    }
}

/// The listening client socket; unlinks the path it bound on drop.
struct Listener {
    sock: OwnedFd,
    path: Option<(PathBuf, (u64, u64))>,
}

impl Listener {
    fn bind(path: &Path, mode: u32) -> Result<Listener> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::new(
                ErrorKind::BadInput,
                format!(
                    "socket path {} already exists (is a keeper running? remove it or pick another path)",
                    path.display()
                ),
            ));
        }
        let sock = sys::net::unix_socket(libc::SOCK_SEQPACKET)
            .map_err(|e| Error::os("socket", "AF_UNIX SOCK_SEQPACKET", e))?;
        scmsock::bind_with_mode(sock.as_fd(), path, mode)?;
        let inode = std::fs::symlink_metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| Error::os("stat", path.display().to_string(), e))?;
        let l = Listener {
            sock,
            path: Some((path.to_path_buf(), inode)),
        };
        sys::net::listen(l.sock.as_fd(), 128)
            .map_err(|e| Error::os("listen", path.display().to_string(), e))?;
        Ok(l)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, inode)) = &self.path {
            let now = std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if now == Some(*inode) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// One client connection.
struct Conn {
    sock: OwnedFd,
    peer: Peer,
    /// Root or a user the policy gives `rw`: never limited per user, and
    /// may take the place of an untrusted connection.
    trusted: bool,
    /// When it was accepted (the oldest untrusted one is evicted first).
    since: Instant,
    /// Its last request, or the last progress of its reply.
    last: Instant,
    /// Reply messages not sent yet, in order.
    out: VecDeque<Outgoing>,
}

/// What the keeper counts (shown by `status`).
#[derive(Debug, Default, Clone)]
struct Counters {
    connections: u64,
    served: u64,
    maps_sent: u64,
    lists: u64,
    refused: u64,
    refused_connections: u64,
    evicted: u64,
    fd_limit: u64,
    imports: u64,
    import_errors: u64,
    dropped_slow: u64,
}

/// A running keeper.
pub struct Keeper {
    listener: Listener,
    receiver: Receiver,
    store: Store,
    policy: Policy,
    conns: Vec<Conn>,
    counters: Counters,
    recent: VecDeque<ClientLine>,
    started: Instant,
    log: LineFn,
    rate: RateLog,
    /// A descriptor held only to be closed at the open-files limit, so
    /// that one waiting connection can be accepted and answered.
    spare: Option<OwnedFd>,
    /// The listener is not polled until then (open-files limit, nothing
    /// to free).
    listen_after: Option<Instant>,
}

impl Keeper {
    /// Binds (or takes over) the sockets and picks up the state.
    pub fn start(mut config: Config) -> Result<(Keeper, Option<LineFn>)> {
        let store = Store::open(config.state.as_deref(), &mut config.log)
            .map_err(|m| Error::new(ErrorKind::BadInput, m))?;
        let (listener, receiver) = match config.activated.take() {
            Some((client, import)) => (
                Listener {
                    sock: client,
                    path: None,
                },
                Receiver::from_socket(import, &config.import)?,
            ),
            None => {
                let listener = Listener::bind(&config.sock, config.mode)?;
                let receiver = Receiver::bind(&config.import, crate::scm::DEFAULT_MODE)?;
                (listener, receiver)
            }
        };
        let keeper = Keeper {
            listener,
            receiver,
            store,
            policy: config.policy,
            conns: Vec::new(),
            counters: Counters::default(),
            recent: VecDeque::new(),
            started: Instant::now(),
            log: config.log,
            rate: RateLog::new(Instant::now()),
            spare: open_spare(),
            listen_after: None,
        };
        Ok((keeper, config.on_ready.take()))
    }

    /// The sets held (for tests and status).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGTERM or SIGINT (blocked in this thread and read from
    /// a signalfd), then closes every connection and unlinks the sockets
    /// it bound (dropping the keeper).
    pub fn serve(mut self) -> Result<()> {
        let stop = StopSignals::new(&STOP_SIGNALS)
            .map_err(|e| Error::os("signalfd", "SIGTERM/SIGINT", e))?;
        self.serve_until(&stop)
    }

    fn serve_until(&mut self, stop: &StopSignals) -> Result<()> {
        loop {
            let now = Instant::now();
            let listening = self.listen_after.map_or(true, |t| now >= t);
            if listening {
                self.listen_after = None;
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3 + self.conns.len());
            fds.push(pollfd(stop.fd(), libc::POLLIN));
            let mut l = pollfd(self.listener.sock.as_fd(), libc::POLLIN);
            if !listening {
                l.fd = -1; // resting: poll ignores a negative fd
            }
            fds.push(l);
            fds.push(pollfd(self.receiver.as_fd(), libc::POLLIN));
            for c in &self.conns {
                // A connection with a reply on its way is only waited on
                // for room; its next request waits in its socket.
                let events = if c.out.is_empty() {
                    libc::POLLIN
                } else {
                    libc::POLLOUT
                };
                fds.push(pollfd(c.sock.as_fd(), events));
            }
            let timeout = match self.listen_after {
                Some(t) => t.saturating_duration_since(now).as_millis().clamp(1, 1000) as i32,
                None => 1000,
            };
            sys::net::poll(&mut fds, timeout).map_err(|e| Error::os("poll", "keeper", e))?;
            if fds[0].revents != 0 {
                let sig = stop.take().unwrap_or(0);
                let name = crate::sys::signal::signal_name(sig);
                self.flush_logs(true);
                (self.log)(&format!(
                    "{name}: stopping; {} connection(s) closed, {} set(s) released",
                    self.conns.len(),
                    self.store.sets().count()
                ));
                return Ok(());
            }
            // Clients first, in the order polled (their indexes shift
            // when one closes, so walk backwards).
            for i in (0..self.conns.len()).rev() {
                let ev = fds[3 + i].revents;
                if ev == 0 {
                    continue;
                }
                let keep = if self.conns[i].out.is_empty() {
                    self.serve_conn(i)
                } else {
                    self.flush(i)
                };
                if !keep {
                    self.conns.swap_remove(i);
                }
            }
            if fds[1].revents != 0 {
                self.accept();
            }
            if fds[2].revents != 0 {
                self.import();
            }
            self.expire(Instant::now());
            self.flush_logs(false);
        }
    }

    /// Closes idle connections, and those whose reply made no progress
    /// for [`SEND_PATIENCE`].
    fn expire(&mut self, now: Instant) {
        for i in (0..self.conns.len()).rev() {
            let c = &self.conns[i];
            let idle = now.duration_since(c.last);
            if c.out.is_empty() && idle >= IDLE_TIMEOUT {
                self.conns.swap_remove(i);
            } else if !c.out.is_empty() && idle >= SEND_PATIENCE {
                self.counters.dropped_slow += 1;
                let line = format!(
                    "dropped pid {} uid {} mid-reply: does not read its replies ({} s without room)",
                    c.peer.pid,
                    c.peer.uid,
                    SEND_PATIENCE.as_secs()
                );
                self.conns.swap_remove(i);
                self.log_limited(LogKind::Dropped, &line);
            }
        }
    }

    /// Logs `line` unless its kind is over its rate limit.
    fn log_limited(&mut self, kind: LogKind, line: &str) {
        self.flush_logs(false);
        if self.rate.allow(kind) {
            (self.log)(line);
        }
    }

    /// Says how many lines each kind left out, for windows that passed
    /// (every kind when `all`).
    fn flush_logs(&mut self, all: bool) {
        for line in self.rate.roll(Instant::now(), all) {
            (self.log)(&line);
        }
    }

    /// Accepts the connections waiting (at most [`ACCEPT_BATCH`]); at the
    /// open-files limit, see [`Keeper::at_fd_limit`].
    fn accept(&mut self) {
        for n in 0..ACCEPT_BATCH {
            // The listener may be blocking (systemd hands it over so): ask
            // poll before every accept after the first.
            if n > 0 && !self.connection_waiting() {
                return;
            }
            match sys::net::accept_nonblocking(self.listener.sock.as_fd()) {
                Ok(Some(sock)) => self.admit(sock, false),
                Ok(None) => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.at_fd_limit(&e);
                    return;
                }
                Err(e) => {
                    self.log_limited(LogKind::Accept, &format!("accept: {e}"));
                    self.listen_after = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// The open-files limit: closes the spare descriptor to accept one
    /// waiting connection (a trusted client takes the place of the oldest
    /// untrusted connection; anyone else is answered "busy"), then takes a
    /// spare again; when there is none, the listener rests
    /// [`ACCEPT_BACKOFF`] so the loop never spins on a failing accept.
    fn at_fd_limit(&mut self, e: &std::io::Error) {
        self.counters.fd_limit += 1;
        let line = format!(
            "accept: {} (the keeper's open-files limit, {} connection(s) open): answering one waiting client, resting {} ms when nothing can be freed",
            sys::strip_os(e),
            self.conns.len(),
            ACCEPT_BACKOFF.as_millis()
        );
        self.log_limited(LogKind::Accept, &line);
        if let Some(spare) = self.spare.take() {
            drop(spare);
            if self.connection_waiting() {
                if let Ok(Some(sock)) = sys::net::accept_nonblocking(self.listener.sock.as_fd()) {
                    self.admit(sock, true);
                }
            }
            self.spare = open_spare();
        }
        if self.spare.is_none() {
            self.spare = open_spare();
            self.listen_after = Some(Instant::now() + ACCEPT_BACKOFF);
        }
    }

    /// True when a connection waits on the listener (poll, no wait).
    fn connection_waiting(&self) -> bool {
        let mut p = [pollfd(self.listener.sock.as_fd(), libc::POLLIN)];
        sys::net::poll(&mut p, 0).is_ok_and(|n| n > 0 && p[0].revents & libc::POLLIN != 0)
    }

    /// Admits a new connection, or answers it "busy" and closes it (see
    /// the module doc). `at_limit`: accepted with the spare descriptor.
    fn admit(&mut self, sock: OwnedFd, at_limit: bool) {
        self.counters.connections += 1;
        let Ok((pid, uid, gid)) = sys::net::peer_credentials(sock.as_fd()) else {
            return;
        };
        let groups = sys::net::peer_groups(sock.as_fd()).unwrap_or_default();
        let peer = Peer {
            pid,
            uid,
            gid,
            groups,
        };
        let trusted = self.policy.is_trusted(&peer);
        let open = Open {
            total: self.conns.len(),
            untrusted: self.conns.iter().filter(|c| !c.trusted).count(),
            of_user: self.conns.iter().filter(|c| c.peer.uid == uid).count(),
        };
        match admission::decide(uid, trusted, at_limit, open) {
            Admission::Busy(reason) => return self.busy(&sock, &peer, &reason),
            Admission::EvictOldestUntrusted => self.evict_oldest_untrusted(),
            Admission::Admit => {}
        }
        let now = Instant::now();
        self.conns.push(Conn {
            sock,
            peer,
            trusted,
            since: now,
            last: now,
            out: VecDeque::new(),
        });
    }

    /// Answers a connection "busy: REASON" (non-blocking; it is closed
    /// next by the caller) and logs it, rate-limited.
    fn busy(&mut self, sock: &OwnedFd, peer: &Peer, reason: &str) {
        self.counters.refused_connections += 1;
        let msg = proto::encode_reply(Status::Failure, 0, format!("busy: {reason}").as_bytes());
        let _ = unix::send_datagram(sock.as_fd(), &msg, &[]);
        self.log_limited(
            LogKind::Connection,
            &format!(
                "refused connection of pid {} uid {}: busy: {reason}",
                peer.pid, peer.uid
            ),
        );
    }

    /// Closes the oldest untrusted connection to make room for a trusted
    /// client.
    fn evict_oldest_untrusted(&mut self) {
        let Some(i) = (0..self.conns.len())
            .filter(|&i| !self.conns[i].trusted)
            .min_by_key(|&i| self.conns[i].since)
        else {
            return;
        };
        let c = self.conns.swap_remove(i);
        self.counters.evicted += 1;
        self.busy(
            &c.sock,
            &c.peer,
            "closed to make room for root or a user the policy gives 'rw'",
        );
    }

    fn import(&mut self) {
        let opts = ReceiveOptions {
            timeout: Some(IMPORT_TIMEOUT),
            ..Default::default()
        };
        let mut dropped = Vec::new();
        let got = self
            .receiver
            .receive(&opts, |d| dropped.push(d.to_string()));
        for d in dropped {
            (self.log)(&format!("import: {d}"));
        }
        match got {
            Ok(received) => {
                let n = received.maps.len();
                let object = received.object.name.clone();
                match self.store.insert(received, &mut self.log) {
                    Ok((name, replaced)) => {
                        self.counters.imports += 1;
                        (self.log)(&format!(
                            "import: set '{name}' ({n} map(s) from object '{object}'){}",
                            if replaced {
                                ", replacing the previous one"
                            } else {
                                ""
                            }
                        ));
                    }
                    Err(e) => {
                        self.counters.import_errors += 1;
                        (self.log)(&format!("import of '{object}' not kept: {e}"));
                    }
                }
            }
            Err(e) => {
                self.counters.import_errors += 1;
                (self.log)(&format!("import refused: {e}"));
            }
        }
    }

    /// Reads and answers what connection `i` sent; false to close it.
    fn serve_conn(&mut self, i: usize) -> bool {
        let sock = self.conns[i].sock.as_fd();
        let dgram = match unix::recv_datagram(sock, proto::MAX_REQUEST_LEN, false) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        // Any descriptors the client sent are closed with `dgram`.
        if dgram.bytes.is_empty() && !dgram.truncated && !dgram.saw_rights {
            return false; // end of the connection
        }
        self.conns[i].last = Instant::now();
        let problem = if dgram.truncated {
            Some(format!(
                "request larger than {} bytes",
                proto::MAX_REQUEST_LEN
            ))
        } else if dgram.saw_rights || dgram.ctrl_truncated || !dgram.other_cmsgs.is_empty() {
            Some(format!(
                "requests carry no control messages ({} descriptor(s) closed)",
                dgram.fds.len()
            ))
        } else {
            None
        };
        let req = match problem {
            Some(p) => Err(p),
            None => proto::decode_request(&dgram.bytes).map_err(|e| e.0),
        };
        drop(dgram);
        match req {
            Err(reason) => {
                self.refuse(i, Status::BadRequest, &format!("bad request: {reason}"));
                false
            }
            Ok(req) => {
                self.answer(i, &req);
                self.flush(i)
            }
        }
    }

    /// Queues a refusal on connection `i` and sends what it can.
    fn refuse(&mut self, i: usize, status: Status, reason: &str) {
        self.counters.refused += 1;
        let peer = &self.conns[i].peer;
        let line = format!("refused pid {} uid {}: {reason}", peer.pid, peer.uid);
        self.log_limited(LogKind::Request, &line);
        let msg = proto::encode_reply(status, 0, reason.as_bytes());
        self.conns[i].out.push_back(Outgoing::Message(msg));
        self.flush(i);
    }

    /// Queues the answer to `req` on connection `i` (sent by `flush`).
    fn answer(&mut self, i: usize, req: &Request) {
        match req.op {
            Some(Op::List) | Some(Op::Status) => {
                let status = req.op == Some(Op::Status);
                let peer = self.conns[i].peer.clone();
                if status && !self.policy.may_see_status(&peer) {
                    self.refuse(
                        i,
                        Status::Denied,
                        "status is for root and users allowed every set",
                    );
                    return;
                }
                self.counters.lists += 1;
                let text = proto::encode_listing(&self.listing(&peer, status));
                let chunks = proto::text_chunks(&text);
                let last = chunks.len() - 1;
                for (n, body) in chunks.into_iter().enumerate() {
                    let flags = if n < last { proto::FLAG_MORE } else { 0 };
                    let msg = proto::encode_reply(Status::Ok, flags, body);
                    self.conns[i].out.push_back(Outgoing::Message(msg));
                }
            }
            _ => self.get(i, req),
        }
    }

    fn listing(&self, peer: &Peer, status: bool) -> Listing {
        let mut l = Listing::default();
        for s in self.store.sets() {
            if let Some(g) = self.policy.grant(peer, &s.name) {
                l.sets.push(s.info(g.word()));
            }
        }
        if status {
            let c = &self.counters;
            l.counters = vec![
                ("pid".into(), u64::from(std::process::id())),
                ("uptime_secs".into(), self.started.elapsed().as_secs()),
                ("sets".into(), self.store.sets().count() as u64),
                ("maps".into(), self.store.map_count() as u64),
                ("connections_open".into(), self.conns.len() as u64),
                ("connections".into(), c.connections),
                ("served".into(), c.served),
                ("maps_sent".into(), c.maps_sent),
                ("lists".into(), c.lists),
                ("refused".into(), c.refused),
                ("refused_connections".into(), c.refused_connections),
                ("evicted".into(), c.evicted),
                ("fd_limit".into(), c.fd_limit),
                ("imports".into(), c.imports),
                ("import_errors".into(), c.import_errors),
                ("dropped_slow".into(), c.dropped_slow),
            ];
            l.clients = self
                .recent
                .iter()
                .map(|r| ClientLine {
                    alive: Path::new(&format!("/proc/{}", r.pid)).exists(),
                    ..r.clone()
                })
                .collect();
        }
        l
    }

    /// Which set a `get` means: the one named, or (unnamed) the only set
    /// the peer may see, or the one holding the first map asked for.
    fn resolve(
        &self,
        peer: &Peer,
        req: &Request,
    ) -> std::result::Result<Arc<Set>, (Status, String)> {
        if !req.set.is_empty() {
            return self
                .store
                .shared(&req.set)
                .ok_or_else(|| (Status::NotFound, format!("no set '{}'", req.set)));
        }
        let visible: Vec<Arc<Set>> = self
            .store
            .shared_sets()
            .filter(|s| self.policy.grant(peer, &s.name).is_some())
            .collect();
        let candidates: Vec<Arc<Set>> = match req.maps.first() {
            None => visible,
            Some(m) => visible.into_iter().filter(|s| s.has_map(m)).collect(),
        };
        match candidates.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err((
                Status::NotFound,
                match req.maps.first() {
                    Some(m) => format!("no set you may get holds a map '{m}'"),
                    None => "no set you may get".to_string(),
                },
            )),
            many => Err((
                Status::BadRequest,
                format!(
                    "several sets match ({}): name one with 'set NAME'",
                    many.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    fn get(&mut self, i: usize, req: &Request) {
        let peer = self.conns[i].peer.clone();
        let set = match self.resolve(&peer, req) {
            Ok(s) => s,
            Err((status, reason)) => return self.refuse(i, status, &reason),
        };
        let Some(grant) = self.policy.grant(&peer, &set.name) else {
            let reason = format!(
                "uid {} may not get set '{}' (no 'allow' line in the policy)",
                peer.uid, set.name
            );
            return self.refuse(i, Status::Denied, &reason);
        };
        let read_only = grant == Grant::ReadOnly || req.access == Access::ReadOnly;
        let picked = match set.select(&req.maps) {
            Ok(p) => p,
            Err(missing) => {
                let reason = format!("set '{}' has no map '{missing}'", set.name);
                return self.refuse(i, Status::NotFound, &reason);
            }
        };
        self.counters.served += 1;
        self.counters.maps_sent += picked.len() as u64;
        if self.recent.len() == RECENT_CLIENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(ClientLine {
            pid: peer.pid,
            uid: peer.uid,
            set: set.name.clone(),
            access: if read_only { "ro" } else { "rw" }.into(),
            maps: picked.len() as u32,
            alive: true,
        });
        self.conns[i].out.push_back(Outgoing::Maps {
            set,
            picked,
            read_only,
            chunk: 0,
        });
    }

    /// Sends what connection `i` has queued until its socket is full
    /// (then poll says when there is room again); false to close it (the
    /// client went away, or a read-only descriptor could not be opened).
    fn flush(&mut self, i: usize) -> bool {
        let now = Instant::now();
        loop {
            let c = &mut self.conns[i];
            let Some(front) = c.out.front_mut() else {
                return true;
            };
            let sent = front.send(c.sock.as_fd());
            match sent {
                Ok(done) => {
                    c.last = now;
                    if done {
                        c.out.pop_front();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    self.counters.dropped_slow += 1;
                    let p = &self.conns[i].peer;
                    let line =
                        format!("dropped pid {} uid {}: {}", p.pid, p.uid, sys::strip_os(&e));
                    self.log_limited(LogKind::Dropped, &line);
                    return false;
                }
            }
        }
    }
}

fn pollfd(fd: BorrowedFd<'_>, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// The spare descriptor (see `Keeper::spare`): /dev/null, close-on-exec.
fn open_spare() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

/// Runs a keeper with `config` until SIGTERM/SIGINT: binds, calls
/// `on_ready`, serves, cleans up.
pub fn run(config: Config) -> Result<()> {
    // Blocked before binding: a SIGTERM from now on ends the loop cleanly
    // instead of killing the process with its socket files left behind.
    let stop =
        StopSignals::new(&STOP_SIGNALS).map_err(|e| Error::os("signalfd", "SIGTERM/SIGINT", e))?;
    let (mut keeper, ready) = Keeper::start(config)?;
    if let Some(mut ready) = ready {
        ready(&format!(
            "{} set(s), {} map(s) held",
            keeper.store.sets().count(),
            keeper.store.map_count()
        ));
    }
    keeper.serve_until(&stop)
}

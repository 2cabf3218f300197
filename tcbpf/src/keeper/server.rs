//! The keeper's loop: one thread polls the import socket (exports arrive
//! as iproute2 transfers, checked by `scm::Receiver`), the client socket
//! (SOCK_SEQPACKET; each connection identified by SO_PEERCRED), every
//! client connection and a signalfd for SIGTERM/SIGINT.
//!
//! Replies go out non-blocking: a client that does not read its reply is
//! dropped, never waited for. A malformed request is answered with the
//! reason and the connection closed; descriptors a client sends are closed
//! unread. The loop never prints: it reports events to a log callback.

use super::policy::{Grant, Peer, Policy};
use super::proto::{self, Access, ClientLine, Listing, Op, Request, Status};
use super::store::{Set, Store};
use super::{Error, Result};
use crate::scm::socket as scmsock;
use crate::scm::wire;
use crate::scm::{ReceiveOptions, Receiver};
use crate::sys::signal::{StopSignals, STOP_SIGNALS};
use crate::sys::unix;
use crate::sys::{self, MapFd};
use crate::ErrorKind;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Connections open at once at most; more are answered "busy" and closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// A connection idle this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one import transfer may take once its first datagram arrived.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(1);
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
    last: Instant,
}

/// What the keeper counts (shown by `status`).
#[derive(Debug, Default, Clone)]
struct Counters {
    connections: u64,
    served: u64,
    maps_sent: u64,
    lists: u64,
    refused: u64,
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
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3 + self.conns.len());
            for fd in [stop.fd(), self.listener.sock.as_fd(), self.receiver.as_fd()] {
                fds.push(pollfd(fd));
            }
            for c in &self.conns {
                fds.push(pollfd(c.sock.as_fd()));
            }
            sys::net::poll(&mut fds, 1000).map_err(|e| Error::os("poll", "keeper", e))?;
            if fds[0].revents != 0 {
                let sig = stop.take().unwrap_or(0);
                let name = crate::sys::signal::signal_name(sig);
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
                if !self.serve_conn(i) {
                    self.conns.swap_remove(i);
                }
            }
            if fds[1].revents != 0 {
                self.accept();
            }
            if fds[2].revents != 0 {
                self.import();
            }
            let now = Instant::now();
            self.conns
                .retain(|c| now.duration_since(c.last) < IDLE_TIMEOUT);
        }
    }

    /// Accepts one waiting connection (poll reports the listener again
    /// while more wait, so the listener itself may stay blocking, as
    /// systemd hands it over).
    fn accept(&mut self) {
        let sock = match sys::net::accept_nonblocking(self.listener.sock.as_fd()) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                (self.log)(&format!("accept: {e}"));
                return;
            }
        };
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
        if self.conns.len() >= MAX_CONNECTIONS {
            self.counters.refused += 1;
            let msg = proto::encode_reply(
                Status::Failure,
                0,
                format!("keeper busy: {MAX_CONNECTIONS} connections open").as_bytes(),
            );
            let _ = unix::send_datagram(sock.as_fd(), &msg, &[]);
            return;
        }
        self.conns.push(Conn {
            sock,
            peer,
            last: Instant::now(),
        });
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
            Ok(req) => self.answer(i, &req),
        }
    }

    fn refuse(&mut self, i: usize, status: Status, reason: &str) {
        self.counters.refused += 1;
        let peer = &self.conns[i].peer;
        (self.log)(&format!(
            "refused pid {} uid {}: {reason}",
            peer.pid, peer.uid
        ));
        let msg = proto::encode_reply(status, 0, reason.as_bytes());
        let _ = unix::send_datagram(self.conns[i].sock.as_fd(), &msg, &[]);
    }

    fn answer(&mut self, i: usize, req: &Request) -> bool {
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
                    return true;
                }
                self.counters.lists += 1;
                let text = proto::encode_listing(&self.listing(&peer, status));
                let chunks = proto::text_chunks(&text);
                let last = chunks.len() - 1;
                for (n, body) in chunks.into_iter().enumerate() {
                    let flags = if n < last { proto::FLAG_MORE } else { 0 };
                    let msg = proto::encode_reply(Status::Ok, flags, body);
                    if !self.send(i, &msg, &[]) {
                        return false;
                    }
                }
                true
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
    fn resolve(&self, peer: &Peer, req: &Request) -> std::result::Result<&Set, (Status, String)> {
        if !req.set.is_empty() {
            return self
                .store
                .get(&req.set)
                .ok_or_else(|| (Status::NotFound, format!("no set '{}'", req.set)));
        }
        let visible: Vec<&Set> = self
            .store
            .sets()
            .filter(|s| self.policy.grant(peer, &s.name).is_some())
            .collect();
        let candidates: Vec<&Set> = match req.maps.first() {
            None => visible,
            Some(m) => visible.into_iter().filter(|s| s.has_map(m)).collect(),
        };
        match candidates.as_slice() {
            [one] => Ok(one),
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

    fn get(&mut self, i: usize, req: &Request) -> bool {
        let peer = self.conns[i].peer.clone();
        let set = match self.resolve(&peer, req) {
            Ok(s) => s,
            Err((status, reason)) => {
                self.refuse(i, status, &reason);
                return true;
            }
        };
        let Some(grant) = self.policy.grant(&peer, &set.name) else {
            let reason = format!(
                "uid {} may not get set '{}' (no 'allow' line in the policy)",
                peer.uid, set.name
            );
            self.refuse(i, Status::Denied, &reason);
            return true;
        };
        let read_only = grant == Grant::ReadOnly || req.access == Access::ReadOnly;
        let picked = match set.select(&req.maps) {
            Ok(p) => p,
            Err(missing) => {
                let reason = format!("set '{}' has no map '{missing}'", set.name);
                self.refuse(i, Status::NotFound, &reason);
                return true;
            }
        };
        // Read-only descriptors are new ones the kernel opens from the map
        // id with BPF_F_RDONLY: the holder can read, the kernel refuses its
        // writes.
        let mut ro: Vec<MapFd> = Vec::new();
        if read_only {
            for &p in &picked {
                match sys::obj::map_by_id(set.maps[p].info.id, sys::obj::open::RDONLY) {
                    Ok(fd) => ro.push(fd),
                    Err(e) => {
                        let reason = format!("cannot open a read-only descriptor: {e}");
                        self.refuse(i, Status::Failure, &reason);
                        return true;
                    }
                }
            }
        }
        let fds: Vec<BorrowedFd<'_>> = if read_only {
            ro.iter().map(|f| f.as_fd()).collect()
        } else {
            picked.iter().map(|&p| set.maps[p].fd.as_fd()).collect()
        };
        let descs: Vec<wire::MapDesc> = picked.iter().map(|&p| set.maps[p].desc).collect();
        let total = picked.len() as u16;
        let flags = if read_only { proto::FLAG_READ_ONLY } else { 0 };
        let object = set.object.clone();
        let name = set.name.clone();
        let mut msgs = Vec::new();
        for range in wire::chunk_ranges(picked.len()) {
            let body = wire::encode_chunk(&object, total, &descs[range.clone()]);
            msgs.push((proto::encode_reply(Status::Ok, flags, &body), range));
        }
        let sock = self.conns[i].sock.as_fd();
        let mut failure = None;
        for (msg, range) in &msgs {
            if let Err(e) = send_patiently(sock, msg, &fds[range.clone()]) {
                failure = Some(if e.kind() == std::io::ErrorKind::WouldBlock {
                    format!(
                        "does not read its replies ({} ms without room)",
                        SEND_PATIENCE.as_millis()
                    )
                } else {
                    e.to_string()
                });
                break;
            }
        }
        drop(fds);
        drop(ro);
        if let Some(why) = failure {
            self.counters.dropped_slow += 1;
            (self.log)(&format!(
                "dropped pid {} uid {} mid-reply: {why}",
                peer.pid, peer.uid
            ));
            return false;
        }
        self.counters.served += 1;
        self.counters.maps_sent += picked.len() as u64;
        if self.recent.len() == RECENT_CLIENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(ClientLine {
            pid: peer.pid,
            uid: peer.uid,
            set: name,
            access: if read_only { "ro" } else { "rw" }.into(),
            maps: picked.len() as u32,
            alive: true,
        });
        true
    }

    /// Sends one message on connection `i`; false (and a log line) when
    /// the client does not take it.
    fn send(&mut self, i: usize, msg: &[u8], fds: &[BorrowedFd<'_>]) -> bool {
        match unix::send_datagram(self.conns[i].sock.as_fd(), msg, fds) {
            Ok(()) => true,
            Err(e) => {
                self.counters.dropped_slow += 1;
                let p = &self.conns[i].peer;
                (self.log)(&format!("dropped pid {} uid {}: {e}", p.pid, p.uid));
                false
            }
        }
    }
}

/// How long one reply message may wait for room in a client's socket
/// (the whole loop waits with it) before the client is dropped.
pub const SEND_PATIENCE: Duration = Duration::from_millis(500);

/// Sends one reply message on a non-blocking connection; when its buffer is
/// full (a large set outpaces the client), waits for room, at most
/// [`SEND_PATIENCE`].
fn send_patiently(sock: BorrowedFd<'_>, msg: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let deadline = Instant::now() + SEND_PATIENCE;
    loop {
        match unix::send_datagram(sock, msg, fds) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(e);
                }
                let mut p = [libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                sys::net::poll(&mut p, left.as_millis().max(1) as i32)?;
            }
            other => return other,
        }
    }
}

fn pollfd(fd: BorrowedFd<'_>) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
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

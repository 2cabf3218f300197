//! The HTTP side of `tcbpf exporter listen`: a small HTTP/1.1 server of
//! its own on tokio (a current-thread runtime: all I/O on the main thread), because
//! the exporter must keep answering scrapes while local clients misbehave,
//! and tiny_http (one thread per connection, no read or write timeout, an
//! accept thread that ends for good at `EMFILE`) could not. hyper would
//! do, but `/metrics` is one GET: the head parser is `http`, a page.
//!
//! Bounds (each chosen here, documented in docs/exporter.md):
//!
//! - **connections**: at most `connections N` (default: a quarter below the
//!   open-files limit, at most [`DEFAULT_MAX_CONNECTIONS`]). A new
//!   connection over the bound, or an `EMFILE`/`ENFILE` at `accept`,
//!   closes the connection that has waited longest without sending a
//!   complete request (else an answer that made no progress for
//!   [`STALLED`]; an answer being taken is never cut), so a fresh scrape
//!   always finds room; with nothing to close, the accept
//!   loop backs off [`ACCEPT_BACKOFF`]: it never spins.
//! - **threads**: the main thread (all I/O) and at most [`SCRAPE_THREADS`]
//!   scrape threads, whatever the clients do.
//! - **requests**: a head of at most `http::MAX_HEAD` bytes, complete
//!   within [`HEAD_TIMEOUT`] of the connection or of the last answer;
//!   no request body (413). One request at a time per connection: a
//!   pipelined request is read only after the answer before it is written.
//! - **answers**: each 64 KiB of an answer must be taken by the client
//!   within [`WRITE_STALL`], the whole answer within [`ANSWER_TIMEOUT`];
//!   at most [`MAX_WRITERS`] answers in flight (the most stalled is
//!   dropped for a new one). Scrapes are shared: requests that arrive
//!   while a scrape of their format runs wait for it, and get the next
//!   one that starts after them, so a crowd of scrapers costs one scrape
//!   at a time per format and shares one body.
//! - **logs**: the same kind of trouble is logged at most once per
//!   [`LOG_INTERVAL`], with the count of those not logged.
//!
//! `GET /metrics` scrapes; the format follows `Accept`. SIGINT/SIGTERM end
//! it cleanly.

use crate::collect::Collector;
use crate::http::{self, HeadError, Method, Request};
use crate::metrics::{self, OPENMETRICS_TYPE, TEXT_TYPE};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tcbpf::sys::frontend::interrupted;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Threads that run scrapes (reading maps is blocking).
pub const SCRAPE_THREADS: usize = 2;
/// The most connections when `connections N` is not given.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// A request head must arrive within this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Each 64 KiB of an answer must be taken within this.
pub const WRITE_STALL: Duration = Duration::from_secs(10);
/// A whole answer must be taken within this.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers in flight at once.
pub const MAX_WRITERS: usize = 16;
/// An answer that made no progress for this may be closed for a newcomer.
pub const STALLED: Duration = Duration::from_secs(1);
/// The pause after `accept` fails for want of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The same trouble is logged at most once per this.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
const CHUNK: usize = 64 * 1024;

/// Why the server did not start.
#[derive(Debug)]
pub enum BindError {
    /// The address is taken.
    InUse(String),
    /// Anything else.
    Other(String),
}

/// Binds `addr` (a `HOST:PORT`).
pub fn bind(addr: &str) -> Result<std::net::TcpListener, BindError> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse(format!("cannot listen on {addr}: address already in use"))
        } else {
            BindError::Other(format!("cannot listen on {addr}: {e}"))
        }
    })?;
    l.set_nonblocking(true)
        .map_err(|e| BindError::Other(format!("cannot listen on {addr}: {e}")))?;
    Ok(l)
}

/// The connection bound when `connections N` is not given: three
/// quarters of the open-files limit (the rest for maps, netlink and
/// stdio), at most [`DEFAULT_MAX_CONNECTIONS`], at least 8.
pub fn default_max_connections() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|soft| soft.parse::<usize>().ok())
        .unwrap_or(1024);
    (limit / 4 * 3).clamp(8, DEFAULT_MAX_CONNECTIONS)
}

/// Serves until SIGINT or SIGTERM, with at most `max_connections` open.
pub fn serve(listener: std::net::TcpListener, collector: Collector, max_connections: usize) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(SCRAPE_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("tcbpf exporter: cannot start: {e}"),
    };
    let shared = Arc::new(Shared {
        conns: Mutex::new(Conns::default()),
        scraper: Scraper {
            collector: Arc::new(collector),
            slots: [tokio::sync::Mutex::new(None), tokio::sync::Mutex::new(None)],
        },
        logs: Mutex::new(HashMap::new()),
        max_connections: max_connections.max(1),
    });
    rt.block_on(accept_loop(listener, shared));
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// What every connection task shares.
struct Shared {
    conns: Mutex<Conns>,
    scraper: Scraper,
    logs: Mutex<HashMap<&'static str, RateLog>>,
    max_connections: usize,
}

impl Shared {
    fn conns(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs `message` unless a message of `kind` was logged in the last
    /// [`LOG_INTERVAL`] (then it is counted, and the count logged next).
    fn log(&self, kind: &'static str, message: impl FnOnce() -> String) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let l = logs.entry(kind).or_default();
        let now = Instant::now();
        if l.last.is_some_and(|t| now - t < LOG_INTERVAL) {
            l.suppressed += 1;
            return;
        }
        let more = std::mem::take(&mut l.suppressed);
        l.last = Some(now);
        if more > 0 {
            eprintln!(
                "tcbpf exporter: {} ({more} more like it not logged)",
                message()
            );
        } else {
            eprintln!("tcbpf exporter: {}", message());
        }
    }
}

#[derive(Default)]
struct RateLog {
    last: Option<Instant>,
    suppressed: u64,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a request head (since: when the wait began).
    Reading,
    /// Its answer is being made (not evicted).
    Scraping,
    /// Its answer is being written (since: the last progress).
    Writing,
}

struct Conn {
    state: State,
    since: Instant,
    abort: Option<tokio::task::AbortHandle>,
}

/// The open connections, by a number of their own.
#[derive(Default)]
struct Conns {
    next: u64,
    open: HashMap<u64, Conn>,
}

impl Conns {
    fn set(&mut self, id: u64, state: State) {
        if let Some(c) = self.open.get_mut(&id) {
            c.state = state;
            c.since = Instant::now();
        }
    }

    /// Closes the answer stalled longest (for a new answer over
    /// [`MAX_WRITERS`]).
    fn evict_writer(&mut self, except: u64) {
        let victim = self
            .open
            .iter()
            .filter(|(id, c)| **id != except && c.state == State::Writing)
            .min_by_key(|(_, c)| c.since)
            .map(|(id, _)| *id);
        if let Some(a) = victim.and_then(|id| self.open.remove(&id)?.abort) {
            a.abort();
        }
    }

    fn writers(&self) -> usize {
        self.open
            .values()
            .filter(|c| c.state == State::Writing)
            .count()
    }

    /// Closes a connection to make room: the one waiting longest for a
    /// request head, else the answer stalled longest if it has made no
    /// progress for [`STALLED`]; false when there is none (an answer
    /// being taken is never cut for a newcomer).
    fn evict(&mut self, except: u64) -> bool {
        let now = Instant::now();
        let oldest = |state: State| {
            self.open
                .iter()
                .filter(|(id, c)| **id != except && c.state == state)
                .min_by_key(|(_, c)| c.since)
                .map(|(id, c)| (*id, c.since))
        };
        let victim = oldest(State::Reading)
            .or_else(|| oldest(State::Writing).filter(|(_, since)| now - *since >= STALLED));
        match victim.and_then(|(id, _)| self.open.remove(&id)) {
            Some(c) => {
                if let Some(a) = c.abort {
                    a.abort();
                }
                true
            }
            None => false,
        }
    }
}

/// Removes its connection from [`Conns`] when the task ends or is aborted.
struct Registered {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.conns().open.remove(&self.id);
    }
}

async fn accept_loop(std_listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => return eprintln!("tcbpf exporter: cannot listen: {e}"),
    };
    while !interrupted() {
        let accepted =
            match tokio::time::timeout(Duration::from_millis(200), listener.accept()).await {
                Err(_) => continue,
                Ok(a) => a,
            };
        match accepted {
            Ok((stream, _)) => admit(stream, &shared),
            Err(e) => {
                let out_of_fds = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                if out_of_fds {
                    let closed = shared.conns().evict(u64::MAX);
                    shared.log("fds", || {
                        format!(
                            "accept: {e} (at the open-files limit): {}",
                            if closed {
                                "closing the longest idle connections for new ones"
                            } else {
                                "backing off"
                            }
                        )
                    });
                    // A connection closed: let its task end (its descriptor
                    // is freed when the aborted task is dropped), then accept
                    // again at once: each turn takes a connection, so this
                    // does not spin. None to close: wait.
                    if closed {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                } else if !matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNABORTED | libc::EINTR | libc::EAGAIN)
                ) {
                    shared.log("accept", || format!("accept: {e}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Takes a new connection, closing the longest idle one when full.
fn admit(stream: TcpStream, shared: &Arc<Shared>) {
    let id = {
        let mut conns = shared.conns();
        if conns.open.len() >= shared.max_connections && !conns.evict(u64::MAX) {
            drop(conns);
            shared.log("busy", || {
                format!(
                    "{} connections, all waiting for a scrape: a new one refused",
                    shared.max_connections
                )
            });
            return;
        }
        if conns.open.len() >= shared.max_connections {
            shared.log("full", || {
                format!(
                    "{} connections open: closed the longest idle one for a new one",
                    shared.max_connections
                )
            });
        }
        conns.next += 1;
        let id = conns.next;
        conns.open.insert(
            id,
            Conn {
                state: State::Reading,
                since: Instant::now(),
                abort: None,
            },
        );
        id
    };
    let guard = Registered {
        id,
        shared: shared.clone(),
    };
    let task = tokio::spawn(connection(stream, guard));
    if let Some(c) = shared.conns().open.get_mut(&id) {
        c.abort = Some(task.abort_handle());
    }
}

/// Serves one connection's requests, one at a time, within the bounds.
async fn connection(mut stream: TcpStream, me: Registered) {
    let shared = me.shared.clone();
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        shared.conns().set(me.id, State::Reading);
        let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
        let req = loop {
            match http::parse_head(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    break req;
                }
                Ok(None) => {}
                Err(e) => return refuse(&mut stream, e).await,
            }
            let mut chunk = [0u8; 4096];
            let room = (http::MAX_HEAD - buf.len().min(http::MAX_HEAD)).clamp(1, chunk.len());
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => return, // no complete head in time
            }
        };
        if req.has_body {
            return answer_and_close(
                &mut stream,
                (413, "Payload Too Large"),
                "no request body is taken\n",
            )
            .await;
        }
        shared.conns().set(me.id, State::Scraping);
        let (status, content_type, body) = route(&req, &shared.scraper).await;
        {
            let mut conns = shared.conns();
            if conns.writers() >= MAX_WRITERS {
                conns.evict_writer(me.id);
            }
            conns.set(me.id, State::Writing);
        }
        let head = http::response_head(status, content_type, body.len(), req.keep_alive);
        let body: &[Vec<u8>] = if req.method == Method::Head {
            &[]
        } else {
            &body.0
        };
        if write_answer(&mut stream, &head, body, &shared, me.id)
            .await
            .is_err()
        {
            return;
        }
        if !req.keep_alive {
            let _ = tokio::time::timeout(WRITE_STALL, stream.shutdown()).await;
            return;
        }
    }
}

/// Writes `head` and `body`, each 64 KiB within [`WRITE_STALL`], all within
/// [`ANSWER_TIMEOUT`]; each step is progress (the connection is then not
/// the most stalled).
async fn write_answer(
    stream: &mut TcpStream,
    head: &[u8],
    body: &[Vec<u8>],
    shared: &Shared,
    id: u64,
) -> Result<(), ()> {
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    for chunk in std::iter::once(head).chain(body.iter().flat_map(|p| p.chunks(CHUNK))) {
        let stall = tokio::time::Instant::now() + WRITE_STALL;
        match tokio::time::timeout_at(stall.min(deadline), stream.write_all(chunk)).await {
            Ok(Ok(())) => shared.conns().set(id, State::Writing),
            _ => return Err(()),
        }
    }
    Ok(())
}

async fn refuse(stream: &mut TcpStream, e: HeadError) {
    answer_and_close(stream, e.status(), "bad request head\n").await
}

async fn answer_and_close(stream: &mut TcpStream, status: (u16, &str), text: &str) {
    let head = http::response_head(status, "text/plain; charset=utf-8", text.len(), false);
    let write = async {
        stream.write_all(&head).await?;
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// The answer to `req`: status, content type and body.
async fn route(req: &Request, scraper: &Scraper) -> ((u16, &'static str), &'static str, Arc<Body>) {
    let text = |s: &str| Arc::new(Body(vec![s.as_bytes().to_vec()]));
    match (req.method, req.path.as_str()) {
        (Method::Get | Method::Head, "/metrics") => {
            let om = metrics::wants_openmetrics(&req.accept);
            let body = scraper.scrape(om).await;
            let ty = if om { OPENMETRICS_TYPE } else { TEXT_TYPE };
            ((200, "OK"), ty, body)
        }
        (Method::Get | Method::Head, "/") => (
            (200, "OK"),
            "text/plain; charset=utf-8",
            text("tcbpf exporter: the metrics of tc classifiers' maps are at /metrics\n"),
        ),
        (Method::Get | Method::Head, _) => (
            (404, "Not Found"),
            "text/plain; charset=utf-8",
            text("not found; see /metrics\n"),
        ),
        (Method::Other, _) => (
            (405, "Method Not Allowed"),
            "text/plain; charset=utf-8",
            text("only GET\n"),
        ),
    }
}

/// One scrape at a time per format, shared by the requests that wait for
/// it.
struct Scraper {
    collector: Arc<Collector>,
    /// Per format (text, OpenMetrics): the last scrape.
    slots: [tokio::sync::Mutex<Option<Scraped>>; 2],
}

/// When a scrape started, and its body.
type Scraped = (Instant, Arc<Body>);

/// An answer's body: parts sent one after the other (a scrape's families'
/// texts as they were built, so a large one is never copied whole).
pub struct Body(Vec<Vec<u8>>);

impl Body {
    /// Its length in bytes.
    fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
}

impl Scraper {
    /// A body scraped after this call began.
    async fn scrape(&self, openmetrics: bool) -> Arc<Body> {
        let asked = Instant::now();
        let mut slot = self.slots[openmetrics as usize].lock().await;
        if let Some((started, body)) = &*slot {
            if *started >= asked {
                return body.clone();
            }
        }
        let started = Instant::now();
        let collector = self.collector.clone();
        let body = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            let fams = collector.scrape(openmetrics, &mut errors);
            for e in &errors {
                eprintln!("tcbpf exporter: {e}");
            }
            Arc::new(Body(fams.into_parts()))
        })
        .await
        .unwrap_or_else(|e| Arc::new(Body(vec![format!("# scrape failed: {e}\n").into_bytes()])));
        *slot = Some((started, body.clone()));
        body
    }
}

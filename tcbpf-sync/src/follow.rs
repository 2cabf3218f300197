//! `tcbpf sync etcd`: the follower. Reads the whole policy at one
//! revision, makes every map equal to it (diff-apply), then watches from
//! the next revision and applies each watch response (whole transactions:
//! etcd never splits one revision across responses) in revision order.
//! It never writes the policy; its only writes to etcd are the node's
//! report (see `status`).
//!
//! - Lost connection: the watch is opened again from the last applied
//!   revision + 1, on a new client (any endpoint), losing no event.
//! - Compacted past that revision: re-read and diff-apply, watch again.
//! - A map write fails: the error goes in the status, `state` is
//!   `retrying`, and after a pause the whole policy is re-read and
//!   diff-applied (the fix for a half-written change), until it succeeds.
//!   The applied revision only moves once every map took the change.
//! - An entry the follower cannot apply (a key that does not unescape, a
//!   value over `target::MAX_VALUE_BYTES` or too large to read, JSON that
//!   does not fit the map) is rejected and counted for its map; the rest
//!   applies.
//! - Drift (a map changed behind sync's back) is repaired by a full
//!   re-read and diff-apply: every `resync SECS`, and on SIGHUP.
//! - SIGTERM/SIGINT: the apply under way finishes, the status lease is
//!   revoked, exit 0.
//! - Generations: a followed NAME with `PREFIX/current/NAME` follows that
//!   generation instead of `PREFIX/maps/NAME/` (a second watch, on
//!   `PREFIX/current/`, re-reads when it moves); the map takes it all or
//!   nothing (`target`), and the node acknowledges it in its report.
//! - Log (`log`): connected and reconnected, each full re-read with what it
//!   wrote, drift repaired, each generation applied with its duration,
//!   every error; with `-v` each watch response applied.

use crate::args::{Conn, EtcdOpts};
use crate::error::SyncError;
use crate::layout::Prefix;
use crate::snapshot::Value;
use crate::status::{self, MapStatus, NodeStatus, Shared};
use crate::target::{too_large, Desired, GenFailure, MapTarget};
use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// How often an idle watch asks etcd for its progress (reported as
/// `seen`: the follower is idle, not stuck).
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The largest watch response accepted.
const WATCH_MESSAGE_LIMIT: usize = 256 << 20;
/// Pause before retrying after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// Why the watch loop stopped.
enum Next {
    /// Watch again from the applied revision + 1.
    Rewatch,
    /// Re-read everything and diff-apply first.
    Resync(&'static str),
    Exit,
}

struct Follower {
    conn: Conn,
    prefix: Prefix,
    maps: Vec<MapTarget>,
    shared: Shared,
    applied: i64,
    /// Maps following generations (`PREFIX/current/NAME` names one): the
    /// watch of `PREFIX/maps/` leaves them alone.
    gen_mode: std::collections::BTreeSet<String>,
    /// Connections made (the first is "connected", the next "reconnected").
    connects: u64,
    /// This node's name (its report, its rollout pins).
    node: String,
}

pub async fn run(conn: Conn, prefix: Prefix, o: EtcdOpts) -> Result<(), SyncError> {
    let mut maps = Vec::new();
    for f in &o.maps {
        let m = MapTarget::open(f)?;
        if maps.iter().any(|x: &MapTarget| x.name == m.name) {
            return Err(SyncError::usage(format!(
                "map name '{}' given twice (use 'as NAME')",
                m.name
            )));
        }
        maps.push(m);
    }
    let figures = o
        .health
        .iter()
        .map(crate::health::Figure::open)
        .collect::<Result<Vec<_>, _>>()?;
    let node = match o.node.clone() {
        Some(n) => n,
        None => hostname()?,
    };
    let shared = Shared::new(NodeStatus {
        node,
        pid: std::process::id(),
        started_ms: status::now_ms(),
        maps: maps
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    MapStatus {
                        id: m.id,
                        ..MapStatus::default()
                    },
                )
            })
            .collect(),
        state: "starting",
        ..NodeStatus::default()
    });
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| SyncError::other(format!("SIGTERM: {e}")))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| SyncError::other(format!("SIGINT: {e}")))?;
    let mut hup =
        signal(SignalKind::hangup()).map_err(|e| SyncError::other(format!("SIGHUP: {e}")))?;
    let stop = Arc::new(Notify::new());
    let node = shared.snapshot().node;
    let types = maps
        .iter()
        .map(|m| (format!("{}{node}", prefix.types(&m.name)), m.types_json()))
        .collect();
    let writer = tokio::spawn(status::writer(
        conn.clone(),
        prefix.clone(),
        o.status_ttl,
        shared.clone(),
        stop.clone(),
        types,
    ));
    let sampler = tokio::spawn(crate::health::sample(figures, shared.clone()));
    let mut f = Follower {
        conn,
        prefix,
        maps,
        shared,
        applied: 0,
        gen_mode: Default::default(),
        connects: 0,
        node,
    };
    let resync_every = o.resync.map(Duration::from_secs);
    let mut need_resync = Some("start-up");
    'outer: loop {
        let mut client = tokio::select! {
            c = f.connect() => c,
            _ = term.recv() => break 'outer,
            _ = int.recv() => break 'outer,
        };
        if let Some(why) = need_resync {
            match f.resync(&mut client, why).await {
                Ok(()) => need_resync = None,
                Err(e) => {
                    // Not `following` while the policy is not applied.
                    f.shared.update(|s| {
                        s.error(e);
                        s.state = "retrying";
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => continue,
                        _ = term.recv() => break 'outer,
                        _ = int.recv() => break 'outer,
                    }
                }
            }
        }
        let next = f
            .watch(&mut client, resync_every, &mut term, &mut int, &mut hup)
            .await;
        match next {
            Next::Exit => break,
            Next::Rewatch => {}
            Next::Resync(why) => need_resync = Some(why),
        }
    }
    sampler.abort();
    f.shared.update(|s| s.state = "stopped");
    crate::log::event(&format!("stopped at revision {}", f.applied));
    stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(3), writer).await;
    Ok(())
}

/// How a key that does not unescape is named in the status: its etcd key
/// part after `PREFIX/maps/NAME/`, bytes that are not printable shown `%XX`.
fn bad_key_name(prefix: &Prefix, etcd_key: &[u8]) -> String {
    let rest = etcd_key
        .strip_prefix(prefix.maps().as_bytes())
        .unwrap_or(etcd_key);
    let part = rest
        .iter()
        .position(|&b| b == b'/')
        .map_or(rest, |i| &rest[i + 1..]);
    crate::layout::shown_key(part)
}

fn hostname() -> Result<String, SyncError> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| SyncError::other(format!("hostname: {e} (give node NAME)")))?;
    Ok(name.trim().to_string())
}

impl Follower {
    /// A client, retrying until one connects.
    async fn connect(&mut self) -> Client {
        loop {
            match crate::conn::connect(&self.conn).await {
                Ok(c) => {
                    let again = if self.connects > 0 { "re" } else { "" };
                    self.connects += 1;
                    crate::log::event(&format!(
                        "{again}connected to etcd {} (prefix {}, applied revision {})",
                        self.conn.endpoints.join(","),
                        self.prefix,
                        self.applied
                    ));
                    return c;
                }
                Err(e) => {
                    self.shared.update(|s| s.error(e.message.clone()));
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Reads the whole policy at one revision and makes each map equal
    /// to its part: its generation in force when `PREFIX/current/NAME`
    /// names one, else `PREFIX/maps/NAME/`. The applied revision moves
    /// only if every map took it.
    async fn resync(&mut self, c: &mut Client, why: &str) -> Result<(), String> {
        let t0 = std::time::Instant::now();
        let (currents, rev) = crate::snapshot::read_prefix(c, &self.prefix.currents(), 0)
            .await
            .map_err(|e| e.message)?;
        let (entries, _) = crate::snapshot::read_prefix(c, &self.prefix.maps(), rev)
            .await
            .map_err(|e| e.message)?;
        // Per map: the generation published, unless a rollout pins this
        // node to another.
        let mut current: BTreeMap<String, u64> = BTreeMap::new();
        let mut pinned: BTreeMap<String, u64> = BTreeMap::new();
        for e in currents {
            let g = match &e.value {
                Value::Bytes(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|t| t.trim().parse().ok()),
                Value::TooLarge => None,
            };
            let (name, into) = match (
                self.prefix.parse_current(&e.key),
                self.prefix.parse_pin(&e.key),
            ) {
                (Some(name), _) => (name, &mut current),
                (None, Some((name, node))) if node == self.node => (name, &mut pinned),
                _ => continue,
            };
            if let (Some(g), true) = (g, self.maps.iter().any(|m| m.name == name)) {
                into.insert(name.to_string(), g);
            }
        }
        current.extend(pinned);
        // Per map, in the order of the revision that wrote each entry: a
        // key spelled two ways (members in another order) ends with the
        // value written last, as it does when the watch applies them.
        let mut policy: BTreeMap<String, Vec<(i64, String, Desired)>> = self
            .maps
            .iter()
            .map(|m| (m.name.clone(), Vec::new()))
            .collect();
        for e in entries {
            let Some((name, key)) = self.prefix.parse_entry(&e.key) else {
                continue;
            };
            let Some(p) = policy.get_mut(&name) else {
                continue;
            };
            let (key, desired) = match (key, e.value) {
                (Err(bad), _) => (bad_key_name(&self.prefix, &e.key), Desired::Reject(bad.0)),
                (Ok(k), Value::Bytes(v)) => (k, Desired::put(v)),
                (Ok(k), Value::TooLarge) => (k, Desired::Reject(too_large(None))),
            };
            p.push((e.mod_revision, key, desired));
        }
        for p in policy.values_mut() {
            p.sort_by_key(|(mod_rev, _, _)| *mod_rev);
        }
        let mut fixed = 0u64;
        let mut sums = [0usize; 4];
        let mut results = Vec::new();
        let mut acks = Vec::new();
        for i in 0..self.maps.len() {
            let name = self.maps[i].name.clone();
            let report = if let Some(&g) = current.get(&name) {
                match self.apply_generation(c, i, g, rev).await? {
                    Some(report) => report,
                    None => continue,
                }
            } else if self.maps[i].slot.is_some() {
                // A map-in-map follows generations only: none yet.
                continue;
            } else {
                let m = &mut self.maps[i];
                let (report, rejected) = m.replace_all(&policy[&m.name]).map_err(|e| {
                    format!("resync ({why}) of map {} at revision {rev}: {e}", m.name)
                })?;
                results.push((m.name.clone(), m.entries, rejected));
                report
            };
            fixed += (report.added + report.changed + report.removed) as u64;
            for (sum, n) in sums.iter_mut().zip([
                report.added,
                report.changed,
                report.unchanged,
                report.removed,
            ]) {
                *sum += n;
            }
            if current.contains_key(&name) {
                acks.push((name, self.maps[i].entries));
            }
        }
        self.gen_mode = current.keys().cloned().collect();
        self.applied = rev;
        let [a, ch, u, r] = sums;
        let line = format!(
            "resync ({why}) at revision {rev} in {} ms: added {a} changed {ch} unchanged {u} removed {r}",
            t0.elapsed().as_millis()
        );
        if matches!(why, "SIGHUP" | "periodic resync") && fixed > 0 {
            crate::log::event(&format!("drift repaired: {fixed} entries; {line}"));
        } else if why == "generation" {
            crate::log::debug(&line);
        } else {
            crate::log::event(&line);
        }
        self.shared.update(|s| {
            s.revision = rev;
            s.resyncs += 1;
            s.last_resync = Some((why.to_string(), rev, sums));
            // Only a resync asked for drift counts as drift; the others
            // (start-up, compaction, failure, a new generation) catch up
            // with the policy.
            if matches!(why, "SIGHUP" | "periodic resync") {
                s.drift_fixed += fixed;
            }
            s.state = "following";
            for (name, entries) in acks {
                let m = s.map_mut(&name);
                m.revision = rev;
                m.entries = entries;
            }
            for (name, entries, rejected) in results {
                let m = s.map_mut(&name);
                m.revision = rev;
                m.changed_revision = rev;
                m.entries = entries;
                m.last_apply_ms = status::now_ms();
                m.rejected = rejected.len();
                m.last_rejected = rejected
                    .last()
                    .map(|r| format!("key {}: {}", r.key, r.reason));
            }
        });
        Ok(())
    }

    /// Makes map `i` hold generation `g` (read at `rev`), all or nothing,
    /// and acknowledges it. `Ok(None)`: nothing written (the generation
    /// is refused, or a map-in-map holds it already); `Err`: etcd or a
    /// kernel write failed, to be retried.
    async fn apply_generation(
        &mut self,
        c: &mut Client,
        i: usize,
        g: u64,
        rev: i64,
    ) -> Result<Option<tcbpf::maps::ApplyReport>, String> {
        let name = self.maps[i].name.clone();
        let before = self.shared.snapshot().maps[i].1.generation.clone();
        let mut in_force = before.as_ref().map_or(0, |a| a.in_force);
        // A slot says itself which generation it holds (after a restart too).
        if let Some(held) = self.maps[i].slot_generation() {
            in_force = held;
            if held == g && before.as_ref().is_some_and(|a| a.generation == g) {
                return Ok(None);
            }
        }
        let t0 = std::time::Instant::now();
        let read = crate::generation::read(c, &self.prefix, &name, g, rev)
            .await
            .map_err(|e| e.message)?;
        let mut ack = status::GenAck {
            generation: g,
            time_ms: status::now_ms(),
            in_force,
            ..status::GenAck::default()
        };
        let (record, entries) = match read {
            Ok(r) => r,
            Err(why) => {
                ack.error = Some(why.clone());
                self.acknowledge(&name, ack, &format!("map {name}: {why}"));
                return Ok(None);
            }
        };
        ack.entries = record.entries;
        ack.checksum = record.checksum.clone();
        if self.maps[i].slot.is_some() && in_force == g {
            // Its slot holds it whole already (a restart): acknowledge.
            self.maps[i].entries = record.entries;
            self.acknowledge(&name, ack, &format!("map {name} holds generation {g}"));
            return Ok(None);
        }
        match self.maps[i].apply_generation(g, &entries) {
            Ok(report) => {
                let took = t0.elapsed();
                ack.apply_ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                ack.in_force = g;
                let fresh = before
                    .as_ref()
                    .map_or(true, |a| a.in_force != g || a.error.is_some());
                if fresh {
                    let line = format!(
                        "map {name} generation {g} applied in {} ms ({} entries, {})",
                        took.as_millis(),
                        record.entries,
                        record.checksum
                    );
                    self.acknowledge(&name, ack, &line);
                }
                Ok(Some(report))
            }
            Err(GenFailure::Refused(why)) => {
                let why = format!("generation {g} refused, nothing written: {why}");
                ack.error = Some(why.clone());
                self.acknowledge(&name, ack, &format!("map {name}: {why}"));
                Ok(None)
            }
            Err(GenFailure::Failed(why)) => {
                let why = format!("generation {g}: {why}");
                ack.error = Some(why.clone());
                // A plain map may hold part of it: it holds no whole one.
                if self.maps[i].slot.is_none() {
                    ack.in_force = 0;
                }
                self.acknowledge(&name, ack, &format!("map {name}: {why}"));
                Err(format!("map {name}: {why}"))
            }
        }
    }

    /// Puts `ack` in the report, stamped now (the apply is over), and
    /// logs `line`.
    fn acknowledge(&self, name: &str, mut ack: status::GenAck, line: &str) {
        ack.time_ms = status::now_ms();
        crate::log::event(line);
        self.shared.update(|s| {
            let m = s.map_mut(name);
            m.last_apply_ms = ack.time_ms;
            m.generation = Some(ack);
        });
    }

    /// Watches from the applied revision + 1 and applies each response.
    async fn watch(
        &mut self,
        c: &mut Client,
        resync_every: Option<Duration>,
        term: &mut tokio::signal::unix::Signal,
        int: &mut tokio::signal::unix::Signal,
        hup: &mut tokio::signal::unix::Signal,
    ) -> Next {
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.applied + 1)
            .with_progress_notify();
        // A catching-up watcher gets up to 1,000 revisions per response:
        // with 128-operation transactions that passes gRPC's 4 MiB default.
        let mut wc = c
            .watch_client()
            .max_decoding_message_size(WATCH_MESSAGE_LIMIT);
        let mut stream = match wc.watch(self.prefix.maps(), Some(opts)).await {
            Ok(s) => s,
            Err(e) => {
                self.shared
                    .update(|s| s.error(format!("watch: {}", crate::error::describe(&e))));
                tokio::time::sleep(RETRY).await;
                return Next::Rewatch;
            }
        };
        // Generations: a move of `PREFIX/current/NAME` re-reads.
        let gopts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.applied + 1);
        let mut gens = match wc.watch(self.prefix.currents(), Some(gopts)).await {
            Ok(s) => s,
            Err(e) => {
                self.shared
                    .update(|s| s.error(format!("watch: {}", crate::error::describe(&e))));
                tokio::time::sleep(RETRY).await;
                return Next::Rewatch;
            }
        };
        let mut progress = tokio::time::interval(PROGRESS_EVERY);
        let resync_at =
            tokio::time::sleep(resync_every.unwrap_or(Duration::from_secs(86400 * 365)));
        tokio::pin!(resync_at);
        loop {
            tokio::select! {
                _ = term.recv() => return Next::Exit,
                _ = int.recv() => return Next::Exit,
                _ = hup.recv() => return Next::Resync("SIGHUP"),
                _ = &mut resync_at, if resync_every.is_some() => return Next::Resync("periodic resync"),
                _ = progress.tick() => {
                    if stream.request_progress().await.is_err() {
                        return Next::Rewatch;
                    }
                }
                msg = gens.message() => match msg {
                    // Reported as the policy watch reports it.
                    Ok(Some(r)) if r.compact_revision() > 0 => {
                        return self.on_response(r).unwrap_or(Next::Resync("compaction"))
                    }
                    Ok(Some(r)) => {
                        let ours = r.events().iter().any(|ev| {
                            let Some(kv) = ev.kv() else { return false };
                            let name = match (
                                self.prefix.parse_current(kv.key()),
                                self.prefix.parse_pin(kv.key()),
                            ) {
                                (Some(name), _) => name,
                                (None, Some((name, node))) if node == self.node => name,
                                _ => return false,
                            };
                            self.maps.iter().any(|m| m.name == name)
                        });
                        if ours {
                            return Next::Resync("generation");
                        }
                    }
                    Ok(None) | Err(_) => {
                        self.shared.update(|s| s.error("watch of generations: stream ended (reconnecting)".into()));
                        tokio::time::sleep(RETRY).await;
                        return Next::Rewatch;
                    }
                },
                msg = stream.message() => match msg {
                    Ok(Some(r)) => {
                        if let Some(next) = self.on_response(r) {
                            return next;
                        }
                    }
                    Ok(None) => {
                        self.shared.update(|s| s.error("watch: stream ended (reconnecting)".into()));
                        return Next::Rewatch;
                    }
                    Err(e) => {
                        self.shared.update(|s| {
                            s.error(format!("watch: {} (reconnecting)", crate::error::describe(&e)))
                        });
                        tokio::time::sleep(RETRY).await;
                        return Next::Rewatch;
                    }
                },
            }
        }
    }

    /// Handles one watch response; `Some` when the watch must stop.
    fn on_response(&mut self, r: WatchResponse) -> Option<Next> {
        if r.compact_revision() > 0 {
            let (at, from) = (r.compact_revision(), self.applied + 1);
            self.shared.update(|s| {
                s.error(format!(
                    "watch from revision {from}: etcd answered compacted (at revision {at}): re-reading"
                ))
            });
            return Some(Next::Resync("compaction"));
        }
        if r.canceled() {
            let reason = r.cancel_reason().to_string();
            self.shared
                .update(|s| s.error(format!("watch canceled: {reason}")));
            return Some(Next::Rewatch);
        }
        if r.events().is_empty() {
            // A progress report: reported as `seen`, never used as the
            // resume point. etcd 3.4.23 (Debian 12's) also answers progress
            // requests of watchers still catching up (fixed in 3.4.24), so
            // trusting it could skip events after a reconnect.
            let head = r.header().map_or(0, |h| h.revision());
            if !r.created() {
                self.shared.update(|s| s.seen = s.seen.max(head));
            }
            return None;
        }
        // The final desired state of each key touched, per map.
        let mut changes: BTreeMap<String, BTreeMap<String, Desired>> = BTreeMap::new();
        let mut last = self.applied;
        for ev in r.events() {
            let Some(kv) = ev.kv() else { continue };
            last = last.max(kv.mod_revision());
            let Some((name, key)) = self.prefix.parse_entry(kv.key()) else {
                continue;
            };
            if self.gen_mode.contains(&name)
                || !self.maps.iter().any(|m| m.name == name && m.slot.is_none())
            {
                continue;
            }
            let (key, d) = match (key, ev.event_type()) {
                (Ok(k), EventType::Put) => (k, Desired::put(kv.value().to_vec())),
                (Ok(k), EventType::Delete) => (k, Desired::Del),
                (Err(bad), EventType::Put) => {
                    (bad_key_name(&self.prefix, kv.key()), Desired::Reject(bad.0))
                }
                // Never applied, so nothing to undo.
                (Err(_), EventType::Delete) => continue,
            };
            changes.entry(name).or_default().insert(key, d);
        }
        let mut done = Vec::new();
        for m in &mut self.maps {
            let Some(ch) = changes.get(&m.name) else {
                continue;
            };
            match m.apply_delta(ch) {
                Ok((_, rejected)) => done.push((m.name.clone(), m.entries, rejected)),
                Err(e) => {
                    let msg = format!(
                        "map {} at revision {last}: {e}; the map may hold part of this change: re-reading",
                        m.name
                    );
                    self.shared.update(|s| {
                        s.error(msg);
                        s.state = "retrying";
                    });
                    return Some(Next::Resync("failed write"));
                }
            }
        }
        for (name, _, rejected) in &done {
            crate::log::debug(&format!(
                "revision {last}: map {name}: {} changes applied, {} rejected",
                changes.get(name).map_or(0, BTreeMap::len),
                rejected.len()
            ));
        }
        self.applied = last;
        self.shared.update(|s| {
            s.revision = last;
            for (_, m) in &mut s.maps {
                m.revision = last;
            }
            for (name, entries, rejected) in done {
                let m = s.map_mut(&name);
                m.changed_revision = last;
                m.entries = entries;
                m.last_apply_ms = status::now_ms();
                m.rejected += rejected.len();
                if let Some(r) = rejected.last() {
                    m.last_rejected = Some(format!("key {}: {}", r.key, r.reason));
                }
            }
        });
        None
    }
}

//! A node's report at `PREFIX/nodes/NODE`: what it applied, when, and
//! what went wrong. The follower fills a [`NodeStatus`]; a writer task
//! puts it under a lease it keeps alive, so a node that dies vanishes
//! after `status-ttl` seconds, and one that exits cleanly revokes it at
//! once. `tcbpf sync status` reads every report against the head. Writes
//! only under `PREFIX/nodes/`, never the policy.

use crate::args::Conn;
use crate::error::SyncError;
use crate::layout::Prefix;
use etcd_client::{Client, GetOptions, PutOptions};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch: every time sync writes in JSON is
/// one, an integer in a field ending `_ms` (tcbpf's JSON has no float
/// times).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One map's line in the report.
#[derive(Debug, Clone, Default)]
pub struct MapStatus {
    pub id: u32,
    /// The revision of the policy the map holds.
    pub revision: i64,
    /// The last revision that changed this map.
    pub changed_revision: i64,
    pub entries: usize,
    /// When the last change was written (epoch milliseconds).
    pub last_apply_ms: u64,
    /// Policy entries that do not fit the map (bad JSON for its types).
    pub rejected: usize,
    pub last_rejected: Option<String>,
    /// The last generation this map was given (`None`: it follows
    /// `PREFIX/maps/NAME/` entry by entry).
    pub generation: Option<GenAck>,
}

/// A node's acknowledgement of one generation of one map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenAck {
    /// The generation last tried.
    pub generation: u64,
    /// When it was applied or refused: the end of the apply (epoch
    /// milliseconds).
    pub time_ms: u64,
    /// `None`: applied whole; `Some(error)`: refused or failed, and the
    /// map still holds `in_force`.
    pub error: Option<String>,
    /// Its entries and checksum, as read and checked.
    pub entries: usize,
    pub checksum: String,
    /// The generation the map holds whole (0: none yet).
    pub in_force: u64,
    /// Nanoseconds the apply took (`apply_ns`: durations are `_ns`).
    pub apply_ns: u64,
}

impl GenAck {
    pub fn to_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "time_ms": self.time_ms,
            "result": self.error.as_deref().unwrap_or("ok"),
            "entries": self.entries,
            "checksum": self.checksum,
            "in_force": self.in_force,
            "apply_ns": self.apply_ns,
        })
    }
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub node: String,
    pub pid: u32,
    pub started_ms: u64,
    /// Every map holds the policy up to this revision (the last applied
    /// event or full read: where a new watch resumes).
    pub revision: i64,
    /// The highest revision etcd's watch progress reports announced.
    pub seen: i64,
    pub maps: Vec<(String, MapStatus)>,
    pub last_error: Option<(u64, String)>,
    /// Full re-reads (start-up, compaction, resync, after a failure).
    pub resyncs: u64,
    /// Entries a resync found different from the policy and fixed.
    pub drift_fixed: u64,
    /// The last full re-read: why, at which revision, and what it wrote
    /// (added, changed, unchanged, removed).
    pub last_resync: Option<(String, i64, [usize; 4])>,
    pub state: &'static str,
    /// The health figures' last readings (`health::sample`).
    pub health: Vec<(String, crate::health::Sample)>,
}

impl NodeStatus {
    pub fn to_json(&self) -> Value {
        let mut maps = Map::new();
        for (name, m) in &self.maps {
            maps.insert(
                name.clone(),
                json!({
                    "id": m.id,
                    "revision": m.revision,
                    "changed_revision": m.changed_revision,
                    "entries": m.entries,
                    "last_apply_ms": m.last_apply_ms,
                    "rejected": m.rejected,
                    "last_rejected": m.last_rejected,
                    "generation": m.generation.as_ref().map(GenAck::to_json),
                }),
            );
        }
        json!({
            "node": self.node,
            "pid": self.pid,
            "started_ms": self.started_ms,
            "state": self.state,
            "revision": self.revision,
            "seen": self.seen,
            "maps": maps,
            "last_error": self.last_error.as_ref().map(|(t, m)| json!({"time_ms": t, "message": m})),
            "resyncs": self.resyncs,
            "drift_fixed": self.drift_fixed,
            "last_resync": self.last_resync.as_ref().map(|(why, rev, [a, c, u, r])| json!({
                "why": why, "revision": rev, "added": a, "changed": c, "unchanged": u, "removed": r,
            })),
            "health": self
                .health
                .iter()
                .map(|(name, s)| (name.clone(), s.to_json()))
                .collect::<Map<String, Value>>(),
            "updated_ms": now_ms(),
        })
    }

    pub fn map_mut(&mut self, name: &str) -> &mut MapStatus {
        let i = self
            .maps
            .iter()
            .position(|(n, _)| n == name)
            .expect("followed map");
        &mut self.maps[i].1
    }

    pub fn error(&mut self, message: String) {
        crate::log::event(&message);
        self.last_error = Some((now_ms(), message));
    }
}

/// The report shared between the follower and the writer.
#[derive(Clone)]
pub struct Shared {
    pub status: Arc<Mutex<NodeStatus>>,
    pub changed: Arc<Notify>,
}

impl Shared {
    pub fn new(s: NodeStatus) -> Shared {
        Shared {
            status: Arc::new(Mutex::new(s)),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Changes the report and wakes the writer.
    pub fn update(&self, f: impl FnOnce(&mut NodeStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_one();
    }

    pub fn snapshot(&self) -> NodeStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Keeps `PREFIX/nodes/NODE` current under a lease of `ttl` seconds until
/// `stop` is notified, then revokes the lease. Reconnects on failure.
///
/// `types` are (etcd key, text) puts made under the same lease once per
/// lease: the followed maps' types at `PREFIX/types/NAME/NODE`.
pub async fn writer(
    conn: Conn,
    prefix: Prefix,
    ttl: u64,
    shared: Shared,
    stop: Arc<Notify>,
    types: Vec<(String, String)>,
) {
    let key = prefix.node(&shared.snapshot().node);
    let beat = Duration::from_millis(ttl * 1000 / 3);
    loop {
        let session = async {
            let mut c = crate::conn::connect(&conn).await?;
            let lease = c
                .lease_grant(ttl as i64, None)
                .await
                .map_err(|e| SyncError::etcd("status lease", e))?
                .id();
            let (mut keeper, mut replies) = c
                .lease_keep_alive(lease)
                .await
                .map_err(|e| SyncError::etcd("status lease keep-alive", e))?;
            // Without them writers check nothing: not a reason to stop
            // reporting (a role may lack write on PREFIX/types/).
            for (k, text) in &types {
                let with_lease = Some(PutOptions::new().with_lease(lease));
                if let Err(e) = c.put(k.as_str(), text.as_str(), with_lease).await {
                    crate::log::event(&format!(
                        "put {k}: {} (writers will not check entries against this node)",
                        crate::error::describe(&e)
                    ));
                }
            }
            loop {
                let text = shared.snapshot().to_json().to_string();
                c.put(
                    key.as_str(),
                    text,
                    Some(PutOptions::new().with_lease(lease)),
                )
                .await
                .map_err(|e| SyncError::etcd(&format!("put {key}"), e))?;
                tokio::select! {
                    _ = stop.notified() => {
                        let _ = c.lease_revoke(lease).await;
                        return Ok::<bool, SyncError>(true);
                    }
                    _ = shared.changed.notified() => {
                        // At most ten writes a second.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ = tokio::time::sleep(beat) => {}
                }
                keeper
                    .keep_alive()
                    .await
                    .map_err(|e| SyncError::etcd("status lease keep-alive", e))?;
                match replies.message().await {
                    Ok(Some(r)) if r.ttl() > 0 => {}
                    Ok(_) => return Err(SyncError::other("status lease expired")),
                    Err(e) => return Err(SyncError::etcd("status lease keep-alive", e)),
                }
            }
        };
        match session.await {
            Ok(_) => return,
            Err(e) => {
                crate::log::event(&format!("status: {e} (retrying)"));
                tokio::select! {
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

/// `tcbpf sync status`: every node's report, with how far it is behind.
/// Reads everything before it prints, so a failed read can be retried.
pub async fn show(c: &mut Client, p: &Prefix, json_out: bool) -> Result<(), SyncError> {
    let (kvs, head) = crate::snapshot::read_prefix(c, &p.nodes(), 0).await?;
    // The generation published for each map.
    let (currents, _) = crate::snapshot::read_prefix(c, &p.currents(), head).await?;
    let mut published = Map::new();
    for e in currents {
        if let (Some(name), crate::snapshot::Value::Bytes(v)) = (p.parse_current(&e.key), &e.value)
        {
            if let Some(g) = std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
            {
                published.insert(name.to_string(), json!(g));
            }
        }
    }
    // The last rollout of each map.
    let (rollouts, _) = crate::snapshot::read_prefix(c, &p.rollouts(), head).await?;
    let mut rollout = Map::new();
    for e in rollouts {
        if let crate::snapshot::Value::Bytes(v) = &e.value {
            let name = String::from_utf8_lossy(&e.key[p.rollouts().len()..]).into_owned();
            if let Ok(state) = serde_json::from_slice::<Value>(v) {
                rollout.insert(name, state);
            }
        }
    }
    let mut rows = Vec::new();
    for e in kvs {
        let crate::snapshot::Value::Bytes(v) = e.value else {
            continue;
        };
        let Ok(mut s) = serde_json::from_slice::<Value>(&v) else {
            continue;
        };
        let rev = s["revision"].as_i64().unwrap_or(0);
        // Policy keys written after the node's revision: what it still
        // has to apply (deletions are not counted: etcd keeps no key).
        // etcd's count ignores the revision filter: count the keys.
        let pending = c
            .kv_client()
            .max_decoding_message_size(256 << 20)
            .get(
                p.maps(),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_keys_only()
                        .with_min_mod_revision(rev + 1),
                ),
            )
            .await
            .map_err(|e| SyncError::etcd("count pending entries", e))?
            .kvs()
            .len();
        let seen = s["seen"].as_i64().unwrap_or(0).max(rev);
        // Each map following generations: behind when the generation it
        // holds whole is not the one published.
        if let Some(maps) = s["maps"].as_object_mut() {
            for (name, m) in maps.iter_mut() {
                if let (Some(g), Some(ack)) = (published.get(name), m["generation"].as_object_mut())
                {
                    let behind = ack.get("in_force") != Some(g);
                    ack.insert("published".into(), g.clone());
                    ack.insert("behind".into(), json!(behind));
                }
            }
        }
        s["head"] = json!(head);
        s["behind"] = json!(head - seen);
        s["pending"] = json!(pending);
        rows.push(s);
    }
    if json_out {
        out!(
            "{}",
            json!({ "head": head, "generations": published, "rollouts": rollout, "nodes": rows })
        );
        return Ok(());
    }
    out!("head revision {head}");
    for (name, g) in &published {
        out!("map {name} generation {g} published");
    }
    for (name, r) in &rollout {
        out!(
            "map {name} rollout of generation {} from {}: {} (canaries {}){}",
            r["generation"],
            r["previous"],
            r["state"].as_str().unwrap_or("?"),
            joined(&r["canaries"]),
            r["reason"]
                .as_str()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        );
    }
    for s in &rows {
        let err = match (
            s["last_error"]["message"].as_str(),
            s["last_error"]["time_ms"].as_u64(),
        ) {
            (Some(m), Some(t)) => format!("({} s ago) {m}", now_ms().saturating_sub(t) / 1000),
            _ => "-".to_string(),
        };
        let r = &s["last_resync"];
        let resync = match r["why"].as_str() {
            Some(why) => format!(
                "{}@{} added {} changed {} unchanged {} removed {}",
                why.replace(' ', "-"),
                r["revision"],
                r["added"],
                r["changed"],
                r["unchanged"],
                r["removed"]
            ),
            None => "-".to_string(),
        };
        out!(
            "node {} {} pid {} revision {} behind {} pending {} resyncs {} drift_fixed {} last_resync {resync} last_error {err}",
            s["node"].as_str().unwrap_or("?"),
            s["state"].as_str().unwrap_or("?"),
            s["pid"],
            s["revision"],
            s["behind"],
            s["pending"],
            s["resyncs"],
            s["drift_fixed"],
        );
        if let Some(health) = s["health"].as_object() {
            for (name, h) in health {
                match h["error"].as_str() {
                    Some(e) => out!("  health {name} error {e}"),
                    None => out!(
                        "  health {name} value {} rate {}",
                        h["value"],
                        h["rate"]
                            .as_f64()
                            .map_or("-".to_string(), |r| format!("{r:.1}/s"))
                    ),
                }
            }
        }
        if let Some(maps) = s["maps"].as_object() {
            for (name, m) in maps {
                out!(
                    "  map {name} id {} revision {} entries {} rejected {} last_apply_ms {}",
                    m["id"],
                    m["revision"],
                    m["entries"],
                    m["rejected"],
                    m["last_apply_ms"]
                );
                let a = &m["generation"];
                if a.is_object() {
                    out!(
                        "    generation {} result {} in_force {} entries {} checksum {} apply_ns {}{}",
                        a["generation"],
                        a["result"].as_str().unwrap_or("?"),
                        a["in_force"],
                        a["entries"],
                        a["checksum"].as_str().unwrap_or("-"),
                        a["apply_ns"],
                        if a["behind"] == true { " BEHIND" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}

/// A JSON array of names as `a,b,c` (empty for anything else).
pub fn joined(names: &Value) -> String {
    names
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number in `v` that is not an integer, by its path.
    fn floats(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Number(n) if n.is_f64() => out.push(path.to_string()),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| floats(x, &format!("{path}[{i}]"), out)),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| floats(x, &format!("{path}.{k}"), out)),
            _ => {}
        }
    }

    #[test]
    fn a_report_holds_its_times_as_integer_epoch_milliseconds() {
        let mut s = NodeStatus {
            node: "n1".into(),
            started_ms: now_ms(),
            maps: vec![(
                "m".into(),
                MapStatus {
                    last_apply_ms: now_ms(),
                    generation: Some(GenAck {
                        generation: 2,
                        time_ms: now_ms(),
                        ..GenAck::default()
                    }),
                    ..MapStatus::default()
                },
            )],
            ..NodeStatus::default()
        };
        s.error("boom".into());
        let v = s.to_json();
        let mut bad = Vec::new();
        floats(&v, "", &mut bad);
        assert!(bad.is_empty(), "float times at {bad:?}: {v}");
        let t = v["maps"]["m"]["generation"]["time_ms"].as_u64().unwrap();
        assert!(t > 1_700_000_000_000, "{t} is not epoch milliseconds");
        assert!(v["last_error"]["time_ms"].as_u64().is_some(), "{v}");
        assert!(v["updated_ms"].as_u64().unwrap() >= v["started_ms"].as_u64().unwrap());
    }
}

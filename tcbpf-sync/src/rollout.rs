//! Staged rollout of a generation (`tcbpf sync rollout`) and `rollback`.
//!
//! A rollout of generation G (written, e.g. by `commit … stage`) pins the
//! canary nodes to G (`PREFIX/current/NAME/NODE` = G: their followers run
//! G while the others keep the generation published), then waits up to
//! `wait` seconds for each canary's acknowledgement. The gate: every
//! canary acknowledges G with result `ok` in that window. It passes: G is
//! published (`PREFIX/current/NAME` = G) and the pins go, in one
//! transaction. It fails: the pins go, so the canaries return to the
//! generation published (G-1), which the command waits for; the other
//! nodes never saw G. The state is kept at `PREFIX/rollout/NAME`.
//! With `gate FIGURE …` the gate goes on once every canary acknowledged
//! G: for `window` seconds each canary's health figure (`health`), read
//! after it applied G, must keep the comparison; the first reading that
//! does not fails the gate, naming the node, the figure and its value.
//! Canaries by share are chosen deterministically: the nodes ordered by an
//! FNV-1a hash of `NODE/G`, the first ones taken.

use crate::args::Canary;
use crate::error::SyncError;
use crate::figure::{Gate, Measure};
use crate::layout::Prefix;
use crate::retry;
use etcd_client::{Client, Txn, TxnOp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How often the reports are read while waiting.
const POLL: Duration = Duration::from_millis(100);

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The canaries among `nodes` (sorted names). Pure.
pub fn choose(nodes: &[String], canary: &Canary, g: u64) -> Result<Vec<String>, String> {
    match canary {
        Canary::Nodes(list) => {
            if let Some(missing) = list.iter().find(|n| !nodes.contains(n)) {
                return Err(format!(
                    "node {missing} does not follow the map (nodes: {})",
                    nodes.join(", ")
                ));
            }
            Ok(list.clone())
        }
        Canary::Percent(n) => {
            let k = ((nodes.len() * *n as usize).div_ceil(100)).clamp(1, nodes.len());
            let mut order: Vec<&String> = nodes.iter().collect();
            order.sort_by_key(|node| (fnv(&format!("{node}/{g}")), (*node).clone()));
            let mut chosen: Vec<String> = order[..k].iter().map(|s| (*s).clone()).collect();
            chosen.sort();
            Ok(chosen)
        }
    }
}

/// A node's report, as far as a rollout reads it.
struct Report {
    node: String,
    /// Its acknowledgement of the map's generation.
    ack: Value,
    /// Its health figures (`health::Sample` by name).
    health: Value,
}

/// Every node report that follows `map`.
async fn reports(c: &Client, t: Duration, p: &Prefix, map: &str) -> Result<Vec<Report>, SyncError> {
    let nodes = p.nodes();
    let (kvs, _) = retry::again(t, || {
        let mut c = c.clone();
        let nodes = nodes.clone();
        async move { crate::snapshot::read_prefix(&mut c, &nodes, 0).await }
    })
    .await?;
    Ok(kvs
        .into_iter()
        .filter_map(|e| {
            let crate::snapshot::Value::Bytes(v) = e.value else {
                return None;
            };
            let s: Value = serde_json::from_slice(&v).ok()?;
            let node = s["node"].as_str()?.to_string();
            s["maps"].get(map)?;
            Some(Report {
                node,
                ack: s["maps"][map]["generation"].clone(),
                health: s["health"].clone(),
            })
        })
        .collect())
}

async fn put_state(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    state: &Value,
) -> Result<(), SyncError> {
    let key = p.rollout(map);
    let text = state.to_string();
    retry::until(t, &format!("put {key}"), || {
        let mut c = c.clone();
        let (k, v) = (key.clone(), text.clone());
        async move { c.put(k, v, None).await }
    })
    .await?;
    Ok(())
}

/// Waits (up to `wait`) until every canary acknowledged `g`; `Err` with the
/// reason the gate fails.
async fn gate(
    c: &mut Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
    canaries: &[String],
    wait: Duration,
) -> Result<Result<(), String>, SyncError> {
    let t0 = Instant::now();
    loop {
        let acks = reports(c, t, p, map).await?;
        let mut waiting = Vec::new();
        for node in canaries {
            let ack = acks.iter().find(|r| &r.node == node).map(|r| &r.ack);
            match ack {
                Some(a) if a["generation"] == g && a["result"] != "ok" => {
                    return Ok(Err(format!(
                        "node {node}: {}",
                        a["result"].as_str().unwrap_or("?")
                    )))
                }
                Some(a) if a["generation"] == g && a["in_force"] == g => {}
                _ => waiting.push(node.clone()),
            }
        }
        if waiting.is_empty() {
            return Ok(Ok(()));
        }
        if t0.elapsed() >= wait {
            return Ok(Err(format!(
                "no acknowledgement of generation {g} within {} s from node {}",
                wait.as_secs(),
                waiting.join(", node ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// After every canary acknowledged `g`: watches their figure for the
/// gate's window. Only readings that began after the canary applied `g`
/// count (for a rate, the reading it is taken from too); `Err` with the
/// reason at the first that breaks the comparison, or when a canary
/// gave none in the window.
async fn health_gate(
    c: &mut Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
    canaries: &[String],
    gate: &Gate,
) -> Result<Result<(), String>, SyncError> {
    let t0 = Instant::now();
    let name = &gate.figure;
    let (word, field) = match gate.measure {
        Measure::Rate => ("rate", "rate"),
        Measure::Value => ("value", "value"),
    };
    let mut measured = std::collections::BTreeSet::new();
    loop {
        let now = reports(c, t, p, map).await?;
        for node in canaries {
            let Some(r) = now.iter().find(|r| &r.node == node) else {
                return Ok(Err(format!("node {node}: its report is gone")));
            };
            if r.ack["generation"] != g || r.ack["in_force"] != g {
                return Ok(Err(format!("node {node}: no longer runs generation {g}")));
            }
            let applied = r.ack["time_ms"].as_u64().unwrap_or(u64::MAX);
            let h = &r.health[name.as_str()];
            if let Some(e) = h["error"].as_str() {
                return Ok(Err(format!(
                    "node {node}: health figure {name} cannot be read: {e}"
                )));
            }
            let since = match gate.measure {
                Measure::Rate => h["from_ms"].as_u64(),
                Measure::Value => h["time_ms"].as_u64(),
            };
            let (Some(since), Some(x)) = (since, h[field].as_f64()) else {
                continue;
            };
            if since < applied {
                continue;
            }
            measured.insert(node.clone());
            if !gate.op.holds(x, gate.limit) {
                return Ok(Err(format!(
                    "node {node}: health {name} {word} {}, not {} {}",
                    shown(x, gate.measure),
                    gate.op.symbol(),
                    gate.limit
                )));
            }
        }
        if t0.elapsed() >= Duration::from_secs(gate.window) {
            let silent: Vec<&str> = canaries
                .iter()
                .filter(|n| !measured.contains(*n))
                .map(String::as_str)
                .collect();
            if !silent.is_empty() {
                return Ok(Err(format!(
                    "node {}: no health figure {name} read on generation {g} within the \
                     {} s window (is its follower started with 'health {name} …'?)",
                    silent.join(", node "),
                    gate.window
                )));
            }
            return Ok(Ok(()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A figure's reading as a message shows it.
fn shown(x: f64, m: Measure) -> String {
    match m {
        Measure::Rate => format!("{x:.1}/s"),
        Measure::Value => format!("{x}"),
    }
}

/// How a rollout goes: which nodes first, the gate, how long to wait for
/// the canaries' acknowledgements.
pub struct How<'a> {
    pub canary: &'a Canary,
    pub gate: Option<&'a Gate>,
    pub wait: u64,
}

/// `tcbpf sync rollout … map NAME gen G …`: the rollout's final state.
pub async fn rollout(
    c: &mut Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
    how: How<'_>,
) -> Result<Value, SyncError> {
    let How {
        canary,
        gate: health,
        wait,
    } = how;
    if crate::generation::record(c, t, p, map, g).await?.is_none() {
        return Err(SyncError::not_found(format!(
            "map {map}: no generation {g} under {}",
            p.gens(map)
        )));
    }
    let (previous, seen_mod) = crate::generation::published(c, t, p, map).await?;
    if previous == g {
        return Err(SyncError::usage(format!(
            "map {map}: generation {g} is already published"
        )));
    }
    let mut nodes: Vec<String> = reports(c, t, p, map)
        .await?
        .into_iter()
        .map(|r| r.node)
        .collect();
    nodes.sort();
    if nodes.is_empty() {
        return Err(SyncError::not_found(format!(
            "map {map}: no node reports following it under {}",
            p.nodes()
        )));
    }
    let canaries =
        choose(&nodes, canary, g).map_err(|e| SyncError::usage(format!("rollout: {e}")))?;
    let started = crate::status::now_ms();
    let mut state = json!({
        "generation": g,
        "previous": previous,
        "canaries": canaries,
        "nodes": nodes.len(),
        "state": "canary",
        "started_ms": started,
    });
    if let Some(h) = health {
        state["gate"] = json!(format!(
            "{} {} {} {} window {}",
            h.figure,
            match h.measure {
                Measure::Rate => "rate",
                Measure::Value => "value",
            },
            h.op.symbol(),
            h.limit,
            h.window
        ));
    }
    put_state(c, t, p, map, &state).await?;
    crate::log::event(&format!(
        "rollout of map {map} generation {g}: canaries {} of {} nodes",
        canaries.join(","),
        nodes.len()
    ));
    let pins: Vec<TxnOp> = canaries
        .iter()
        .map(|n| TxnOp::put(p.pin(map, n), g.to_string(), None))
        .collect();
    retry::until(t, &format!("pin the canaries of map {map}"), || {
        let mut c = c.clone();
        let pins = pins.clone();
        async move { c.txn(Txn::new().and_then(pins)).await }
    })
    .await?;
    let unpin: Vec<TxnOp> = canaries
        .iter()
        .map(|n| TxnOp::delete(p.pin(map, n), None))
        .collect();
    let mut verdict = gate(c, t, p, map, g, &canaries, Duration::from_secs(wait)).await?;
    if let (Ok(()), Some(h)) = (&verdict, health) {
        crate::log::event(&format!(
            "rollout of map {map} generation {g}: canaries on it; health gate for {} s",
            h.window
        ));
        verdict = health_gate(c, t, p, map, g, &canaries, h).await?;
    }
    let t_gate = crate::status::now_ms();
    let gate_done = std::time::Instant::now();
    match verdict {
        Ok(()) => {
            let (done, _) =
                crate::generation::publish(c, t, p, map, g, seen_mod, unpin.clone()).await?;
            if !done {
                state["state"] = json!("aborted");
                state["reason"] = json!("another writer published meanwhile");
                retry::until(t, "unpin", || {
                    let mut c = c.clone();
                    let unpin = unpin.clone();
                    async move { c.txn(Txn::new().and_then(unpin)).await }
                })
                .await?;
                put_state(c, t, p, map, &state).await?;
                return Err(SyncError::other(format!(
                    "rollout of map {map} generation {g}: another writer published meanwhile; \
                     canaries unpinned"
                )));
            }
            state["state"] = json!("promoted");
            state["gate_passed_ms"] = json!(t_gate);
            put_state(c, t, p, map, &state).await?;
            crate::log::event(&format!("rollout of map {map} generation {g}: promoted"));
            Ok(state)
        }
        Err(reason) => {
            retry::until(t, "unpin", || {
                let mut c = c.clone();
                let unpin = unpin.clone();
                async move { c.txn(Txn::new().and_then(unpin)).await }
            })
            .await?;
            // The canaries go back to the generation published.
            let back = gate(
                c,
                t,
                p,
                map,
                previous,
                &canaries,
                Duration::from_secs(wait.max(10)),
            )
            .await?;
            // Marked in its record: a default rollback skips it.
            if let Some(mut rec) = crate::generation::record_json(c, t, p, map, g).await? {
                rec["rolled_back"] = json!(reason);
                let (key, text) = (p.gen_record(map, g), rec.to_string());
                retry::until(t, &format!("put {key}"), || {
                    let mut c = c.clone();
                    let (k, v) = (key.clone(), text.clone());
                    async move { c.put(k, v, None).await }
                })
                .await?;
            }
            state["state"] = json!("rolled back");
            state["reason"] = json!(reason);
            let back_in = gate_done.elapsed();
            state["rolled_back_in_ns"] =
                json!(u64::try_from(back_in.as_nanos()).unwrap_or(u64::MAX));
            if let Err(e) = &back {
                state["rollback_error"] = json!(e);
            }
            put_state(c, t, p, map, &state).await?;
            Err(SyncError::other(format!(
                "rollout of map {map} generation {g}: gate failed ({reason}); canaries {} back \
                 on generation {previous}{}",
                canaries.join(","),
                match back {
                    Ok(()) => format!(" in {} ms", back_in.as_millis()),
                    Err(e) => format!(" (not yet acknowledged: {e})"),
                }
            )))
        }
    }
}

/// `tcbpf sync rollback … map NAME [ gen G ]`: publishes G (default: the
/// newest written generation below the one published that no rollout
/// rolled back). Returns (G, the
/// generation it replaced).
pub async fn rollback(
    c: &mut Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    to: Option<u64>,
) -> Result<(u64, u64), SyncError> {
    let (current, seen_mod) = crate::generation::published(c, t, p, map).await?;
    let target = match to {
        Some(g) => g,
        None => {
            // The newest written below, skipping those a rollout rolled back.
            let mut g = current.saturating_sub(1);
            while g > 0 {
                match crate::generation::record_json(c, t, p, map, g).await? {
                    Some(r) if r.get("rolled_back").is_none() => break,
                    _ => g -= 1,
                }
            }
            if g == 0 {
                return Err(SyncError::not_found(format!(
                    "map {map}: no generation before {current} to roll back to"
                )));
            }
            g
        }
    };
    if crate::generation::record(c, t, p, map, target)
        .await?
        .is_none()
    {
        return Err(SyncError::not_found(format!(
            "map {map}: no generation {target} under {}",
            p.gens(map)
        )));
    }
    let (done, _) = crate::generation::publish(c, t, p, map, target, seen_mod, Vec::new()).await?;
    if !done {
        return Err(SyncError::other(format!(
            "rollback of map {map}: another writer published meanwhile (run it again)"
        )));
    }
    crate::log::event(&format!(
        "map {map}: generation {target} published again (was {current})"
    ));
    Ok((target, current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_by_share_are_deterministic_and_at_least_one() {
        let nodes: Vec<String> = (1..=20).map(|i| format!("n{i}")).collect();
        let a = choose(&nodes, &Canary::Percent(10), 7).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a, choose(&nodes, &Canary::Percent(10), 7).unwrap());
        assert_eq!(
            choose(&nodes[..3], &Canary::Percent(1), 7).unwrap().len(),
            1
        );
        assert_eq!(choose(&nodes, &Canary::Percent(100), 7).unwrap().len(), 20);
        let e = choose(&nodes, &Canary::Nodes(vec!["x".into()]), 7).unwrap_err();
        assert!(e.contains("node x does not follow"), "{e}");
    }
}

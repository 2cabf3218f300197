//! Validation at the writer: each follower publishes the key and value
//! types of every map it follows at `PREFIX/types/NAME/NODE` (JSON: sizes,
//! CPU count, the BTF type ids and the map's BTF as hex, or no BTF), under
//! its status lease, so a node that is gone stops counting. `put`, `put …
//! from` and `commit` encode every entry with each distinct set published
//! and refuse (exit 2, nothing written) an entry that no follower could
//! apply; one that some followers would refuse is written, with a warning
//! naming them. With no follower published yet nothing is checked.

use crate::error::SyncError;
use crate::layout::Prefix;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tcbpf::btf::Btf;
use tcbpf::value::typed::MapTypes;

/// The published form of `t`.
pub fn describe(t: &MapTypes) -> Value {
    let btf = t
        .key_type()
        .or(t.value_type())
        .map(|_| hex(&t.btf().to_bytes()));
    json!({
        "key_size": t.key_size(),
        "value_size": t.value_size(),
        "cpus": t.cpus(),
        "key_type": t.key_type(),
        "value_type": t.value_type(),
        "btf": btf,
    })
}

/// Reads back what [`describe`] wrote.
pub fn from_json(bytes: &[u8]) -> Result<MapTypes, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let size = |f: &str| {
        v[f].as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("no '{f}'"))
    };
    let (ks, vs) = (size("key_size")?, size("value_size")?);
    let cpus = v["cpus"].as_u64().map(|n| n as usize);
    let Some(blob) = v["btf"].as_str() else {
        return Ok(MapTypes::untyped(ks, vs, cpus));
    };
    let btf = Btf::parse(&unhex(blob)?).map_err(|e| format!("btf: {e}"))?;
    let id = |f: &str| v[f].as_u64().map(|n| n as u32);
    MapTypes::new(
        Arc::new(btf),
        id("key_type"),
        id("value_type"),
        ks,
        vs,
        cpus,
    )
    .map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err("btf: odd hex length".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("btf: bad hex at {i}"))
        })
        .collect()
}

/// One entry to check: the key's JSON text and, for a put, the value's.
pub struct Check<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

/// Why `t` cannot take the entry, if it cannot.
fn refuses(t: &MapTypes, e: &Check) -> Option<String> {
    let k: Value = serde_json::from_str(e.key).ok()?;
    if let Err(err) = t.encode_key(&k) {
        return Some(format!("key {}: {err}", e.key));
    }
    let v: Value = serde_json::from_str(e.value?).ok()?;
    t.encode_values(&v, false)
        .err()
        .map(|err| format!("key {} value {}: {err}", e.key, e.value.unwrap_or("")))
}

/// [`check`] for whole (key, value) entries, as `put … from` and
/// `commit` read them from a file.
pub async fn check_entries<'a>(
    c: &etcd_client::Client,
    t: std::time::Duration,
    p: &Prefix,
    map: &str,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), SyncError> {
    let checks: Vec<Check> = entries
        .into_iter()
        .map(|(k, v)| Check {
            key: k,
            value: Some(v),
        })
        .collect();
    check(c, t, p, map, &checks).await
}

/// Checks `entries` of map `map` against the types its followers
/// published: `Err` (exit 2) for the first entry no follower could apply.
pub async fn check(
    c: &etcd_client::Client,
    t: std::time::Duration,
    p: &Prefix,
    map: &str,
    entries: &[Check<'_>],
) -> Result<(), SyncError> {
    let base = p.types(map);
    let (kvs, _) = crate::retry::again(t, || {
        let mut c = c.clone();
        let base = base.clone();
        async move { crate::snapshot::read_prefix(&mut c, &base, 0).await }
    })
    .await?;
    // Distinct type sets, each with the nodes that published it.
    let mut sets: BTreeMap<Vec<u8>, (Vec<String>, Option<MapTypes>)> = BTreeMap::new();
    for e in kvs {
        let crate::snapshot::Value::Bytes(v) = e.value else {
            continue;
        };
        let node = String::from_utf8_lossy(&e.key[base.len()..]).into_owned();
        let set = sets.entry(v.clone()).or_insert_with(|| (Vec::new(), None));
        if set.0.is_empty() {
            match from_json(&v) {
                Ok(t) => set.1 = Some(t),
                Err(why) => crate::log::event(&format!(
                    "map {map}: node {node} published types that do not read ({why}): not checked against them"
                )),
            }
        }
        set.0.push(node);
    }
    let sets: Vec<(Vec<String>, MapTypes)> = sets
        .into_values()
        .filter_map(|(nodes, t)| Some((nodes, t?)))
        .collect();
    if sets.is_empty() {
        return Ok(());
    }
    let mut warned = 0;
    for e in entries {
        let why: Vec<(&[String], String)> = sets
            .iter()
            .filter_map(|(nodes, t)| refuses(t, e).map(|w| (nodes.as_slice(), w)))
            .collect();
        if why.len() == sets.len() {
            let (nodes, reason) = &why[0];
            return Err(SyncError::usage(format!(
                "map {map}: no follower can apply {reason} (types published by node {}); \
                 nothing written",
                nodes.join(", node ")
            )));
        }
        if let (Some((nodes, reason)), true) = (why.first(), warned < 10) {
            warned += 1;
            crate::log::event(&format!(
                "map {map}: node {} will refuse {reason}",
                nodes.join(", node ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_sets_round_trip_and_refuse_a_key_too_wide() {
        let t = MapTypes::untyped(2, 1, None);
        let back = from_json(describe(&t).to_string().as_bytes()).unwrap();
        assert_eq!((back.key_size(), back.value_size()), (2, 1));
        let ok = Check {
            key: "7000",
            value: Some("1"),
        };
        assert_eq!(refuses(&back, &ok), None);
        let bad = Check {
            key: "70000",
            value: Some("1"),
        };
        let why = refuses(&back, &bad).unwrap();
        assert!(why.starts_with("key 70000"), "{why}");
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            [0, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_err());
    }
}

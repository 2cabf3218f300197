//! `tcbpf sync put | del | get | list`: write and read the desired entries
//! at `PREFIX/maps/NAME/KEY` without hand-escaping keys.
//!
//! `put … from FILE` writes JSON lines `{"key":K,"value":V}` (the shape
//! `tcbpf -j map dump` prints) in transactions of at most 128 operations,
//! etcd's default `--max-txn-ops`. Never touches a map: values are
//! checked by each follower against its map's types.

use crate::error::SyncError;
use crate::layout::Prefix;
use crate::retry;
use etcd_client::{Client, Txn, TxnOp};
use serde_json::{json, Value};
use std::time::Duration;

/// Operations per transaction in `put … from`.
pub const TXN_OPS: usize = 128;

/// Puts one entry, retried through an election until `t`.
pub async fn put(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    key: &str,
    value: &str,
) -> Result<i64, SyncError> {
    let k = p.entry(map, key);
    let (r, _) = retry::until(t, &format!("put {k}"), || {
        let mut c = c.clone();
        let (k, value) = (k.clone(), value.to_string());
        async move { c.put(k, value, None).await }
    })
    .await?;
    Ok(r.header().map_or(0, |h| h.revision()))
}

/// Deletes one entry; not found (exit 1) when it was not there. Retried
/// through an election until `t`: when an attempt before may have deleted
/// it, an absent entry is success.
pub async fn del(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    key: &str,
) -> Result<i64, SyncError> {
    let k = p.entry(map, key);
    let (r, retried) = retry::until(t, &format!("del {k}"), || {
        let mut c = c.clone();
        let k = k.clone();
        async move { c.delete(k, None).await }
    })
    .await?;
    if r.deleted() == 0 && !retried {
        return Err(SyncError::not_found(format!(
            "map {map} key {key}: no such entry under {p}"
        )));
    }
    Ok(r.header().map_or(0, |h| h.revision()))
}

/// The value JSON text of one entry; not found (exit 1) when absent.
pub async fn get(c: &mut Client, p: &Prefix, map: &str, key: &str) -> Result<String, SyncError> {
    let k = p.entry(map, key);
    let r = c
        .get(k.as_str(), None)
        .await
        .map_err(|e| SyncError::etcd(&format!("get {k}"), e))?;
    match r.kvs().first() {
        Some(kv) => Ok(String::from_utf8_lossy(kv.value()).into_owned()),
        None => Err(SyncError::not_found(format!(
            "map {map} key {key}: no such entry under {p}"
        ))),
    }
}

/// One listed entry.
pub struct Listed {
    pub map: String,
    pub key: String,
    pub value: String,
    pub revision: i64,
}

/// Every entry under `PREFIX/maps/` (or one map's), read page by page at
/// one revision, in key order.
pub async fn list(c: &mut Client, p: &Prefix, map: Option<&str>) -> Result<Vec<Listed>, SyncError> {
    let from = match map {
        Some(m) => p.map(m),
        None => p.maps(),
    };
    let (entries, _) = crate::snapshot::read_prefix(c, &from, 0).await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let (map, key) = p.parse_entry(&e.key)?;
            // A key that does not unescape is listed as stored.
            let key = key.unwrap_or_else(|_| crate::layout::shown_key(&e.key[p.map(&map).len()..]));
            Some(Listed {
                map,
                key,
                value: match e.value {
                    crate::snapshot::Value::Bytes(v) => String::from_utf8_lossy(&v).into_owned(),
                    crate::snapshot::Value::TooLarge => "(too large to read)".into(),
                },
                revision: e.mod_revision,
            })
        })
        .collect())
}

/// Prints a listing: `NAME KEY VALUE` lines, or a JSON array.
pub fn print_list(items: &[Listed], json_out: bool) {
    if json_out {
        let v: Vec<Value> = items
            .iter()
            .map(|l| {
                json!({
                    "map": l.map,
                    "key": serde_json::from_str::<Value>(&l.key).unwrap_or(Value::String(l.key.clone())),
                    "value": serde_json::from_str::<Value>(&l.value).unwrap_or(Value::String(l.value.clone())),
                    "revision": l.revision,
                })
            })
            .collect();
        out!("{}", Value::Array(v));
    } else {
        for l in items {
            out!("{} key {} value {}", l.map, l.key, l.value);
        }
    }
}

/// Reads `{"key":K,"value":V}` lines from `file` (`-`: standard input) and
/// writes them in transactions of [`TXN_OPS`], each retried through an
/// election until `t`. Returns (entries, last revision).
pub async fn put_from(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    file: &str,
) -> Result<(usize, i64), SyncError> {
    // Read and check everything first: a bad line writes nothing.
    let lines = crate::generation::read_lines(file)?;
    crate::types::check_entries(c, t, p, map, lines.iter().map(|(k, v)| (k, v))).await?;
    let ops: Vec<TxnOp> = lines
        .into_iter()
        .map(|(key, value)| TxnOp::put(p.entry(map, &key), value, None))
        .collect();
    let total = ops.len();
    let mut revision = 0;
    let what = format!("put map {map} from {file}");
    for chunk in ops.chunks(TXN_OPS) {
        let (r, _) = retry::until(t, &what, || {
            let mut c = c.clone();
            let chunk = chunk.to_vec();
            async move { c.txn(Txn::new().and_then(chunk)).await }
        })
        .await?;
        revision = r.header().map_or(revision, |h| h.revision());
    }
    Ok((total, revision))
}

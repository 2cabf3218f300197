//! Policy generations in etcd (`tcbpf sync commit`): a whole policy for
//! one map written as generation G, then published with one write.
//!
//! A commit reads and checks every line first (a bad line writes
//! nothing), takes G as one more than the highest generation of the map
//! under `PREFIX/gens/NAME/`, writes G's record (created only if absent:
//! two writers never share a G), then its entries in transactions of at
//! most [`TXN_OPS`] operations and [`TXN_BYTES`] bytes (etcd's defaults
//! are 128 operations and 1.5 MiB a request), and last
//! `PREFIX/current/NAME` = G, in a transaction that fails when another
//! commit published in the meantime. A writer that dies before the last
//! step leaves an unpublished generation no follower reads. Every request
//! is retried through an etcd election (`retry`). `stage` stops before
//! the last step: `rollout` publishes later.
//!
//! The checksum ([`checksum`]) is FNV-1a 64 over the entries' canonical
//! JSON texts in key order: the writer puts it in the record, a follower
//! computes it again over what it read and applies nothing when they
//! differ, and reports it in its acknowledgement.

use crate::error::SyncError;
use crate::layout::{canonical_json, Prefix};
use crate::retry;
use etcd_client::{
    Client, Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

/// Operations per transaction, at most (etcd's default `--max-txn-ops`).
pub const TXN_OPS: usize = 128;
/// Key and value bytes per transaction, at most (etcd's default
/// `--max-request-bytes` is 1.5 MiB).
pub const TXN_BYTES: usize = 1 << 20;

/// A generation's entries: canonical key JSON → canonical value JSON,
/// in key order (a key given twice: the last value).
pub type Entries = BTreeMap<String, String>;

/// FNV-1a 64 over `key\tvalue\n` of every entry in key order, as
/// `fnv1a64:` and 16 hex digits. Pure.
pub fn checksum(entries: &Entries) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in entries {
        eat(k.as_bytes());
        eat(b"\t");
        eat(v.as_bytes());
        eat(b"\n");
    }
    format!("fnv1a64:{h:016x}")
}

/// A generation's record at `PREFIX/gens/NAME/G/record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub generation: u64,
    pub checksum: String,
    pub entries: usize,
    pub author: String,
}

impl Record {
    pub fn to_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "checksum": self.checksum,
            "entries": self.entries,
            "author": self.author,
            "time_ms": crate::status::now_ms(),
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Record, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("record is not JSON: {e}"))?;
        let field = |name: &str| {
            v.get(name)
                .cloned()
                .ok_or_else(|| format!("record has no '{name}'"))
        };
        Ok(Record {
            generation: field("generation")?
                .as_u64()
                .ok_or("record: 'generation' is not a number")?,
            checksum: field("checksum")?
                .as_str()
                .ok_or("record: 'checksum' is not text")?
                .to_string(),
            entries: field("entries")?
                .as_u64()
                .ok_or("record: 'entries' is not a number")? as usize,
            author: v["author"].as_str().unwrap_or("").to_string(),
        })
    }
}

/// Reads `{"key":K,"value":V}` lines from `file` (`-`: standard input),
/// keys and values made canonical; names the first bad line.
pub fn read_lines(file: &str) -> Result<Vec<(String, String)>, SyncError> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(|e| SyncError::usage(format!("from {file}: {e}")))?,
        ))
    };
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| SyncError::usage(format!("from {file}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("from {file} line {}", n + 1);
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| SyncError::usage(format!("{}: not JSON: {e}", at())))?;
        let (Some(k), Some(val)) = (v.get("key"), v.get("value")) else {
            return Err(SyncError::usage(format!(
                "{}: expected {{\"key\":…,\"value\":…}}",
                at()
            )));
        };
        out.push((canonical_json("key", &k.to_string())?, val.to_string()));
    }
    Ok(out)
}

/// Who commits: `$USER@host` (or `uid N@host`).
fn author() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // The uid from /proc: no libc call (and no unsafe) here.
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| l.split_whitespace().nth(1).map(|u| format!("uid {u}")))
                })
                .unwrap_or_else(|| "unknown".into())
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

/// The highest generation under `PREFIX/gens/NAME/` (0 when none): the
/// generation of the key created last (numbers only grow, and a record is
/// created before its entries), asked of etcd as one key: a listing of the
/// keys would pass gRPC's message limit once generations hold 100,000
/// entries.
async fn newest(c: &Client, t: Duration, p: &Prefix, map: &str) -> Result<u64, SyncError> {
    let base = p.gens(map);
    let (r, _) = retry::until(t, &format!("read {base}"), || {
        let mut c = c.clone();
        let base = base.clone();
        async move {
            let end = crate::snapshot::prefix_end(base.as_bytes());
            let o = GetOptions::new()
                .with_keys_only()
                .with_range(end)
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_limit(1);
            c.get(base, Some(o)).await
        }
    })
    .await?;
    Ok(r.kvs()
        .first()
        .and_then(|kv| {
            let rest = kv.key().strip_prefix(base.as_bytes())?;
            let g = std::str::from_utf8(rest).ok()?.split('/').next()?;
            g.parse::<u64>().ok()
        })
        .unwrap_or(0))
}

/// What a commit did.
pub struct Committed {
    pub record: Record,
    pub revision: i64,
    pub transactions: usize,
}

/// Publishes generation `g` of `map` (`PREFIX/current/NAME` = G) when the
/// pointer's mod revision is still `seen_mod` (0: absent); false when
/// another writer moved it. Retried through elections until `t`.
pub async fn publish(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
    seen_mod: i64,
    also: Vec<TxnOp>,
) -> Result<(bool, i64), SyncError> {
    let key = p.current(map);
    let guard = if seen_mod == 0 {
        Compare::create_revision(key.as_str(), CompareOp::Equal, 0)
    } else {
        Compare::mod_revision(key.as_str(), CompareOp::Equal, seen_mod)
    };
    let mut ops = vec![TxnOp::put(key.as_str(), g.to_string(), None)];
    ops.extend(also);
    let txn = Txn::new().when([guard]).and_then(ops);
    txn_put_once(
        c,
        t,
        &format!("publish map {map} generation {g}"),
        txn,
        &key,
        &g.to_string(),
    )
    .await
}

/// The generation published for `map` and the pointer's mod revision
/// (0, 0 when none).
pub async fn published(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
) -> Result<(u64, i64), SyncError> {
    let key = p.current(map);
    let (r, _) = retry::until(t, &format!("read {key}"), || {
        let mut c = c.clone();
        let k = key.clone();
        async move { c.get(k, None).await }
    })
    .await?;
    Ok(r.kvs().first().map_or((0, 0), |kv| {
        let g = std::str::from_utf8(kv.value())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        (g, kv.mod_revision())
    }))
}

/// The record of generation `g` of `map`, if it was written.
pub async fn record(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
) -> Result<Option<Record>, SyncError> {
    record_json(c, t, p, map, g)
        .await?
        .map(|v| Record::from_json(v.to_string().as_bytes()))
        .transpose()
        .map_err(|e| SyncError::other(format!("{}: {e}", p.gen_record(map, g))))
}

/// The record of generation `g` of `map` as JSON (with the fields a
/// rollout adds, such as `rolled_back`), if it was written.
pub async fn record_json(
    c: &Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    g: u64,
) -> Result<Option<Value>, SyncError> {
    let key = p.gen_record(map, g);
    let (r, _) = retry::until(t, &format!("read {key}"), || {
        let mut c = c.clone();
        let k = key.clone();
        async move { c.get(k, None).await }
    })
    .await?;
    match r.kvs().first() {
        None => Ok(None),
        Some(kv) => serde_json::from_slice(kv.value())
            .map(Some)
            .map_err(|e| SyncError::other(format!("{key}: not JSON: {e}"))),
    }
}

/// Runs `txn` (a compare, then one put, else a get of `key`) until it
/// answers, through elections (until `t`). True when the put happened:
/// now, or in an attempt before whose answer was lost (`key` then holds
/// `mine`).
async fn txn_put_once(
    c: &Client,
    t: Duration,
    what: &str,
    txn: Txn,
    key: &str,
    mine: &str,
) -> Result<(bool, i64), SyncError> {
    let txn = txn.or_else([TxnOp::get(key, None)]);
    let (r, retried) = retry::until(t, what, || {
        let mut c = c.clone();
        let txn = txn.clone();
        async move { c.txn(txn).await }
    })
    .await?;
    let rev = r.header().map_or(0, |h| h.revision());
    if r.succeeded() {
        return Ok((true, rev));
    }
    let held = r.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
        _ => None,
    });
    Ok((retried && held.as_deref() == Some(mine.as_bytes()), rev))
}

/// `tcbpf sync commit … map NAME from FILE`; every request retried
/// through an etcd election until `t` (see `retry`).
pub async fn commit(
    c: &mut Client,
    t: Duration,
    p: &Prefix,
    map: &str,
    file: &str,
    publish: bool,
) -> Result<Committed, SyncError> {
    let entries: Entries = read_lines(file)?.into_iter().collect();
    crate::types::check_entries(c, t, p, map, &entries).await?;
    let current_key = p.current(map);
    let (current, _) = retry::until(t, &format!("read {current_key}"), || {
        let mut c = c.clone();
        let k = current_key.clone();
        async move { c.get(k, None).await }
    })
    .await?;
    let seen_mod = current.kvs().first().map_or(0, |kv| kv.mod_revision());
    let in_force: u64 = current
        .kvs()
        .first()
        .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.trim().parse().ok())
        .unwrap_or(0);
    let g = newest(c, t, p, map).await?.max(in_force) + 1;
    let record = Record {
        generation: g,
        checksum: checksum(&entries),
        entries: entries.len(),
        author: author(),
    };
    let what = format!("commit map {map} generation {g}");
    let rkey = p.gen_record(map, g);
    let rtext = record.to_json().to_string();
    let take = Txn::new()
        .when([Compare::create_revision(rkey.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(rkey.as_str(), rtext.as_str(), None)]);
    if !txn_put_once(c, t, &what, take, &rkey, &rtext).await?.0 {
        return Err(SyncError::other(format!(
            "{what}: another commit took generation {g} meanwhile (run it again)"
        )));
    }
    let base = p.gen_entries(map, g);
    let mut chunks: Vec<Vec<TxnOp>> = Vec::new();
    let (mut ops, mut bytes) = (Vec::new(), 0);
    for (k, v) in &entries {
        let key = format!("{base}{}", crate::layout::escape(k));
        if !ops.is_empty() && (ops.len() == TXN_OPS || bytes + key.len() + v.len() > TXN_BYTES) {
            chunks.push(std::mem::take(&mut ops));
            bytes = 0;
        }
        bytes += key.len() + v.len();
        ops.push(TxnOp::put(key, v.as_str(), None));
    }
    if !ops.is_empty() {
        chunks.push(ops);
    }
    let mut transactions = 1 + chunks.len();
    for chunk in chunks {
        // Puts of the same values: a retry after a lost answer is harmless.
        retry::until(t, &what, || {
            let mut c = c.clone();
            let chunk = chunk.clone();
            async move { c.txn(Txn::new().and_then(chunk)).await }
        })
        .await?;
    }
    if !publish {
        return Ok(Committed {
            record,
            revision: 0,
            transactions,
        });
    }
    // Publish: only when nobody published since we read the pointer.
    let guard = if seen_mod == 0 {
        Compare::create_revision(current_key.as_str(), CompareOp::Equal, 0)
    } else {
        Compare::mod_revision(current_key.as_str(), CompareOp::Equal, seen_mod)
    };
    let publish =
        Txn::new()
            .when([guard])
            .and_then([TxnOp::put(current_key.as_str(), g.to_string(), None)]);
    let (done, revision) = txn_put_once(c, t, &what, publish, &current_key, &g.to_string()).await?;
    transactions += 1;
    if !done {
        return Err(SyncError::other(format!(
            "{what}: another commit published {current_key} meanwhile; generation {g} is \
             written but not published (run the commit again)"
        )));
    }
    Ok(Committed {
        record,
        revision,
        transactions,
    })
}

/// Reads generation `g` of `map` at `revision`: `Err` when etcd fails
/// (try again), `Ok(Err(why))` when the generation cannot be applied (no
/// record, an entry that does not unescape or is too large, a count or
/// checksum that differs from the record's).
pub async fn read(
    c: &mut Client,
    p: &Prefix,
    map: &str,
    g: u64,
    revision: i64,
) -> Result<Result<(Record, Entries), String>, SyncError> {
    let rkey = p.gen_record(map, g);
    let (rec, _) = crate::snapshot::read_prefix(c, &rkey, revision).await?;
    let Some(rec) = rec.into_iter().find(|e| e.key == rkey.as_bytes()) else {
        return Ok(Err(format!("generation {g}: no record at {rkey}")));
    };
    let crate::snapshot::Value::Bytes(rec) = rec.value else {
        return Ok(Err(format!("generation {g}: record too large")));
    };
    let record = match Record::from_json(&rec) {
        Ok(r) => r,
        Err(e) => return Ok(Err(format!("generation {g}: {e}"))),
    };
    let base = p.gen_entries(map, g);
    let (kvs, _) = crate::snapshot::read_prefix(c, &base, revision).await?;
    let mut entries = Entries::new();
    for e in kvs {
        let part = &e.key[base.len()..];
        let key = match crate::layout::unescape(part) {
            Ok(k) => k,
            Err(bad) => return Ok(Err(format!("generation {g}: {bad}"))),
        };
        let crate::snapshot::Value::Bytes(v) = e.value else {
            return Ok(Err(format!(
                "generation {g}: key {key}: value too large to read"
            )));
        };
        let v = match String::from_utf8(v) {
            Ok(v) => v,
            Err(_) => {
                return Ok(Err(format!(
                    "generation {g}: key {key}: value is not UTF-8"
                )))
            }
        };
        entries.insert(key, v);
    }
    let sum = checksum(&entries);
    if entries.len() != record.entries || sum != record.checksum {
        return Ok(Err(format!(
            "generation {g}: read {} entries with checksum {sum}, the record says {} with {}",
            entries.len(),
            record.entries,
            record.checksum
        )));
    }
    Ok(Ok((record, entries)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_depends_on_every_key_and_value_not_on_input_order() {
        let a: Entries = [("1".into(), "1".into()), ("2".into(), "1".into())].into();
        let b: Entries = [("2".into(), "1".into()), ("1".into(), "1".into())].into();
        assert_eq!(checksum(&a), checksum(&b));
        let c: Entries = [("1".into(), "1".into()), ("2".into(), "2".into())].into();
        assert_ne!(checksum(&a), checksum(&c));
        let d: Entries = [("12".into(), "1".into())].into();
        let e: Entries = [("1".into(), "21".into())].into();
        assert_ne!(checksum(&d), checksum(&e));
        assert_eq!(checksum(&Entries::new()), "fnv1a64:cbf29ce484222325");
    }

    #[test]
    fn record_round_trips_and_names_a_missing_field() {
        let r = Record {
            generation: 7,
            checksum: "fnv1a64:0000000000000001".into(),
            entries: 3,
            author: "root@h".into(),
        };
        let text = r.to_json().to_string();
        assert_eq!(Record::from_json(text.as_bytes()).unwrap(), r);
        let e = Record::from_json(br#"{"generation":1}"#).unwrap_err();
        assert!(e.contains("no 'checksum'"), "{e}");
    }
}

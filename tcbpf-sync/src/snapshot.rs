//! Reading a whole prefix at one revision, page by page: the first page
//! fixes the revision and every later page is read at it, so the result is
//! one consistent snapshot however large the policy (a single range of
//! 100,000 entries would pass gRPC's message limit).
//!
//! Pages are bounded by count ([`PAGE`] entries) and, as etcd cannot bound
//! a range by bytes, by size after the fact: a response over
//! [`READ_MESSAGE_LIMIT`] fails to decode (gRPC `OutOfRange`), and the same
//! page is read again at half the count, down to one entry; the count grows
//! back after each page that fits. An entry too large to read alone is
//! listed by its key (read keys-only) with [`Value::TooLarge`], so the
//! caller can reject it and the read goes on. Reads only.

use crate::error::SyncError;
use etcd_client::{Client, GetOptions};

/// Entries per range request, at most.
pub const PAGE: i64 = 10_000;
/// The largest range response read (gRPC's default is 4 MiB: three values
/// of 1.4 MB, within etcd's default request limit, passed it).
pub const READ_MESSAGE_LIMIT: usize = 16 << 20;

/// An entry's value as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// The bytes.
    Bytes(Vec<u8>),
    /// Not read: one response holding it alone passed the read limit.
    TooLarge,
}

/// One entry of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Value,
    pub mod_revision: i64,
}

/// The end of the range of keys starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// True for the failure of a response too large to decode.
fn too_large(e: &etcd_client::Error) -> bool {
    match e {
        // tonic's decoder: OutOfRange; a server's send limit:
        // ResourceExhausted "… larger than max …" (etcd's "too many
        // requests" is ResourceExhausted too, and no reason to shrink).
        etcd_client::Error::GRpcStatus(s) => {
            i32::from(s.code()) == 11
                || (i32::from(s.code()) == 8 && s.message().contains("larger than max"))
        }
        _ => false,
    }
}

/// Every entry under `prefix` at `revision` (0: now), in key order, and
/// the revision read.
pub async fn read_prefix(
    c: &mut Client,
    prefix: &str,
    revision: i64,
) -> Result<(Vec<Entry>, i64), SyncError> {
    let end = prefix_end(prefix.as_bytes());
    let mut kv = c.kv_client().max_decoding_message_size(READ_MESSAGE_LIMIT);
    let mut from = prefix.as_bytes().to_vec();
    let mut revision = revision;
    let mut page = PAGE;
    let mut out = Vec::new();
    let read_err = |e| SyncError::etcd(&format!("read {prefix}"), e);
    loop {
        let mut o = GetOptions::new().with_range(end.clone()).with_limit(page);
        if revision > 0 {
            o = o.with_revision(revision);
        }
        let r = match kv.get(from.clone(), Some(o.clone())).await {
            Ok(r) => {
                page = (page * 2).min(PAGE);
                r
            }
            Err(e) if too_large(&e) && page > 1 => {
                page /= 2;
                continue;
            }
            Err(e) if too_large(&e) => {
                // One entry passes the limit alone: list its key.
                let r = kv
                    .get(from.clone(), Some(o.with_keys_only()))
                    .await
                    .map_err(read_err)?;
                if revision == 0 {
                    revision = r.header().map_or(0, |h| h.revision());
                }
                let Some(k) = r.kvs().first() else {
                    return Ok((out, revision));
                };
                out.push(Entry {
                    key: k.key().to_vec(),
                    value: Value::TooLarge,
                    mod_revision: k.mod_revision(),
                });
                from = k.key().to_vec();
                from.push(0);
                if !r.more() {
                    return Ok((out, revision));
                }
                continue;
            }
            Err(e) => return Err(read_err(e)),
        };
        if revision == 0 {
            revision = r.header().map_or(0, |h| h.revision());
        }
        for kv in r.kvs() {
            out.push(Entry {
                key: kv.key().to_vec(),
                value: Value::Bytes(kv.value().to_vec()),
                mod_revision: kv.mod_revision(),
            });
        }
        match (r.more(), r.kvs().last()) {
            (true, Some(last)) => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => return Ok((out, revision)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"/p/maps/"), b"/p/maps0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}

//! Reading a whole prefix at one revision, page by page: the first page
//! fixes the revision and every later page is read at it, so the result is
//! one consistent snapshot however large the policy (a single range of
//! 100,000 entries would pass gRPC's 4 MiB message limit). Reads only.

use crate::error::SyncError;
use etcd_client::{Client, GetOptions};

/// Entries per range request.
const PAGE: i64 = 10_000;

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

/// (key, value, mod revision) of every key under `prefix` at `revision`
/// (0: now), and the revision read.
pub async fn read_prefix(
    c: &mut Client,
    prefix: &str,
    revision: i64,
) -> Result<(Vec<(Vec<u8>, Vec<u8>, i64)>, i64), SyncError> {
    let end = prefix_end(prefix.as_bytes());
    let mut from = prefix.as_bytes().to_vec();
    let mut revision = revision;
    let mut out = Vec::new();
    loop {
        let mut o = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision > 0 {
            o = o.with_revision(revision);
        }
        let r = c
            .get(from.clone(), Some(o))
            .await
            .map_err(|e| SyncError::etcd(&format!("read {prefix}"), e))?;
        if revision == 0 {
            revision = r.header().map_or(0, |h| h.revision());
        }
        for kv in r.kvs() {
            out.push((kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()));
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

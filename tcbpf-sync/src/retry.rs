//! Writes that survive an etcd leader election: a write failing for a
//! reason that passes (no leader, the leader changed, a request timed out
//! during the election, a member unreachable) is sent again, after a short
//! pause, until the `timeout` of the command; other failures (a refusal, a
//! bad request) end it at once. Only idempotent writes go through here:
//! puts, deletes, and transactions whose retry is checked by their caller.

use crate::error::SyncError;
use etcd_client::Error;
use std::future::Future;
use std::time::{Duration, Instant};

/// The default `timeout`: a few seconds above etcd's default election
/// timeout (1 s), and the time a client takes to move off a dead member.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// True for a failure an election or a dead member explains.
pub fn transient(e: &Error) -> bool {
    // A certificate or TLS refusal stays a refusal however often it is tried.
    let text = crate::error::describe(e).to_ascii_lowercase();
    if ["certificate", "tls", "handshake", "unknownissuer"]
        .iter()
        .any(|w| text.contains(w))
    {
        return false;
    }
    match e {
        Error::GRpcStatus(s) => {
            let m = s.message();
            // Unavailable, DeadlineExceeded, Aborted; Unknown with etcd's
            // election messages ("leader changed", "no leader",
            // "request timed out") or tonic's for a request whose
            // connection died under it ("transport error").
            matches!(i32::from(s.code()), 4 | 10 | 14)
                || (i32::from(s.code()) == 2
                    && ["leader", "timed out", "transport error", "connection"]
                        .iter()
                        .any(|w| m.contains(w)))
        }
        Error::TransportError(_) | Error::IoError(_) => true,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or `timeout` passes;
/// `Ok((value, retried))`, `retried` telling whether an attempt before
/// failed (its write may have happened).
pub async fn until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut op: F,
) -> Result<(T, bool), SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut retried = false;
    loop {
        let left = timeout.saturating_sub(t0.elapsed());
        let attempt = tokio::time::timeout(left.max(Duration::from_millis(1)), op()).await;
        match attempt {
            Ok(Ok(v)) => return Ok((v, retried)),
            Ok(Err(e)) if transient(&e) && t0.elapsed() + pause < timeout => {
                crate::log::debug(&format!(
                    "{what}: {} (retrying)",
                    crate::error::describe(&e)
                ));
            }
            Ok(Err(e)) => return Err(SyncError::etcd(what, e)),
            Err(_) => {
                return Err(SyncError::other(format!(
                    "{what}: no answer within the timeout of {} s",
                    timeout.as_secs_f64()
                )))
            }
        }
        retried = true;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// [`until`] for an operation that already says its failure as a
/// [`SyncError`] (a paged read): tried again while it is `transient`.
pub async fn again<T, F, Fut>(timeout: Duration, mut op: F) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SyncError>>,
{
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.transient && t0.elapsed() + pause < timeout => {
                crate::log::debug(&format!("{} (retrying)", e.message));
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

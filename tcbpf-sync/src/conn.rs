//! Opening an etcd client from [`Conn`]: endpoints, TLS (CA, client
//! certificate), user and password. The etcd-client crate does the
//! protocol, the balancing over endpoints and the token refresh. Nothing
//! here reads or writes keys (`read_live` only runs a read it is given,
//! again on a new client), and no password is ever logged.

use crate::args::Conn;
use crate::error::SyncError;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::time::Duration;

fn read(what: &str, path: &std::path::Path) -> Result<Vec<u8>, SyncError> {
    std::fs::read(path).map_err(|e| SyncError::usage(format!("{what} {}: {e}", path.display())))
}

/// The endpoints as URLs: `http://` by default, `https://` with TLS.
pub fn urls(c: &Conn) -> Vec<String> {
    let scheme = if c.tls() { "https://" } else { "http://" };
    c.endpoints
        .iter()
        .map(|e| {
            if e.contains("://") {
                e.clone()
            } else {
                format!("{scheme}{e}")
            }
        })
        .collect()
}

/// The client options `c` asks for.
pub fn options(c: &Conn) -> Result<ConnectOptions, SyncError> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
        .with_keep_alive_while_idle(true);
    if c.tls() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &c.cacert {
            tls = tls.ca_certificate(Certificate::from_pem(read("cacert", ca)?));
        }
        if let (Some(cert), Some(key)) = (&c.cert, &c.key) {
            tls = tls.identity(Identity::from_pem(read("cert", cert)?, read("key", key)?));
        }
        o = o.with_tls(tls);
    }
    if let Some((user, password)) = &c.user {
        o = o.with_user(user.clone(), password.clone());
    }
    Ok(o)
}

/// Connects (with a user, this authenticates at once).
pub async fn connect(c: &Conn) -> Result<Client, SyncError> {
    let urls = urls(c);
    Client::connect(&urls, Some(options(c)?))
        .await
        .map_err(|e| SyncError::etcd(&format!("etcd {}", urls.join(",")), e))
}

/// Connects to the first endpoint that answers, alone. A retry after a
/// member died uses this: a client over every endpoint can keep sending to
/// the dead one ("tcp connect error") until the command's timeout.
pub async fn connect_live(c: &Conn) -> Result<Client, SyncError> {
    let urls = urls(c);
    let mut last = None;
    for url in &urls {
        let attempt = async {
            let mut client = Client::connect([url], Some(options(c)?))
                .await
                .map_err(|e| SyncError::etcd(&format!("etcd {url}"), e))?;
            client
                .status()
                .await
                .map_err(|e| SyncError::etcd(&format!("etcd {url}"), e))?;
            Ok::<Client, SyncError>(client)
        };
        match tokio::time::timeout(Duration::from_secs(2), attempt).await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                // As passing as a refused connection: the retry goes on.
                let mut e = SyncError::other(format!("etcd {url}: no answer within 2 s"));
                e.transient = true;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| SyncError::usage("no etcd endpoint given")))
}

/// A read (`get`, `list`, `status`) retried through an election until
/// `t`, as writes are: the first attempt on `first`, each retry on a
/// client connected again by [`connect_live`]. Retrying on `first` could
/// keep failing until `t`.
pub async fn read_live<T, F, Fut>(
    conn: &Conn,
    first: &Client,
    t: Duration,
    mut op: F,
) -> Result<T, SyncError>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, SyncError>>,
{
    let t0 = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut client = Some(first.clone());
    // The read's own failure names what was read: kept when a reconnect
    // fails for a reason that passes too. A refusal (a certificate) ends
    // it at once, as itself.
    let mut read_failed: Option<SyncError> = None;
    loop {
        let attempt = match client.take() {
            Some(c) => op(c).await,
            None => match connect_live(conn).await {
                Ok(c) => op(c).await,
                Err(e) if e.transient => {
                    crate::log::debug(&format!("reconnect: {}", e.message));
                    Err(read_failed.clone().unwrap_or(e))
                }
                Err(e) => Err(e),
            },
        };
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) if e.transient && t0.elapsed() + pause < t => {
                crate::log::debug(&format!("{} (retrying)", e.message));
                read_failed = Some(e);
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

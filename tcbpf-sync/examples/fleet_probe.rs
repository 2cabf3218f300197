//! The measuring hand of `scripts/fleet-demo.sh`: writes to etcd and
//! watches the hosts' pinned maps directly (bpf lookups, no process per
//! sample), so the figures are sync's, not the probe's.
//!
//! ```text
//! fleet_probe latency EPS PREFIX N PIN…          put N ports one by one; time until every map has each
//! fleet_probe await N SECS PIN…                 seconds until every map holds addresses 0x0a000000 + 0..N
//! fleet_probe stream EPS PREFIX FROM TO MS       put ports FROM..TO every MS ms, retrying each until it lands
//! fleet_probe check EPS PREFIX NAME SECS PIN…    wait (≤ SECS) until every map equals PREFIX/maps/NAME/
//! ```
//!
//! Keys are integers in host byte order (u16 ports, u32 addresses), as
//! bpf/sync_block.c reads them. Not part of any product path.

use etcd_client::{Client, GetOptions};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tcbpf::sys::{self, MapFd};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn open(pins: &[String]) -> R<Vec<MapFd>> {
    pins.iter()
        .map(|p| {
            Ok(sys::obj::get_pinned_map(
                &PathBuf::from(p),
                sys::obj::open::RDONLY,
            )?)
        })
        .collect()
}

fn has(fd: &MapFd, key: &[u8]) -> bool {
    let mut v = [0u8; 8];
    sys::map::lookup(fd, key, &mut v[..1], 0).is_ok()
}

fn keys_of(fd: &MapFd) -> R<BTreeSet<u64>> {
    Ok(tcbpf::maps::read_all(fd)?
        .into_iter()
        .map(|(k, _)| {
            let mut b = [0u8; 8];
            b[..k.len()].copy_from_slice(&k);
            u64::from_le_bytes(b)
        })
        .collect())
}

async fn connect(eps: &str) -> R<Client> {
    let eps: Vec<String> = eps.split(',').map(|e| format!("http://{e}")).collect();
    Ok(Client::connect(eps, None).await?)
}

/// Puts until etcd takes it (bounded: 60 s); returns the retries.
async fn put_retrying(c: &mut Client, key: &str, value: &str) -> R<u32> {
    let t0 = Instant::now();
    let mut retries = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), c.put(key, value, None)).await {
            Ok(Ok(_)) => return Ok(retries),
            Ok(Err(e)) if t0.elapsed() > Duration::from_secs(60) => return Err(e.into()),
            Err(_) if t0.elapsed() > Duration::from_secs(60) => return Err("put timed out".into()),
            _ => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(eps: &str, prefix: &str, n: usize, pins: &[String]) -> R<()> {
    let maps = open(pins)?;
    let mut c = connect(eps).await?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let port = 20000 + i as u16;
        let key = port.to_ne_bytes();
        let t0 = Instant::now();
        c.put(format!("{prefix}/maps/blocked/{port}"), "1", None)
            .await?;
        let mut pending: Vec<&MapFd> = maps.iter().collect();
        while !pending.is_empty() {
            pending.retain(|m| !has(m, &key));
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("port {port}: {} hosts never got it", pending.len()).into());
            }
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "latency put→all {} hosts over {n} puts: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        maps.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}

/// Waits until every map holds `key` (a u32 address): with the policy
/// applied in revision order, the last key written means all of it. Then
/// checks every address 0x0a000000 + 0..n is there.
async fn await_all(n: u32, secs: u64, pins: &[String]) -> R<()> {
    let maps = open(pins)?;
    let t0 = Instant::now();
    let last = (0x0a00_0000 + n - 1).to_ne_bytes();
    let mut pending: Vec<&MapFd> = maps.iter().collect();
    while !pending.is_empty() {
        pending.retain(|m| !has(m, &last));
        if t0.elapsed() > Duration::from_secs(secs) {
            return Err(format!("{} hosts never converged", pending.len()).into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let converged = t0.elapsed();
    for (m, pin) in maps.iter().zip(pins) {
        let k = keys_of(m)?;
        if !(0..n).all(|i| k.contains(&u64::from(0x0a00_0000 + i))) {
            return Err(format!("{pin}: not every address present after convergence").into());
        }
    }
    println!("{:.3}", converged.as_secs_f64());
    Ok(())
}

async fn stream(eps: &str, prefix: &str, from: u16, to: u16, ms: u64) -> R<()> {
    let mut c = connect(eps).await?;
    let (mut retried, mut longest) = (0u32, Duration::ZERO);
    for port in from..to {
        let t0 = Instant::now();
        if put_retrying(&mut c, &format!("{prefix}/maps/blocked/{port}"), "1").await? > 0 {
            retried += 1;
        }
        longest = longest.max(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    println!(
        "stream: {} puts all acknowledged, {retried} needed a retry, longest put {:.0} ms",
        to - from,
        longest.as_secs_f64() * 1000.0
    );
    Ok(())
}

async fn check(eps: &str, prefix: &str, name: &str, secs: u64, pins: &[String]) -> R<bool> {
    let maps = open(pins)?;
    let c = connect(eps).await?;
    let t0 = Instant::now();
    let dir = format!("{prefix}/maps/{name}/");
    loop {
        let r = match c
            .kv_client()
            .max_decoding_message_size(256 << 20)
            .get(
                dir.clone(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await
        {
            Ok(r) => r,
            // A member down: the next try may reach another.
            Err(_) if t0.elapsed() < Duration::from_secs(secs) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let want: BTreeSet<u64> = r
            .kvs()
            .iter()
            .filter_map(|kv| {
                std::str::from_utf8(&kv.key()[dir.len()..])
                    .ok()?
                    .parse()
                    .ok()
            })
            .collect();
        let mut lines = Vec::new();
        for (m, pin) in maps.iter().zip(pins) {
            let have = keys_of(m)?;
            let missing = want.difference(&have).count();
            let extra = have.difference(&want).count();
            if missing + extra > 0 {
                lines.push(format!("{pin}: {missing} missing, {extra} extra"));
            }
        }
        if lines.is_empty() {
            println!(
                "check {name}: all {} hosts equal the policy ({} entries) after {:.2} s",
                maps.len(),
                want.len(),
                t0.elapsed().as_secs_f64()
            );
            return Ok(true);
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            println!(
                "check {name}: NOT equal after {secs} s: {}",
                lines.join("; ")
            );
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r: R<bool> = rt.block_on(async {
        let num = |i: usize| -> R<u64> { Ok(a.get(i).ok_or("missing argument")?.parse()?) };
        match a.first().map(String::as_str) {
            Some("latency") => latency(&a[1], &a[2], num(3)? as usize, &a[4..])
                .await
                .map(|_| true),
            Some("await") => await_all(num(1)? as u32, num(2)?, &a[3..])
                .await
                .map(|_| true),
            Some("stream") => stream(&a[1], &a[2], num(3)? as u16, num(4)? as u16, num(5)?)
                .await
                .map(|_| true),
            Some("check") => check(&a[1], &a[2], &a[3], num(4)?, &a[5..]).await,
            _ => Err("usage: fleet_probe { latency | await | stream | check } …".into()),
        }
    });
    match r {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("fleet_probe: {e}");
            std::process::exit(4);
        }
    }
}

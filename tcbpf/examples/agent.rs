//! An example agent: takes the maps an exporter handed over and prints their
//! counters periodically.
//!
//! ```text
//! # started by the exec proxy: the maps come from BPF_NUM_MAPS / BPF_MAP*
//! tcbpf exec bpf import /tmp/bpf.sock run agent --count 10
//! # or receiving them itself on a socket path
//! agent --socket /tmp/bpf.sock [--interval MS] [--count N] [--allow-uid UID]
//! ```
//!
//! Each sample lists every map and its entries: the key (as u32 when it is 4
//! bytes, else hex) and the value as u64 words (summed over CPUs for per-CPU
//! maps), e.g. `key 6: 12 3400` for the demo's packets/bytes per protocol.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;
use tcbpf::exec::agent;
use tcbpf::scm::ReceiveOptions;
use tcbpf::sys::{self, info::MapInfo, map};

/// A map the agent watches.
struct Watched {
    id: Option<u32>,
    fd: sys::MapFd,
    info: MapInfo,
}

struct Options {
    socket: Option<PathBuf>,
    interval: Duration,
    count: u64,
    allowed_uids: Vec<u32>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        socket: None,
        interval: Duration::from_secs(1),
        count: 5,
        allowed_uids: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "--socket" => o.socket = Some(PathBuf::from(value("a path")?)),
            "--interval" => {
                let ms: u64 = value("milliseconds")?
                    .parse()
                    .map_err(|_| "--interval: not a number")?;
                o.interval = Duration::from_millis(ms);
            }
            "--count" => {
                o.count = value("a number")?
                    .parse()
                    .map_err(|_| "--count: not a number")?
            }
            "--allow-uid" => o.allowed_uids.push(
                value("a uid")?
                    .parse()
                    .map_err(|_| "--allow-uid: not a number")?,
            ),
            "-h" | "--help" => {
                println!(
                    "usage: agent [--socket PATH] [--interval MS] [--count N] [--allow-uid UID]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    Ok(o)
}

fn take_maps(o: &Options) -> Result<Vec<Watched>, String> {
    match &o.socket {
        None => Ok(agent::from_env()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|m| Watched {
                id: m.id,
                fd: m.fd,
                info: m.info,
            })
            .collect()),
        Some(path) => {
            let opts = ReceiveOptions {
                allowed_uids: o.allowed_uids.clone(),
                stop_on_signals: true,
                ..Default::default()
            };
            let got = agent::receive(path, &opts).map_err(|e| e.to_string())?;
            println!(
                "received {} map(s) from '{}'",
                got.maps.len(),
                got.object.name
            );
            Ok(got
                .maps
                .into_iter()
                .map(|m| Watched {
                    id: Some(m.desc.id),
                    fd: m.fd,
                    info: m.info,
                })
                .collect())
        }
    }
}

fn show_key(key: &[u8]) -> String {
    match <[u8; 4]>::try_from(key) {
        Ok(k) => u32::from_ne_bytes(k).to_string(),
        Err(_) => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The value as u64 words, per-CPU slots summed; hex when not 8-aligned.
fn show_value(info: &MapInfo, value: &[u8], cpus: usize) -> String {
    let size = info.value_size as usize;
    if size % 8 != 0 {
        return value[..size].iter().map(|b| format!("{b:02x}")).collect();
    }
    let slot = size.next_multiple_of(8);
    let mut words = vec![0u64; size / 8];
    for cpu in 0..cpus {
        for (i, w) in words.iter_mut().enumerate() {
            let at = cpu * slot + i * 8;
            *w = w.wrapping_add(u64::from_ne_bytes(value[at..at + 8].try_into().unwrap()));
        }
    }
    words
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_map(m: &Watched, cpus: usize) -> Result<(), sys::Error> {
    let info = &m.info;
    let percpu = info.kind().is_some_and(|k| k.is_percpu());
    let cpus = if percpu { cpus } else { 1 };
    let id = m.id.map_or("-".to_string(), |i| i.to_string());
    let mut key = vec![0u8; info.key_size as usize];
    let mut value = vec![0u8; (info.value_size as usize).next_multiple_of(8) * cpus];
    let mut lines = Vec::new();
    let mut have = map::next_key(m.fd.as_fd(), None, &mut key)?;
    while have && lines.len() < 64 {
        match map::lookup(m.fd.as_fd(), &key, &mut value, 0) {
            Ok(()) => lines.push(format!(
                "  key {}: {}",
                show_key(&key),
                show_value(info, &value, cpus)
            )),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let prev = key.clone();
        have = map::next_key(m.fd.as_fd(), Some(&prev), &mut key)?;
    }
    println!(
        "map {id} '{}' {}: {} entr{}",
        info.name,
        info.type_name(),
        lines.len(),
        if lines.len() == 1 { "y" } else { "ies" }
    );
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|o| {
        let maps = take_maps(&o)?;
        let cpus = sys::possible_cpus().map_err(|e| e.to_string())?;
        for sample in 1..=o.count {
            println!("--- sample {sample}");
            for m in &maps {
                print_map(m, cpus).map_err(|e| e.to_string())?;
            }
            if sample < o.count {
                std::thread::sleep(o.interval);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("agent: {e}");
        std::process::exit(1);
    }
}

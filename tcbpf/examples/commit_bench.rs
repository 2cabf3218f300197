//! The raw figures for `scripts/bench-commit.sh`, on the outer map of
//! `bpf/policy_gen.o` pinned at OUTER (slot 0):
//!
//! ```text
//! commit_bench raw OUTER N VALUE   create a map like the inner one in force and
//!                                  fill keys 0..N with VALUE by UPDATE_BATCH
//!                                  (no parsing, no generation, no swap)
//! commit_bench swaps OUTER COUNT   publish two prebuilt generations alternately
//!                                  COUNT times; print p50, p99 and max in
//!                                  microseconds of the update's return, then of
//!                                  the new inner map being seen in the slot
//! ```
//!
//! Benchmark support only: it checks nothing beyond the syscalls' results.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;
use tcbpf::maps::generation as gen;
use tcbpf::sys::{map, obj};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["raw", outer, n, value] => match (n.parse(), value.parse()) {
            (Ok(n), Ok(v)) => raw(Path::new(outer), n, v),
            _ => Err(format!("'{n}' or '{value}' is not a number")),
        },
        ["swaps", outer, count] => match count.parse() {
            Ok(c) => swaps(Path::new(outer), c),
            Err(_) => Err(format!("'{count}' is not a count")),
        },
        _ => Err("usage: commit_bench { raw OUTER N VALUE | swaps OUTER COUNT }".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("commit_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn template(outer: &Path) -> Result<(tcbpf::sys::MapFd, gen::InnerTemplate), String> {
    let fd = obj::get_pinned_map(outer, obj::open::RDWR).map_err(|e| e.to_string())?;
    let inner = gen::in_force(&fd, 0)
        .map_err(|e| e.to_string())?
        .ok_or("slot 0 is empty")?;
    let t = gen::InnerTemplate::from_info(&inner.info).map_err(|e| e.to_string())?;
    Ok((fd, t))
}

fn raw(outer: &Path, n: u32, value: u32) -> Result<(), String> {
    let (_, t) = template(outer)?;
    let m = map::create(&map::MapCreate {
        map_type: t.map_type,
        key_size: t.key_size,
        value_size: t.value_size,
        max_entries: t.max_entries,
        map_flags: t.map_flags,
        name: "raw_bench",
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let sizes = map::ElemSizes::of(&m).map_err(|e| e.to_string())?;
    const CHUNK: u32 = 1 << 16;
    let mut keys = Vec::with_capacity(CHUNK as usize * 4);
    let mut values = Vec::with_capacity(CHUNK as usize * 4);
    let mut start = 0u32;
    while start < n {
        let end = n.min(start.saturating_add(CHUNK));
        keys.clear();
        values.clear();
        for k in start..end {
            keys.extend_from_slice(&k.to_ne_bytes());
            values.extend_from_slice(&value.to_ne_bytes());
        }
        map::update_batch(&m, &sizes, &keys, &values, map::update::ANY)
            .map_err(|p| format!("{} after {} of the chunk", p.error, p.done))?;
        start = end;
    }
    Ok(())
}

fn swaps(outer: &Path, count: usize) -> Result<(), String> {
    let (fd, t) = template(outer)?;
    let built: Vec<_> = [1u32, 2]
        .iter()
        .map(|&v| {
            let keys: Vec<u8> = (0..100u32).flat_map(|k| k.to_ne_bytes()).collect();
            let values: Vec<u8> = (0..100u32).flat_map(|_| v.to_ne_bytes()).collect();
            let plan =
                gen::plan_commit(t.clone(), 0, 0, v, &keys, &values).map_err(|e| e.to_string())?;
            gen::build(&plan, &keys, &values).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let ids: Vec<u32> = built
        .iter()
        .map(|m| tcbpf::sys::info::map_info(m).map(|i| i.id))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    // A second thread watches the slot from user space (a lookup of the
    // outer map returns the inner map's id) and notes when the new
    // generation is in force; the caller's update returns only after the
    // RCU grace period that follows.
    let base = Instant::now();
    let target = AtomicU32::new(0);
    let started = AtomicU64::new(0);
    let seen = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let (mut returned, mut visible) = (Vec::with_capacity(count), Vec::with_capacity(count));
    std::thread::scope(|s| -> Result<(), String> {
        s.spawn(|| {
            let mut id = [0u8; 4];
            while !done.load(Ordering::Acquire) {
                let want = target.load(Ordering::Acquire);
                if want == 0 || seen.load(Ordering::Acquire) != 0 {
                    // Idle between swaps: a real-time spinner that never
                    // sleeps is throttled by the kernel, and that pause
                    // would be measured as the swap's.
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    continue;
                }
                if map::lookup(&fd, &0u32.to_ne_bytes(), &mut id, 0).is_ok()
                    && u32::from_ne_bytes(id) == want
                {
                    let t = base.elapsed().as_nanos() as u64;
                    seen.store(t.max(1), Ordering::Release);
                }
            }
        });
        let result = (|| {
            for i in 0..count {
                seen.store(0, Ordering::Release);
                let t0 = base.elapsed().as_nanos() as u64;
                started.store(t0, Ordering::Release);
                target.store(ids[i % 2], Ordering::Release);
                gen::publish(&fd, 0, &built[i % 2]).map_err(|e| e.to_string())?;
                returned.push(base.elapsed().as_nanos() as u64 - t0);
                let end = Instant::now() + std::time::Duration::from_secs(1);
                while seen.load(Ordering::Acquire) == 0 && Instant::now() < end {
                    std::hint::spin_loop();
                }
                let t1 = seen.load(Ordering::Acquire);
                visible.push(t1.saturating_sub(started.load(Ordering::Acquire)));
                target.store(0, Ordering::Release);
                // Let the watcher settle before the next swap starts.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(())
        })();
        done.store(true, Ordering::Release);
        result
    })?;
    println!("{} {}", quantiles(&mut returned), quantiles(&mut visible));
    Ok(())
}

/// `p50 p99 max` of nanosecond samples, in microseconds.
fn quantiles(ns: &mut [u64]) -> String {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q).ceil() as usize).clamp(1, ns.len()) - 1];
    format!(
        "{:.1} {:.1} {:.1}",
        at(0.50) as f64 / 1e3,
        at(0.99) as f64 / 1e3,
        ns[ns.len() - 1] as f64 / 1e3
    )
}

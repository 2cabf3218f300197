//! The raw kernel limit for `scripts/bench-map.sh`: a minimal loop over
//! BPF_MAP_LOOKUP_BATCH or BPF_MAP_UPDATE_BATCH on a pinned u32 → u64 map,
//! with no parsing and no formatting.
//!
//! ```text
//! map_raw_batch dump PATH          read every entry, discard it
//! map_raw_batch update PATH N      write keys 0..N with value key*3
//! ```
//!
//! Benchmark support only: it checks nothing beyond the syscalls' results.

use std::path::Path;
use std::process::ExitCode;
use tcbpf::sys::{map, obj};

fn chunk() -> usize {
    std::env::var("CHUNK")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1 << 16)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["dump", path] => dump(Path::new(path)).map(|n| eprintln!("read {n} entries")),
        ["update", path, n] => match n.parse() {
            Ok(n) => update(Path::new(path), n),
            Err(_) => Err(format!("'{n}' is not a count")),
        },
        _ => Err("usage: map_raw_batch { dump PATH | update PATH N }".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("map_raw_batch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dump(path: &Path) -> Result<usize, String> {
    let fd = obj::get_pinned_map(path, obj::open::RDONLY).map_err(|e| e.to_string())?;
    let sizes = map::ElemSizes::of(&fd).map_err(|e| e.to_string())?;
    let mut keys = vec![0u8; chunk() * sizes.key()];
    let mut values = vec![0u8; chunk() * sizes.value()];
    let mut cursor = map::BatchCursor::new(&sizes);
    let mut total = 0;
    while !cursor.is_done() {
        total += map::lookup_batch(&fd, &sizes, &mut cursor, &mut keys, &mut values)
            .map_err(|e| e.to_string())?;
    }
    Ok(total)
}

fn update(path: &Path, n: u32) -> Result<(), String> {
    let fd = obj::get_pinned_map(path, obj::open::RDWR).map_err(|e| e.to_string())?;
    let sizes = map::ElemSizes::of(&fd).map_err(|e| e.to_string())?;
    if (sizes.key(), sizes.value()) != (4, 8) {
        return Err("expects a u32 -> u64 map".to_string());
    }
    let mut keys = Vec::with_capacity(chunk() * 4);
    let mut values = Vec::with_capacity(chunk() * 8);
    let mut start = 0u32;
    while start < n {
        let end = n.min(start.saturating_add(chunk() as u32));
        keys.clear();
        values.clear();
        for k in start..end {
            keys.extend_from_slice(&k.to_ne_bytes());
            values.extend_from_slice(&(k as u64 * 3).to_ne_bytes());
        }
        map::update_batch(&fd, &sizes, &keys, &values, map::update::ANY)
            .map_err(|p| format!("{} after {} of the chunk", p.error, p.done))?;
        start = end;
    }
    Ok(())
}

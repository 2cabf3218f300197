//! Health figures: what a follower publishes beside its acknowledgements
//! for a rollout's gate to read (`tcbpf sync etcd … health NAME MAP key
//! JSON [ member FIELD ]`). A figure is one integer of one entry of a map
//! of the node's own (a drop counter; per-CPU copies summed), read every
//! second; the node's report carries its value, its change per second
//! since the read before, and when both reads were made. An entry that is
//! absent counts 0 (a counter not created yet). Reads maps only: nothing
//! here talks to etcd, and the gate's comparison is `rollout`'s.

use crate::args::HealthSpec;
use crate::error::SyncError;
use crate::status::{now_ms, Shared};
use serde_json::{json, Value};
use std::time::Duration;
use tcbpf::sys::{self, MapFd};
use tcbpf::value::typed::{int_fields, sum_values, MapTypes};

/// How often each figure is read.
pub const EVERY: Duration = Duration::from_secs(1);

/// One figure, its map opened read-only and its key encoded.
pub struct Figure {
    pub name: String,
    fd: MapFd,
    types: MapTypes,
    key: Vec<u8>,
    /// The integer member's path (`""`: a scalar value).
    member: String,
}

impl Figure {
    /// Opens the map, encodes the key by the map's types and checks that
    /// the value has the integer `member` (the figure is read once).
    pub fn open(h: &HealthSpec) -> Result<Figure, SyncError> {
        let (what, fd) = crate::target::open_map(&h.map, sys::obj::open::RDONLY)?;
        let bad = |why: String| SyncError::usage(format!("health {}: map {what}: {why}", h.name));
        let info = sys::info::map_info(&fd).map_err(|e| bad(e.to_string()))?;
        if info
            .kind()
            .is_some_and(|k| k.holds_fds() || k.is_queue_or_stack())
        {
            return Err(bad(format!("a {} map holds no counter", info.type_name())));
        }
        let types = tcbpf::maps::types_or_untyped(&info).map_err(|e| bad(e.to_string()))?;
        let key_json: Value = serde_json::from_str(&h.key).map_err(|e| bad(e.to_string()))?;
        let key = types
            .encode_key(&key_json)
            .map_err(|e| bad(format!("key {}: {e}", h.key)))?;
        let figure = Figure {
            name: h.name.clone(),
            fd,
            types,
            key,
            member: h.member.clone().unwrap_or_default(),
        };
        // The member is checked on a zero value: the entry may be absent.
        let zero = vec![0u8; figure.types.value_buf_size()];
        if let Err(why) = figure.pick(&zero) {
            return Err(bad(why));
        }
        Ok(figure)
    }

    /// The member's integer in a whole value buffer.
    fn pick(&self, buf: &[u8]) -> Result<i128, String> {
        let values = self.types.decode_values(buf).map_err(|e| e.to_string())?;
        let summed = sum_values(&values).ok_or("no value")?;
        let ints = int_fields(&summed);
        if let Some((_, n)) = ints.iter().find(|(path, _)| *path == self.member) {
            return Ok(*n);
        }
        let members: Vec<&str> = ints
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| !p.is_empty())
            .collect();
        Err(if self.member.is_empty() {
            format!(
                "the value is no integer: name one of its members with 'member' ({})",
                members.join(", ")
            )
        } else {
            format!(
                "the value has no integer member '{}' (members: {})",
                self.member,
                if members.is_empty() {
                    "none: it is a scalar, give no 'member'".to_string()
                } else {
                    members.join(", ")
                }
            )
        })
    }

    /// The figure now (0 when the entry is absent).
    pub fn read(&self) -> Result<i128, String> {
        let mut buf = vec![0u8; self.types.value_buf_size()];
        match sys::map::lookup(&self.fd, &self.key, &mut buf, 0) {
            Ok(()) => self.pick(&buf),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(0),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// One reading of a figure, as the report shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub value: i128,
    /// Change per second since the reading before (`None` for the first).
    pub rate: Option<f64>,
    /// When it was read, and when the reading the rate is taken from was
    /// (epoch milliseconds).
    pub time_ms: u64,
    pub from_ms: Option<u64>,
    /// Why it could not be read (then `value` means nothing).
    pub error: Option<String>,
}

impl Sample {
    pub fn to_json(&self) -> Value {
        json!({
            "value": i64::try_from(self.value).unwrap_or(i64::MAX),
            "rate": self.rate,
            "time_ms": self.time_ms,
            "from_ms": self.from_ms,
            "error": self.error,
        })
    }
}

/// The next reading of each figure, given the one before.
fn next(figures: &[Figure], before: &[Sample], now: u64) -> Vec<Sample> {
    figures
        .iter()
        .enumerate()
        .map(|(i, f)| match f.read() {
            Ok(value) => {
                let prev = before
                    .get(i)
                    .filter(|p| p.error.is_none() && p.time_ms < now);
                Sample {
                    value,
                    rate: prev
                        .map(|p| (value - p.value) as f64 * 1000.0 / (now - p.time_ms) as f64),
                    time_ms: now,
                    from_ms: prev.map(|p| p.time_ms),
                    error: None,
                }
            }
            Err(e) => Sample {
                time_ms: now,
                error: Some(e),
                ..Sample::default()
            },
        })
        .collect()
}

/// Reads every figure every [`EVERY`] into the node's report, for ever
/// (the follower aborts the task when it stops).
pub async fn sample(figures: Vec<Figure>, shared: Shared) {
    if figures.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Vec<Sample> = Vec::new();
    loop {
        tick.tick().await;
        last = next(&figures, &last, now_ms());
        let named: Vec<(String, Sample)> = figures
            .iter()
            .map(|f| f.name.clone())
            .zip(last.iter().cloned())
            .collect();
        shared.update(|s| s.health = named);
    }
}

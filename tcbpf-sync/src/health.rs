//! Health figures: what a follower publishes beside its acknowledgements
//! for a rollout's gate to read (`tcbpf sync etcd … health NAME { MAP key
//! JSON [ member FIELD ] | prog PROG }`). A figure is one integer of one
//! entry of a map of the node's own (a drop counter; per-CPU copies
//! summed; an absent entry counts 0) or a program's run count (the
//! kernel's run statistics kept on while the follower runs), read every
//! second; the node's report carries its value, its change per second
//! since the read before, and when both reads were made. Reads only:
//! nothing here talks to etcd, and the gate's comparison is `rollout`'s.

use crate::error::SyncError;
use crate::figure::{HealthSource, HealthSpec, ProgRef};
use crate::status::{now_ms, Shared};
use serde_json::{json, Value};
use std::time::Duration;
use tcbpf::sys::{self, MapFd, ProgFd};
use tcbpf::value::typed::{int_fields, sum_values, MapTypes};

/// How often each figure is read.
pub const EVERY: Duration = Duration::from_secs(1);

/// One figure: its name and where it is read.
pub struct Figure {
    pub name: String,
    source: Source,
}

enum Source {
    Entry(Box<Entry>),
    /// A program, and the run statistics kept on while the figure lives.
    Runs {
        prog: ProgFd,
        _stats: sys::prog::StatsGuard,
    },
}

/// One map entry's integer: the map opened read-only, the key encoded.
struct Entry {
    fd: MapFd,
    types: MapTypes,
    key: Vec<u8>,
    /// The integer member's path (`""`: a scalar value).
    member: String,
}

impl Figure {
    /// Opens what `h` names: a map entry (the key encoded by the map's
    /// types, the integer `member` checked) or a program (run statistics
    /// turned on).
    pub fn open(h: &HealthSpec) -> Result<Figure, SyncError> {
        let source = match &h.source {
            HealthSource::Entry { map, key, member } => {
                Source::Entry(Box::new(Entry::open(&h.name, map, key, member.as_deref())?))
            }
            HealthSource::Runs(prog) => {
                let (what, fd) = match prog {
                    ProgRef::Pinned(p) => (
                        format!("pinned {}", p.display()),
                        sys::obj::get_pinned_prog(p),
                    ),
                    ProgRef::Id(id) => (format!("id {id}"), sys::obj::prog_by_id(*id)),
                };
                let fail = |e: sys::Error| {
                    SyncError::other(format!("health {}: prog {what}: {e}", h.name))
                };
                let fd = fd.map_err(|e| match e.errno() {
                    Some(libc::ENOENT) => {
                        SyncError::not_found(format!("health {}: prog {what}: {e}", h.name))
                    }
                    _ => fail(e),
                })?;
                Source::Runs {
                    prog: fd,
                    _stats: sys::prog::enable_stats().map_err(fail)?,
                }
            }
        };
        Ok(Figure {
            name: h.name.clone(),
            source,
        })
    }

    /// The figure now.
    pub fn read(&self) -> Result<i128, String> {
        match &self.source {
            Source::Entry(e) => e.read(),
            Source::Runs { prog, .. } => sys::info::prog_info(prog)
                .map(|i| i128::from(i.run_cnt))
                .map_err(|e| e.to_string()),
        }
    }
}

impl Entry {
    fn open(
        name: &str,
        map: &crate::args::MapRef,
        key: &str,
        member: Option<&str>,
    ) -> Result<Entry, SyncError> {
        let h_name = name;
        let what = map.to_string();
        let fd = map.open_with(sys::obj::open::RDONLY)?;
        let bad = |why: String| SyncError::usage(format!("health {h_name}: map {what}: {why}"));
        let info = sys::info::map_info(&fd).map_err(|e| bad(e.to_string()))?;
        if info
            .kind()
            .is_some_and(|k| k.holds_fds() || k.is_queue_or_stack())
        {
            return Err(bad(format!("a {} map holds no counter", info.type_name())));
        }
        let types = tcbpf::maps::types_or_untyped(&info).map_err(|e| bad(e.to_string()))?;
        let key_json: Value = serde_json::from_str(key).map_err(|e| bad(e.to_string()))?;
        let encoded = types
            .encode_key(&key_json)
            .map_err(|e| bad(format!("key {key}: {e}")))?;
        let figure = Entry {
            fd,
            types,
            key: encoded,
            member: member.unwrap_or_default().to_string(),
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

    /// The integer now (0 when the entry is absent).
    fn read(&self) -> Result<i128, String> {
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

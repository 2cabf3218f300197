//! The words of health figures and gates, parsed: `health FIGURE …` on
//! `tcbpf sync etcd` (what a follower reads, see `health`) and `gate
//! FIGURE …` on `tcbpf sync rollout` (what the canaries' figure must
//! keep, see `rollout`). No I/O.

use crate::args::{pick, MapForm, MapRef, Words};
use crate::error::SyncError;
use crate::layout::{canonical_json, check_name};
use std::path::PathBuf;

/// `health NAME { MAP key JSON [ member FIELD ] | prog PROG }`: a figure
/// the follower reads every second from a map or a program of its own
/// and publishes in its report, for a rollout's gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub name: String,
    pub source: HealthSource,
}

/// Where a health figure is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthSource {
    /// An integer of one map entry.
    Entry {
        map: MapRef,
        /// The key, canonical JSON (typed by the map's BTF).
        key: String,
        /// The integer member of the value (`packets`, `inner.a`,
        /// `arr[2]`); `None` for a scalar value.
        member: Option<String>,
    },
    /// A program's run count (`prog pinned PATH | prog id N`).
    Runs(ProgRef),
}

/// A program as `health … prog` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgRef {
    Pinned(PathBuf),
    Id(u32),
}

/// `gate NAME { rate | value } OP N [ window SECS ]`: the canaries' health
/// figure NAME must keep `measure OP limit` for `window` seconds after
/// they applied the generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub figure: String,
    pub measure: Measure,
    pub op: Op,
    pub limit: f64,
    pub window: u64,
}

/// What of a health figure a gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Its change per second over the last second.
    Rate,
    /// Its value.
    Value,
}

/// A gate's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn holds(self, x: f64, limit: f64) -> bool {
        match self {
            Op::Lt => x < limit,
            Op::Le => x <= limit,
            Op::Gt => x > limit,
            Op::Ge => x >= limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// The default gate window, seconds.
pub const GATE_WINDOW: u64 = 10;

/// `NAME { rate | value } OP N [ window SECS ]` after `gate`.
pub fn parse_gate(w: &mut Words) -> Result<Gate, SyncError> {
    let figure = w.expect("a health figure NAME after 'gate'")?;
    check_name("health figure", &figure)?;
    let word = w.expect("'rate' or 'value' after the figure's name")?;
    let measure = pick(
        &word,
        &[("rate", Measure::Rate), ("value", Measure::Value)],
        "gate measure",
    )?
    .1;
    let word = w.expect("a comparison (<, <=, >, >=) after the measure")?;
    let op = [("<", Op::Lt), ("<=", Op::Le), (">", Op::Gt), (">=", Op::Ge)]
        .into_iter()
        .find(|(s, _)| *s == word)
        .map(|(_, op)| op)
        .ok_or_else(|| {
            SyncError::usage(format!(
                "gate: unknown comparison '{word}' (expected one of: <, <=, >, >=)"
            ))
        })?;
    let text = w.expect("a number after the comparison")?;
    let limit: f64 = text
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| SyncError::usage(format!("gate: '{text}' is not a number")))?;
    let window = if w.eat("window") {
        let secs: u64 = w.number("seconds after 'window'")?;
        if secs == 0 {
            return Err(SyncError::usage("window: at least 1 second"));
        }
        secs
    } else {
        GATE_WINDOW
    };
    Ok(Gate {
        figure,
        measure,
        op,
        limit,
        window,
    })
}

/// Where `health NAME` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HealthWord {
    Map(MapForm),
    Prog,
}

#[derive(Clone, Copy, PartialEq)]
enum ProgWord {
    Pinned,
    Id,
}

/// `NAME { MAP key JSON [ member FIELD ] | prog { pinned PATH | id N } }`
/// after `health` (MAP: every form `tcbpf map` takes).
pub fn parse_health(w: &mut Words) -> Result<HealthSpec, SyncError> {
    let name = w.expect("a figure NAME after 'health'")?;
    check_name("health figure", &name)?;
    let word = w.expect("a MAP (the words of 'tcbpf map') or 'prog' after the figure's name")?;
    let mut words: Vec<(&str, HealthWord)> = MapForm::WORDS
        .iter()
        .map(|&(w, f)| (w, HealthWord::Map(f)))
        .collect();
    words.push(("prog", HealthWord::Prog));
    let map = match pick(&word, &words, "health source")?.1 {
        HealthWord::Map(form) => MapRef::parse_after(form, w)?,
        HealthWord::Prog => {
            let word = w.expect("'pinned PATH' or 'id N' after 'prog'")?;
            let progs = [("pinned", ProgWord::Pinned), ("id", ProgWord::Id)];
            let prog = match pick(&word, &progs, "program")?.1 {
                ProgWord::Id => ProgRef::Id(w.number("a program id after 'id'")?),
                ProgWord::Pinned => ProgRef::Pinned(w.expect("a path after 'pinned'")?.into()),
            };
            return Ok(HealthSpec {
                name,
                source: HealthSource::Runs(prog),
            });
        }
    };
    w.keyword("key")?;
    let key = canonical_json("key", &w.expect("a JSON key after 'key'")?)?;
    let member = if w.peek() == Some("member") {
        w.next();
        Some(w.expect("a FIELD after 'member'")?)
    } else {
        None
    };
    Ok(HealthSpec {
        name,
        source: HealthSource::Entry { map, key, member },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::tests::{no_env, words};
    use crate::args::{parse, Command};

    #[test]
    fn rollout_takes_a_gate_on_a_health_figure() {
        let (_, _, cmd) = parse(
            "rollout",
            &mut words("e:1 prefix /f map m gen 4 nodes a gate drops rate < 10 window 2"),
            no_env,
        )
        .unwrap();
        let Command::Rollout { gate: Some(g), .. } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            g,
            Gate {
                figure: "drops".into(),
                measure: Measure::Rate,
                op: Op::Lt,
                limit: 10.0,
                window: 2
            }
        );
        let (_, _, cmd) = parse(
            "rollout",
            &mut words("e:1 prefix /f map m gen 4 gate ok val >= 1.5"),
            no_env,
        )
        .unwrap();
        let Command::Rollout { gate: Some(g), .. } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            (g.measure, g.op, g.limit, g.window),
            (Measure::Value, Op::Ge, 1.5, GATE_WINDOW)
        );
        for (bad, why) in [
            ("gate drops rate =< 10", "unknown comparison '=<'"),
            ("gate drops speed < 10", "unknown gate measure 'speed'"),
            ("gate drops rate < ten", "'ten' is not a number"),
            ("gate drops rate < 1 window 0", "at least 1 second"),
            ("gate drops rate", "expected a comparison"),
        ] {
            let e = parse(
                "rollout",
                &mut words(&format!("e:1 prefix /f map m gen 4 {bad}")),
                no_env,
            )
            .unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn etcd_takes_health_figures() {
        let (_, _, cmd) = parse(
            "etcd",
            &mut words(
                "e:1 prefix /f pinned /x as blocked health drops pinned /s key 1 \
                 health errs id 9 key {\"a\":1} member inner.errors health runs prog id 4",
            ),
            no_env,
        )
        .unwrap();
        let Command::Etcd(o) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(o.maps.len(), 1);
        assert_eq!(
            o.health,
            [
                HealthSpec {
                    name: "drops".into(),
                    source: HealthSource::Entry {
                        map: MapRef::Pinned("/s".into()),
                        key: "1".into(),
                        member: None
                    }
                },
                HealthSpec {
                    name: "errs".into(),
                    source: HealthSource::Entry {
                        map: MapRef::Id(9),
                        key: r#"{"a":1}"#.into(),
                        member: Some("inner.errors".into())
                    }
                },
                HealthSpec {
                    name: "runs".into(),
                    source: HealthSource::Runs(ProgRef::Id(4))
                }
            ]
        );
        let e = parse(
            "etcd",
            &mut words("e:1 prefix /f pinned /x health d pinned /s key 1 health d id 2 key 1"),
            no_env,
        )
        .unwrap_err();
        assert!(e.message.contains("'d' given twice"), "{e}");
    }
}

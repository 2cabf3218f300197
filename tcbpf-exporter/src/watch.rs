//! `tcbpf map watch { MAP | dev DEV [ingress|egress] }… [interval SECS]
//! [sort FIELD] [top N] [count N]`: maps' counters with their rates per
//! second, refreshed every interval (`dev DEV`: the maps of the programs
//! attached there, found once at the start by `tcbpf::front::hooks`).
//! On a terminal: a full-screen table drawn with crossterm (alternate
//! screen, raw mode; `q`, Esc or Ctrl-C restores the terminal). Otherwise,
//! or with `-j`: one snapshot per interval on stdout, as text or as one JSON
//! object per line, so it pipes into other tools.
//!
//! Rates are computed here from two reads; reading maps is `read`'s job.
//! Each refresh streams the map: what stays in memory is the last read's
//! raw keys and values (for the rates) and the rows shown (`top N` of
//! them), see `watch_rows`.

use crate::args::{pick, Fail, Words};
use crate::collect::{render as render_part, IfNames};
use crate::keys::KeyPart;
use crate::read::ReadError;
use crate::read::StatMap;
use crate::watch_rows::{score, Snapshot, TopRows};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};
use tcbpf::attach::tcx::Direction;
use tcbpf::front::{MapForm, MapRef};
use tcbpf::value::FieldType;

/// The options after the MAP words.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Seconds between refreshes.
    pub interval: f64,
    /// Sort by this field's rate (None: each row's largest rate).
    pub sort: Option<String>,
    /// Rows shown per map.
    pub top: Option<usize>,
    /// Stop after this many refreshes.
    pub count: Option<u64>,
    /// `key TYPES`: keys read by the map helper's types instead of BTF.
    pub key: Option<Vec<FieldType>>,
    /// `value TYPES`: values read by the map helper's types instead of BTF.
    pub value: Option<Vec<FieldType>>,
}

/// The words of `map watch`.
#[derive(Debug, Clone, Copy)]
enum WatchOption {
    Interval,
    Sort,
    Top,
    Count,
    Key,
    Value,
    Dev,
    Map(MapForm),
}

/// What `map watch` was asked to watch.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// A MAP reference.
    Map(MapRef),
    /// `dev DEV [ingress|egress]`: the maps of the programs there.
    Dev(String, Vec<Direction>),
}

fn parse(w: &mut Words) -> Result<(Vec<Source>, Options), Fail> {
    let mut maps = Vec::new();
    let mut o = Options {
        interval: 1.0,
        sort: None,
        top: None,
        count: None,
        key: None,
        value: None,
    };
    while let Some(word) = w.next() {
        if matches!(word.as_str(), "help" | "-h" | "--help") {
            return Err(Fail {
                code: 0,
                message: String::new(),
            });
        }
        let mut options = vec![
            ("interval", WatchOption::Interval),
            ("sort", WatchOption::Sort),
            ("top", WatchOption::Top),
            ("count", WatchOption::Count),
            ("key", WatchOption::Key),
            ("value", WatchOption::Value),
            ("dev", WatchOption::Dev),
        ];
        options.extend(
            MapForm::WORDS
                .iter()
                .map(|&(w, f)| (w, WatchOption::Map(f))),
        );
        match pick(&word, &options, "watch option")? {
            WatchOption::Interval => {
                let s: f64 = w.decimal("a number of seconds after 'interval'")?;
                if !(0.05..=3600.0).contains(&s) {
                    return Err(Fail::usage(
                        "interval must be between 0.05 and 3600 seconds",
                    ));
                }
                o.interval = s;
            }
            WatchOption::Sort => o.sort = Some(w.expect("a field name after 'sort'")?),
            WatchOption::Top => o.top = Some(w.decimal("a number of rows after 'top'")?),
            WatchOption::Count => o.count = Some(w.decimal("a number of refreshes after 'count'")?),
            which @ (WatchOption::Key | WatchOption::Value) => {
                let mut types = Vec::new();
                while let Some(t) = w.peek().and_then(FieldType::from_word) {
                    types.push(t);
                    w.next();
                }
                let side = if matches!(which, WatchOption::Key) {
                    "key"
                } else {
                    "value"
                };
                if types.is_empty() {
                    return Err(Fail::usage(format!(
                        "expected TYPES after '{side}' (u8 u16 u32 u64 i8 … be16 ip4 mac str bytes)"
                    )));
                }
                if matches!(which, WatchOption::Key) {
                    o.key = Some(types);
                } else {
                    o.value = Some(types);
                }
            }
            WatchOption::Dev => {
                let dev = w.expect("a device name after 'dev'")?;
                let hooks = [
                    ("ingress", Direction::Ingress),
                    ("egress", Direction::Egress),
                ];
                let picked = w.peek().and_then(|d| pick(d, &hooks, "direction").ok());
                let directions = match picked {
                    Some(d) => {
                        w.next();
                        vec![d]
                    }
                    None => vec![Direction::Ingress, Direction::Egress],
                };
                maps.push(Source::Dev(dev, directions));
            }
            WatchOption::Map(form) => maps.push(Source::Map(MapRef::parse_after(form, w)?)),
        }
    }
    if maps.is_empty() {
        return Err(Fail::usage(
            "map watch needs a MAP (fd N, env ID, id N, pinned PATH, name NAME, keeper SOCK [SET/]MAP) or dev DEV",
        ));
    }
    Ok((maps, o))
}

const USAGE: &str = "\
Usage: tcbpf map watch { MAP | dev DEV [ ingress | egress ] }… [ interval SECS ]
                       [ sort FIELD ] [ top N ] [ count N ] [ key TYPES ] [ value TYPES ]

MAP := fd N | env { ID | NAME } | id N | pinned PATH | name NAME | keeper SOCK [SET/]MAP

Shows each map's entries with every integer value field and its rate per
second since the last refresh (per-CPU values summed), sorted by the largest
rate (or by FIELD's rate), every SECS seconds (default 1). New keys are
marked '+', keys gone since the last refresh '-'. On a terminal the table is
full-screen ('q', Esc or Ctrl-C quits; taller than the screen, it scrolls
with the arrows, j/k, PgUp/PgDn, Home/End, and its last line says how many
rows are hidden above and below); otherwise, or with -j, one snapshot
per interval is printed (-j: one JSON object per line). 'count N' stops
after N refreshes; 'top N' shows the first N rows of each map.
Keys and values are typed by the map's BTF; 'key TYPES' and 'value TYPES'
(the map helper's types; values must be integers: fields v0, v1…) read
them instead, e.g. for maps without BTF.
'dev DEV' watches the maps of the programs attached to DEV when watch
starts (cls_bpf and tcx on both hooks unless one is named, and XDP with
ingress); maps without integer value fields are left out.
";

/// One row as shown: the key's text, values, rates (None: no earlier read).
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The key's label parts, rendered.
    pub key: Vec<(String, String)>,
    /// The values (for a gone key: its last values).
    pub values: Vec<i128>,
    /// Rates per second.
    pub rates: Vec<Option<f64>>,
    /// `+` new, `-` gone, ` ` otherwise.
    pub mark: char,
}

/// One map's state between refreshes.
struct Watched {
    map: StatMap,
    fields: Vec<String>,
    last: Option<(Instant, Snapshot)>,
}

/// One refresh of one map.
pub struct Frame {
    /// The map's name.
    pub name: String,
    /// Its id.
    pub id: u32,
    /// Its type name.
    pub kind: String,
    /// Entries now.
    pub entries: usize,
    /// Field names.
    pub fields: Vec<String>,
    /// Rows in display order.
    pub rows: Vec<Shown>,
    /// Per key part: an integer (written as a JSON number by `-j`, as
    /// `map lookup -j` writes it; other parts are strings).
    pub key_ints: Vec<bool>,
}

impl Watched {
    fn refresh(&mut self, o: &Options, names: &mut IfNames) -> Result<Frame, Fail> {
        let now = Instant::now();
        let fields = self.fields.len();
        let column = o
            .sort
            .as_deref()
            .and_then(|s| self.fields.iter().position(|f| f == s));
        let prev = self.last.take();
        let mut seen = vec![false; prev.as_ref().map_or(0, |(_, p)| p.len())];
        let mut next = Snapshot::new(self.map.info.key_size as usize, fields);
        let mut top = TopRows::new(o.top);
        let map = &self.map;
        let mut labels = LabelNames::default();
        let mut offer = |key: &[u8], values: &[i128], rates: Vec<Option<f64>>, mark: char| {
            top.offer(
                score(&rates, column),
                || key_text(&map.parts_of(key), &mut labels, names),
                |k| Shown {
                    key: k.to_vec(),
                    values: values.to_vec(),
                    rates,
                    mark,
                },
            )
        };
        let mut entries = 0usize;
        map.for_each_value(|key, values| {
            entries += 1;
            next.push(key, values);
            let (rates, mark) = match &prev {
                Some((t, old)) => match old.find(key) {
                    Some(i) => {
                        seen[i] = true;
                        (rates(old.values(i), values, now - *t), ' ')
                    }
                    None => (vec![None; fields], '+'),
                },
                None => (vec![None; fields], ' '),
            };
            offer(key, values, rates, mark);
        })
        .map_err(|e| {
            Fail::other(format!(
                "map '{}' (id {}): {e}",
                self.map.info.name, self.map.info.id
            ))
        })?;
        if let Some((_, old)) = &prev {
            for (i, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
                offer(old.key(i), old.values(i), vec![None; fields], '-');
            }
        }
        drop(prev);
        self.last = Some((now, next.sorted()));
        Ok(Frame {
            name: self.map.info.name.clone(),
            id: self.map.info.id,
            kind: self.map.info.type_name(),
            entries,
            fields: self.fields.clone(),
            rows: top.into_sorted(),
            key_ints: labels.ints,
        })
    }
}

/// The label names of the last key shape seen (a map's keys share one).
#[derive(Default)]
struct LabelNames {
    paths: Vec<String>,
    labels: Vec<String>,
    /// Which parts are integers.
    ints: Vec<bool>,
}

impl LabelNames {
    /// The names of `parts`, as the exporter's labels (unique: see `names`).
    fn of(&mut self, parts: &[(String, KeyPart)]) -> &[String] {
        let same = self.paths.len() == parts.len()
            && self.paths.iter().zip(parts).all(|(p, (q, _))| p == q);
        if !same {
            self.paths = parts.iter().map(|(p, _)| p.clone()).collect();
            let refs: Vec<&str> = self.paths.iter().map(String::as_str).collect();
            self.labels = crate::names::key_labels(&refs, &[]);
            self.ints = parts
                .iter()
                .map(|(_, p)| matches!(p, KeyPart::Int(_)))
                .collect();
        }
        &self.labels
    }
}

/// A key's parts as shown, named as the exporter's labels are (member
/// paths joined with `_`, unique).
fn key_text(
    parts: &[(String, KeyPart)],
    labels: &mut LabelNames,
    names: &mut IfNames,
) -> Vec<(String, String)> {
    labels
        .of(parts)
        .iter()
        .zip(parts)
        .map(|(label, (_, p))| (label.clone(), render_part(p, None, names)))
        .collect()
}

/// Per-second rates from two reads `dt` apart (a counter that went down
/// shows its negative rate: maps are not always counters).
fn rates(old: &[i128], new: &[i128], dt: Duration) -> Vec<Option<f64>> {
    let secs = dt.as_secs_f64().max(1e-9);
    old.iter()
        .zip(new)
        .map(|(o, n)| Some(n.wrapping_sub(*o) as f64 / secs))
        .collect()
}

/// Runs `map watch`.
pub fn run(w: &mut Words, json: bool) -> Result<(), Fail> {
    let (refs, o) = match parse(w) {
        Err(f) if f.code == 0 => {
            print!("{USAGE}");
            return Ok(());
        }
        r => r?,
    };
    if let Some(s) = &o.sort {
        if s == "key" {
            return Err(Fail::usage("sort takes a value field name"));
        }
    }
    let mut watched: Vec<Watched> = Vec::new();
    for (r, map, found) in open_all(&refs)? {
        if watched.iter().any(|w| w.map.info.id == map.info.id) {
            continue;
        }
        let map = map
            .with_types(o.key.as_deref(), o.value.as_deref())
            .map_err(|e| Fail::usage(format!("{r}: {e}")))?;
        let fields = map.field_names().to_vec();
        if fields.is_empty() && found {
            continue;
        }
        if fields.is_empty() {
            return Err(Fail::usage(format!(
                "{r}: map '{}' has no integer value fields to watch",
                map.info.name
            )));
        }
        if let Some(s) = &o.sort {
            if !fields.contains(s) {
                return Err(Fail::usage(format!(
                    "sort {s}: map '{}' has no such field (fields: {})",
                    map.info.name,
                    fields.join(", ")
                )));
            }
        }
        watched.push(Watched {
            map,
            fields,
            last: None,
        });
    }
    if watched.is_empty() {
        return Err(Fail::of(
            tcbpf::ErrorKind::NotFound,
            "no map with counters is used by the programs on the devices named",
        ));
    }
    tcbpf::sys::frontend::catch_interrupts();
    if !json && std::io::stdout().is_terminal() {
        crate::watch_tui::run(&mut watched_frames(watched), &o)
    } else {
        pipe(watched, &o, json)
    }
}

/// Opens every map `sources` name, each with the words that named it and
/// whether it was found through a device (those that cannot be read for
/// counters are then left out instead of failing).
fn open_all(sources: &[Source]) -> Result<Vec<(String, StatMap, bool)>, Fail> {
    let mut out = Vec::new();
    for s in sources {
        match s {
            Source::Map(r) => out.push((r.to_string(), crate::args::open(r)?, false)),
            Source::Dev(dev, directions) => {
                for p in tcbpf::front::hooks::programs_on(dev, directions)? {
                    for &id in &p.map_ids {
                        let what =
                            format!("dev {dev} {} prog {}: map id {id}", p.place, p.prog_name);
                        match crate::collect::open_by_id(id) {
                            Ok(m) => out.push((what, m, true)),
                            Err(ReadError::Unsupported(_)) => {}
                            Err(e) if e.is_not_found() => {}
                            Err(e) => return Err(Fail::other(format!("{what}: {e}"))),
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The refresh of every watched map, as a closure the screen calls.
fn watched_frames(mut watched: Vec<Watched>) -> impl FnMut(&Options) -> Result<Vec<Frame>, Fail> {
    let mut names = IfNames::default();
    move |o| {
        watched
            .iter_mut()
            .map(|w| w.refresh(o, &mut names))
            .collect()
    }
}

fn pipe(watched: Vec<Watched>, o: &Options, json: bool) -> Result<(), Fail> {
    let mut frames = watched_frames(watched);
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let fs = frames(o)?;
        let text = if json {
            json_line(&fs)
        } else {
            text_block(&fs)
        };
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(()); // the reader went away
        }
        n += 1;
        if o.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        let next = start + Duration::from_secs_f64(o.interval * n as f64);
        while Instant::now() < next {
            if tcbpf::sys::frontend::interrupted() {
                return Ok(());
            }
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

/// Milliseconds since the Unix epoch (docs/json.md: times are integers).
fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A key as text: `17`, or `proto=17 port=53`.
pub fn key_string(key: &[(String, String)]) -> String {
    match key {
        [(n, v)] if n == "key" => v.clone(),
        _ => key
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A rate as shown: one decimal, `-` when unknown.
pub fn rate_string(r: Option<f64>) -> String {
    r.map_or("-".to_string(), |r| format!("{r:.1}"))
}

fn field_title(f: &str) -> &str {
    if f.is_empty() {
        "value"
    } else {
        f
    }
}

/// One snapshot as text lines (the pipe form).
pub fn text_block(frames: &[Frame]) -> String {
    let mut s = String::new();
    let ms = unix_time_ms();
    for f in frames {
        s += &format!(
            "map {} (id {}, {}) entries {} at {}.{:03}\n",
            f.name,
            f.id,
            f.kind,
            f.entries,
            ms / 1000,
            ms % 1000
        );
        for r in &f.rows {
            s += &format!("{} key {}", r.mark, key_string(&r.key));
            for (i, name) in f.fields.iter().enumerate() {
                s += &format!(
                    " {} {} rate {}",
                    field_title(name),
                    r.values[i],
                    rate_string(r.rates[i])
                );
            }
            s.push('\n');
        }
    }
    s
}

/// One snapshot as one JSON object on one line, written as it goes (no
/// tree of values: a snapshot of a million rows costs its text).
pub fn json_line(frames: &[Frame]) -> String {
    use std::fmt::Write;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let float = |x: f64| serde_json::to_string(&x).unwrap_or_else(|_| "null".into());
    let mut out = String::new();
    let _ = write!(out, "{{\"time_ms\":{},\"maps\":[", unix_time_ms());
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"map\":{},\"id\":{},\"type\":{},\"entries\":{},\"rows\":[",
            q(&f.name),
            f.id,
            q(&f.kind),
            f.entries
        );
        for (j, r) in f.rows.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"key\":{");
            for (k, (n, v)) in r.key.iter().enumerate() {
                let comma = if k > 0 { "," } else { "" };
                // An integer is a JSON number, as in `map lookup -j` (a
                // string past the i64 range, as the values are).
                let int = f.key_ints.get(k) == Some(&true) && v.parse::<i64>().is_ok();
                let v = if int { v.clone() } else { q(v) };
                let _ = write!(out, "{comma}{}:{v}", q(n));
            }
            out.push_str("},\"values\":{");
            for (k, name) in f.fields.iter().enumerate() {
                let comma = if k > 0 { "," } else { "" };
                let v = r.values[k];
                let v = i64::try_from(v).map_or_else(|_| q(&v.to_string()), |v| v.to_string());
                let _ = write!(out, "{comma}{}:{v}", q(field_title(name)));
            }
            out.push_str("},\"rates\":{");
            for (k, name) in f.fields.iter().enumerate() {
                let comma = if k > 0 { "," } else { "" };
                let rate = r.rates[k].map_or_else(|| "null".to_string(), float);
                let _ = write!(out, "{comma}{}:{rate}", q(field_title(name)));
            }
            let state = match r.mark {
                '+' => "new",
                '-' => "gone",
                _ => "kept",
            };
            let _ = write!(out, "}},\"state\":\"{state}\"}}");
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(k: &str, rates: Vec<Option<f64>>) -> Shown {
        Shown {
            key: vec![("key".into(), k.into())],
            values: vec![0; rates.len()],
            rates,
            mark: ' ',
        }
    }

    #[test]
    fn rows_sort_by_largest_rate_or_the_named_field() {
        let rows = [
            shown("a", vec![Some(1.0), Some(500.0)]),
            shown("b", vec![Some(9.0), Some(10.0)]),
            shown("c", vec![None, None]),
        ];
        let order = |column: Option<usize>, limit: Option<usize>| {
            let mut top = TopRows::new(limit);
            for r in &rows {
                top.offer(score(&r.rates, column), || r.key.clone(), |_| r.clone());
            }
            top.into_sorted()
                .iter()
                .map(|r| key_string(&r.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(None, None), ["a", "b", "c"]);
        assert_eq!(order(Some(0), None), ["b", "a", "c"]);
        assert_eq!(order(Some(0), Some(1)), ["b"]);
    }

    #[test]
    fn rates_are_per_second() {
        let r = rates(&[10, 0], &[30, 5], Duration::from_millis(500));
        assert_eq!(r, vec![Some(40.0), Some(10.0)]);
        assert_eq!(rate_string(Some(40.0)), "40.0");
        assert_eq!(rate_string(None), "-");
    }

    #[test]
    fn watch_words_parse_and_refuse_bad_values() {
        let mut w = Words::new(
            "id 3 interval 0.5 sort bytes top 4 count 2"
                .split(' ')
                .map(String::from)
                .collect(),
        );
        let (maps, o) = parse(&mut w).unwrap();
        assert_eq!(maps, vec![Source::Map(MapRef::Id(3))]);
        assert_eq!(o.interval, 0.5);
        assert_eq!(o.sort.as_deref(), Some("bytes"));
        assert_eq!((o.top, o.count), (Some(4), Some(2)));
        let mut w = Words::new(
            "id 3 key be16 u8 u8 value u64 u64 count 1"
                .split(' ')
                .map(String::from)
                .collect(),
        );
        let (_, o) = parse(&mut w).unwrap();
        assert_eq!(
            o.key,
            Some(vec![FieldType::Be16, FieldType::U8, FieldType::U8])
        );
        assert_eq!(o.value, Some(vec![FieldType::U64, FieldType::U64]));
        assert_eq!(o.count, Some(1));
        let bad = |s: &str| parse(&mut Words::new(s.split(' ').map(String::from).collect()));
        assert_eq!(bad("id 3 interval 0").unwrap_err().code, 2);
        assert_eq!(bad("interval 1").unwrap_err().code, 2);
        assert_eq!(bad("id 3 top x").unwrap_err().code, 2);
        assert_eq!(bad("id 3 key count 1").unwrap_err().code, 2);
    }

    #[test]
    fn watch_takes_every_map_form_and_devices_with_a_hook() {
        let words = |s: &str| Words::new(s.split(' ').map(String::from).collect());
        let (maps, _) = parse(&mut words("id 0x10 dev v0 dev v1 eg name ctr")).unwrap();
        assert_eq!(
            maps,
            vec![
                Source::Map(MapRef::Id(16)),
                Source::Dev("v0".into(), vec![Direction::Ingress, Direction::Egress]),
                Source::Dev("v1".into(), vec![Direction::Egress]),
                Source::Map(MapRef::Name("ctr".into())),
            ]
        );
        assert_eq!(parse(&mut words("dev")).unwrap_err().code, 2);
    }

    #[test]
    fn a_json_snapshot_is_one_valid_object_with_exact_values() {
        let frame = Frame {
            name: "m\"x".into(),
            id: 7,
            kind: "hash".into(),
            entries: 2,
            fields: vec!["packets".into(), String::new()],
            rows: vec![
                Shown {
                    key: vec![
                        ("proto".into(), "17".into()),
                        ("in_port".into(), "a\\b".into()),
                    ],
                    values: vec![5, i128::from(u64::MAX)],
                    rates: vec![Some(2.5), None],
                    mark: '+',
                },
                shown("9", vec![Some(0.0), Some(1.0)]),
            ],
            key_ints: vec![true, false],
        };
        let line = json_line(&[frame]);
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let m = &v["maps"][0];
        assert_eq!(
            (m["map"].as_str(), m["id"].as_u64()),
            (Some("m\"x"), Some(7))
        );
        let r = &m["rows"][0];
        assert_eq!(r["key"]["in_port"], "a\\b");
        assert_eq!(r["key"]["proto"], 17, "an integer part is a number");
        assert_eq!(r["values"]["packets"], 5);
        assert_eq!(r["values"]["value"], u64::MAX.to_string());
        assert_eq!(r["rates"]["packets"], 2.5);
        assert!(r["rates"]["value"].is_null());
        assert_eq!(r["state"], "new");
        assert_eq!(m["rows"][1]["state"], "kept");
        assert_eq!(m["rows"][1]["rates"]["value"], 1.0);
    }
}

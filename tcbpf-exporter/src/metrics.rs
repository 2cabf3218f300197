//! Metric families and their exposition: the Prometheus text format
//! (0.0.4) and OpenMetrics 1.0. A counter's samples end in `_total` in
//! both; its family (HELP/TYPE) is `NAME_total` in the text format and
//! `NAME` in OpenMetrics, as each format's rules say (promtool lints a text
//! counter without `_total`; OpenMetrics names the family without it). An
//! info metric is a gauge `NAME_info` in the text format and type `info`
//! in OpenMetrics; an OpenMetrics body ends with `# EOF`. Names and label
//! names are sanitised to Prometheus rules; label values and help text are
//! escaped. Samples are written as they are added. Pure: no I/O.

use std::fmt::Write;

/// The type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Monotonic.
    Counter,
    /// Up and down.
    Gauge,
    /// Constant 1 carrying labels (`NAME_info`).
    Info,
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An exact integer.
    Int(i128),
    /// A float (seconds).
    Float(f64),
}

/// One metric family, its samples already written in the chosen format
/// (so a scrape of a million entries holds the text, not a million label
/// vectors).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name (without `_total`/`_info`).
    pub name: String,
    /// The help text.
    pub help: String,
    /// Its type.
    pub kind: Type,
    openmetrics: bool,
    body: String,
}

impl Family {
    /// The name samples carry: `_total` for counters, `_info` for info
    /// metrics, in both formats.
    fn sample_name(&self) -> String {
        match self.kind {
            Type::Counter => {
                format!(
                    "{}_total",
                    self.name.strip_suffix("_total").unwrap_or(&self.name)
                )
            }
            Type::Info => format!("{}_info", self.name),
            Type::Gauge => self.name.clone(),
        }
    }

    /// Adds a sample; `labels` as [`labels_text`] writes them.
    pub fn push(&mut self, labels: &str, value: Number) {
        let name = self.sample_name();
        self.body.push_str(&name);
        if !labels.is_empty() {
            self.body.push('{');
            self.body.push_str(labels);
            self.body.push('}');
        }
        let _ = match value {
            Number::Int(n) => writeln!(self.body, " {n}"),
            Number::Float(x) => writeln!(self.body, " {x}"),
        };
    }
}

/// Families in the order first named, written in one format.
///
/// Names are unique by construction (see [`crate::names`]): the exporter's
/// own families are created first with [`Families::own`]; a map family
/// ([`Families::index`]) merges with an earlier map family of the same name
/// and type (their series differ by their `map` label), and otherwise takes the first
/// `NAME_2`, `NAME_3`… whose exposition names (`NAME`, and `NAME_total`/
/// `NAME_created` for a counter, `NAME_info` for an info) no other family
/// uses.
#[derive(Debug, Clone)]
pub struct Families {
    openmetrics: bool,
    list: Vec<Family>,
    /// Map families by name (a counter's without `_total`).
    index: std::collections::HashMap<String, usize>,
    /// Own families by name.
    own: std::collections::HashMap<String, usize>,
    /// Every exposition name in use, and by which family.
    claimed: std::collections::HashMap<String, usize>,
}

/// The names a family of `name` and `kind` is written with, in either
/// format: its first is the family's key.
fn exposition_names(name: &str, kind: Type) -> Vec<String> {
    match kind {
        Type::Counter => {
            let base = name.strip_suffix("_total").unwrap_or(name);
            vec![
                base.to_string(),
                format!("{base}_total"),
                format!("{base}_created"),
            ]
        }
        Type::Gauge => vec![name.to_string()],
        Type::Info => vec![name.to_string(), format!("{name}_info")],
    }
}

impl Families {
    /// No families yet; samples will be written as OpenMetrics or text.
    pub fn new(openmetrics: bool) -> Families {
        Families {
            openmetrics,
            list: Vec::new(),
            index: std::collections::HashMap::new(),
            own: std::collections::HashMap::new(),
            claimed: std::collections::HashMap::new(),
        }
    }

    fn create(&mut self, name: &str, help: &str, kind: Type) -> usize {
        let i = self.list.len();
        self.list.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            openmetrics: self.openmetrics,
            body: String::new(),
        });
        for n in exposition_names(name, kind) {
            self.claimed.insert(n, i);
        }
        i
    }

    /// The exporter's own family `name` (created with `help` and `kind` the
    /// first time). Own families are named before any map family, so a map
    /// never takes their names.
    pub fn own(&mut self, name: &str, help: &str, kind: Type) -> usize {
        if let Some(&i) = self.own.get(name) {
            return i;
        }
        let i = self.create(name, help, kind);
        self.own.insert(name.to_string(), i);
        i
    }

    /// The index of the map family wanted as `name`: an earlier map family
    /// of that name and type (its help joined with `help` when they
    /// differ), or a new one under the first free name.
    pub fn index(&mut self, name: &str, help: &str, kind: Type) -> usize {
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                format!("{name}_{n}")
            };
            let names = exposition_names(&candidate, kind);
            if let Some(&i) = self.index.get(&names[0]) {
                if self.list[i].kind == kind {
                    let f = &mut self.list[i];
                    if !f.help.split("; ").any(|h| h == help) {
                        f.help.push_str("; ");
                        f.help.push_str(help);
                    }
                    return i;
                }
            } else if names.iter().all(|e| !self.claimed.contains_key(e)) {
                let i = self.create(&candidate, help, kind);
                self.index.insert(names[0].clone(), i);
                return i;
            }
            n += 1;
        }
    }

    /// The family at `i` (from [`Families::index`] or [`Families::own`]).
    pub fn at(&mut self, i: usize) -> &mut Family {
        &mut self.list[i]
    }

    /// The whole exposition as one text (what [`Families::into_parts`]
    /// sends): each family with samples, its HELP and TYPE and samples,
    /// and `# EOF` for OpenMetrics.
    #[cfg(test)]
    pub fn render(&self) -> String {
        String::from_utf8(self.clone().into_parts().concat()).expect("UTF-8")
    }

    /// The whole exposition as parts to be sent one after the other: each
    /// family with samples, its HELP and TYPE and samples, and `# EOF` for
    /// OpenMetrics. The families' bodies are moved, not copied: a scrape of
    /// every series of a large map holds its text once.
    pub fn into_parts(mut self) -> Vec<Vec<u8>> {
        let mut parts = Vec::new();
        let list = std::mem::take(&mut self.list);
        for f in list.into_iter().filter(|f| !f.body.is_empty()) {
            parts.push(self.head(&f).into_bytes());
            let mut body = f.body.into_bytes();
            body.shrink_to_fit();
            parts.push(body);
        }
        parts.push(self.end().as_bytes().to_vec());
        parts
    }

    /// A family's HELP and TYPE lines.
    fn head(&self, f: &Family) -> String {
        let (family, ty) = match (f.kind, self.openmetrics) {
            (Type::Counter, true) => (
                f.name.strip_suffix("_total").unwrap_or(&f.name).to_string(),
                "counter",
            ),
            (Type::Counter, false) => (
                format!("{}_total", f.name.strip_suffix("_total").unwrap_or(&f.name)),
                "counter",
            ),
            (Type::Gauge, _) => (f.name.clone(), "gauge"),
            (Type::Info, true) => (f.name.clone(), "info"),
            (Type::Info, false) => (format!("{}_info", f.name), "gauge"),
        };
        format!(
            "# HELP {family} {}\n# TYPE {family} {ty}\n",
            escape_help(&f.help, self.openmetrics)
        )
    }

    /// What ends the exposition: `# EOF` in OpenMetrics, nothing in text.
    fn end(&self) -> &'static str {
        if self.openmetrics {
            "# EOF\n"
        } else {
            ""
        }
    }
}

/// Label pairs as the text between a sample's braces: `k="v",…`, values
/// escaped.
pub fn labels_text<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k.as_ref());
        out.push_str("=\"");
        escape_label(v.as_ref(), &mut out);
        out.push('"');
    }
    out
}

/// A metric name made of `parts` joined by `_`: characters outside
/// `[A-Za-z0-9_]` become `_`, and a leading digit gets a `_` before it.
pub fn metric_name(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("_");
    sanitise(&joined)
}

/// A label name: `[A-Za-z_][A-Za-z0-9_]*`, never starting with `__`
/// (reserved by Prometheus).
pub fn label_name(name: &str) -> String {
    let s = sanitise(name);
    if s.starts_with("__") {
        format!("k{s}")
    } else {
        s
    }
}

fn sanitise(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, openmetrics: bool) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if openmetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// The content type of the text format.
pub const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics.
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// True when an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept
        .split(',')
        .any(|a| a.trim().starts_with("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams(om: bool) -> String {
        let mut f = Families::new(om);
        let i = f.index(
            "tcbpf_proto_stats_packets",
            "map 'proto_stats' (id 7) field packets",
            Type::Counter,
        );
        f.at(i).push(
            &labels_text(&[("key", "17"), ("dev", "a\"b")]),
            Number::Int(5),
        );
        let i = f.own("tcbpf_prog", "program", Type::Info);
        f.at(i).push(&labels_text(&[("id", "3")]), Number::Int(1));
        let i = f.own("tcbpf_prog_run_seconds", "time", Type::Counter);
        f.at(i).push("", Number::Float(0.5));
        f.render()
    }

    #[test]
    fn counters_end_in_total_in_the_text_format() {
        assert_eq!(
            fams(false),
            "# HELP tcbpf_proto_stats_packets_total map 'proto_stats' (id 7) field packets\n\
             # TYPE tcbpf_proto_stats_packets_total counter\n\
             tcbpf_proto_stats_packets_total{key=\"17\",dev=\"a\\\"b\"} 5\n\
             # HELP tcbpf_prog_info program\n\
             # TYPE tcbpf_prog_info gauge\n\
             tcbpf_prog_info{id=\"3\"} 1\n\
             # HELP tcbpf_prog_run_seconds_total time\n\
             # TYPE tcbpf_prog_run_seconds_total counter\n\
             tcbpf_prog_run_seconds_total 0.5\n"
        );
    }

    #[test]
    fn openmetrics_suffixes_and_eof() {
        let text = fams(true);
        assert!(text.contains(
            "# TYPE tcbpf_proto_stats_packets counter\ntcbpf_proto_stats_packets_total{"
        ));
        assert!(text.contains("# TYPE tcbpf_prog info\ntcbpf_prog_info{id=\"3\"} 1\n"));
        assert!(text.contains("tcbpf_prog_run_seconds_total 0.5\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(metric_name(&["tcbpf", ".bss", "hits"]), "tcbpf__bss_hits");
        assert_eq!(metric_name(&["tcbpf", "m", ""]), "tcbpf_m");
        assert_eq!(label_name("0x"), "_0x");
        assert_eq!(label_name("__a"), "k__a");
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        ));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
    }

    #[test]
    fn map_families_never_take_an_own_or_other_typed_name() {
        let mut f = Families::new(false);
        let entries = f.own("tcbpf_map_entries", "entries", Type::Gauge);
        let info = f.own("tcbpf_prog", "programs", Type::Info);
        // map 'map' field 'entries'; map 'prog' field 'info'; map 'prog' scalar.
        let a = f.index(
            "tcbpf_map_entries",
            "field 'entries' of map 'map'",
            Type::Counter,
        );
        let b = f.index(
            "tcbpf_prog_info",
            "field 'info' of map 'prog'",
            Type::Counter,
        );
        let c = f.index("tcbpf_prog", "value of map 'prog'", Type::Counter);
        // map 'a' field 'b_c' and map 'a_b' field 'c': one family.
        let d = f.index("tcbpf_a_b_c", "field 'b_c' of map 'a'", Type::Counter);
        let e = f.index("tcbpf_a_b_c", "field 'c' of map 'a_b'", Type::Counter);
        // The same name as a gauge by a config rule: a family of its own.
        let g = f.index("tcbpf_a_b_c", "field 'c' of map 'a_b'", Type::Gauge);
        // A counter named with _total is the same family in OpenMetrics.
        let h = f.index("tcbpf_x_total", "field 'total' of map 'x'", Type::Counter);
        let k = f.index("tcbpf_x", "value of map 'x'", Type::Counter);
        let k2 = f.index("tcbpf_x", "value of map 'x'", Type::Gauge);
        for i in [entries, info, a, b, c, d, g, h, k2] {
            f.at(i).push("", Number::Int(1));
        }
        assert_eq!(d, e);
        assert_eq!(h, k);
        let names: Vec<&str> = [a, b, c, d, g, h, k2]
            .iter()
            .map(|&i| f.list[i].name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "tcbpf_map_entries_2",
                "tcbpf_prog_info_2",
                "tcbpf_prog_2",
                "tcbpf_a_b_c",
                "tcbpf_a_b_c_2",
                "tcbpf_x_total",
                "tcbpf_x_2",
            ]
        );
        assert_eq!(
            f.list[d].help,
            "field 'b_c' of map 'a'; field 'c' of map 'a_b'"
        );
        // No family or sample name twice in either format.
        for om in [false, true] {
            f.openmetrics = om;
            for fam in &mut f.list {
                fam.openmetrics = om;
            }
            let text = f.render();
            let mut seen = std::collections::HashSet::new();
            for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
                let name = l.split(' ').nth(2).unwrap();
                assert!(
                    seen.insert(name.to_string()),
                    "family {name} twice:\n{text}"
                );
            }
        }
    }
}

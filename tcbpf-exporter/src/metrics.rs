//! Metric families and their exposition: the Prometheus text format
//! (0.0.4) and OpenMetrics 1.0 (counters get their `_total` sample suffix,
//! info metrics `_info`, and the body ends with `# EOF`). Names and label
//! names are sanitised to Prometheus rules; label values and help text are
//! escaped. Pure: families in, text out.

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

/// One metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name (without `_total`/`_info`).
    pub name: String,
    /// The help text.
    pub help: String,
    /// Its type.
    pub kind: Type,
    /// Label sets and values.
    pub samples: Vec<(Vec<(String, String)>, Number)>,
}

/// Families in the order first named, merged by name.
#[derive(Debug, Default)]
pub struct Families {
    list: Vec<Family>,
    index: std::collections::HashMap<String, usize>,
}

impl Families {
    /// The family `name`, created with `help` and `kind` when new.
    pub fn family(&mut self, name: &str, help: &str, kind: Type) -> &mut Family {
        let i = *self.index.entry(name.to_string()).or_insert_with(|| {
            self.list.push(Family {
                name: name.to_string(),
                help: help.to_string(),
                kind,
                samples: Vec::new(),
            });
            self.list.len() - 1
        });
        &mut self.list[i]
    }

    /// All families.
    pub fn into_vec(self) -> Vec<Family> {
        self.list
    }
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

/// Writes `families` in the text format, or OpenMetrics.
pub fn render(families: &[Family], openmetrics: bool) -> String {
    let mut out = String::new();
    for f in families {
        let (family, sample, ty) = match (f.kind, openmetrics) {
            (Type::Counter, true) => {
                let base = f.name.strip_suffix("_total").unwrap_or(&f.name);
                (base.to_string(), format!("{base}_total"), "counter")
            }
            (Type::Counter, false) => (f.name.clone(), f.name.clone(), "counter"),
            (Type::Gauge, _) => (f.name.clone(), f.name.clone(), "gauge"),
            (Type::Info, true) => (f.name.clone(), format!("{}_info", f.name), "info"),
            (Type::Info, false) => {
                let n = format!("{}_info", f.name);
                (n.clone(), n, "gauge")
            }
        };
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&f.help, openmetrics));
        let _ = writeln!(out, "# TYPE {family} {ty}");
        for (labels, value) in &f.samples {
            out.push_str(&sample);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label(v, &mut out);
                    out.push('"');
                }
                out.push('}');
            }
            let _ = match value {
                Number::Int(n) => writeln!(out, " {n}"),
                Number::Float(x) => writeln!(out, " {x}"),
            };
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams() -> Vec<Family> {
        vec![
            Family {
                name: "tcbpf_proto_stats_packets".into(),
                help: "map 'proto_stats' (id 7) field packets".into(),
                kind: Type::Counter,
                samples: vec![(
                    vec![("key".into(), "17".into()), ("dev".into(), "a\"b".into())],
                    Number::Int(5),
                )],
            },
            Family {
                name: "tcbpf_prog".into(),
                help: "program".into(),
                kind: Type::Info,
                samples: vec![(vec![("id".into(), "3".into())], Number::Int(1))],
            },
        ]
    }

    #[test]
    fn text_format() {
        assert_eq!(
            render(&fams(), false),
            "# HELP tcbpf_proto_stats_packets map 'proto_stats' (id 7) field packets\n\
             # TYPE tcbpf_proto_stats_packets counter\n\
             tcbpf_proto_stats_packets{key=\"17\",dev=\"a\\\"b\"} 5\n\
             # HELP tcbpf_prog_info program\n\
             # TYPE tcbpf_prog_info gauge\n\
             tcbpf_prog_info{id=\"3\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_suffixes_and_eof() {
        let text = render(&fams(), true);
        assert!(text.contains(
            "# TYPE tcbpf_proto_stats_packets counter\ntcbpf_proto_stats_packets_total{"
        ));
        assert!(text.contains("# TYPE tcbpf_prog info\ntcbpf_prog_info{id=\"3\"} 1\n"));
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
}

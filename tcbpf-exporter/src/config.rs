//! The exporter's optional configuration file: one rule per line, in words
//! like the command line (`#` starts a comment):
//!
//! ```text
//! cap N                                   series per map (default 10000)
//! map NAME skip                           do not export this map
//! map NAME rename NEW                     tcbpf_NEW_<field> instead of tcbpf_NAME_<field>
//! map NAME cap N                          this map's series cap
//! map NAME field FIELD rename NEW         tcbpf_<map>_NEW
//! map NAME field FIELD { counter | gauge }
//! map NAME label LABEL { ip | ifname | hex }   how a key member is shown
//! ```
//!
//! Several options may follow one `map NAME`. A line format rather than
//! TOML keeps a parser crate out for seven words. Pure: text in, rules out.

use std::collections::HashMap;

/// Series per map when neither the file nor the map says otherwise.
pub const DEFAULT_CAP: usize = 10_000;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (rates make sense).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// How a key member is shown as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// An IPv4 or IPv6 address (4- or 16-byte member, network order).
    Ip,
    /// An interface index shown as the device's name.
    Ifname,
    /// Hex digits of the member's bytes.
    Hex,
}

/// What a field rule changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldRule {
    /// The metric's field part.
    pub rename: Option<String>,
    /// Counter or gauge.
    pub kind: Option<Kind>,
}

/// The rules for one map (by kernel name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapRule {
    /// Not exported.
    pub skip: bool,
    /// The metric's map part.
    pub rename: Option<String>,
    /// Series cap.
    pub cap: Option<usize>,
    /// Per field (by its path: `packets`, `hist_3`).
    pub fields: HashMap<String, FieldRule>,
    /// Per label (key member path).
    pub labels: HashMap<String, Decoder>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The default series cap.
    pub cap: usize,
    /// Rules by map name.
    pub maps: HashMap<String, MapRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cap: DEFAULT_CAP,
            maps: HashMap::new(),
        }
    }
}

impl Config {
    /// The rules for map `name` (none: defaults).
    pub fn map(&self, name: &str) -> Option<&MapRule> {
        self.maps.get(name)
    }

    /// Parses the file's text; errors name the line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut c = Config::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            c.line(&words).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(c)
    }

    fn line(&mut self, words: &[&str]) -> Result<(), String> {
        let mut w = words.iter().copied();
        match w.next() {
            Some("cap") => {
                self.cap = cap(w.next())?;
                no_more(w)
            }
            Some("map") => {
                let name = w.next().ok_or("'map' needs a map name")?;
                let rule = self.maps.entry(name.to_string()).or_default();
                let mut any = false;
                while let Some(opt) = w.next() {
                    any = true;
                    match opt {
                        "skip" => rule.skip = true,
                        "rename" => rule.rename = Some(metric_word(w.next(), "rename")?),
                        "cap" => rule.cap = Some(cap(w.next())?),
                        "field" => {
                            let field = w.next().ok_or("'field' needs a field name")?;
                            let f = rule.fields.entry(field.to_string()).or_default();
                            match w.next() {
                                Some("rename") => f.rename = Some(metric_word(w.next(), "rename")?),
                                Some("counter") => f.kind = Some(Kind::Counter),
                                Some("gauge") => f.kind = Some(Kind::Gauge),
                                other => {
                                    return Err(format!(
                                    "field {field}: expected rename NEW, counter or gauge, got {}",
                                    other.unwrap_or("nothing")
                                ))
                                }
                            }
                        }
                        "label" => {
                            let label = w.next().ok_or("'label' needs a key member name")?;
                            let d = match w.next() {
                                Some("ip") => Decoder::Ip,
                                Some("ifname") => Decoder::Ifname,
                                Some("hex") => Decoder::Hex,
                                other => {
                                    return Err(format!(
                                        "label {label}: expected ip, ifname or hex, got {}",
                                        other.unwrap_or("nothing")
                                    ))
                                }
                            };
                            rule.labels.insert(label.to_string(), d);
                        }
                        other => {
                            return Err(format!(
                                "unknown map option '{other}' (skip, rename, cap, field, label)"
                            ))
                        }
                    }
                }
                if !any {
                    return Err(format!("'map {name}' says nothing to do"));
                }
                Ok(())
            }
            Some(other) => Err(format!("unknown rule '{other}' (cap, map)")),
            None => Ok(()),
        }
    }
}

fn cap(word: Option<&str>) -> Result<usize, String> {
    let word = word.ok_or("'cap' needs a number")?;
    match word.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("cap '{word}' is not a number of series ≥ 1")),
    }
}

fn metric_word(word: Option<&str>, after: &str) -> Result<String, String> {
    let word = word.ok_or(format!("'{after}' needs a name"))?;
    if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "'{word}' is not a metric name part (letters, digits, _)"
        ));
    }
    Ok(word.to_string())
}

fn no_more<'a>(mut w: impl Iterator<Item = &'a str>) -> Result<(), String> {
    match w.next() {
        Some(extra) => Err(format!("unexpected '{extra}'")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_per_map() {
        let c = Config::parse(
            "# comment\ncap 50\nmap flows rename flow cap 3 label saddr ip\n\
             map flows field bytes rename octets field drops gauge\nmap junk skip\n",
        )
        .unwrap();
        assert_eq!(c.cap, 50);
        let f = c.map("flows").unwrap();
        assert_eq!(f.rename.as_deref(), Some("flow"));
        assert_eq!(f.cap, Some(3));
        assert_eq!(f.labels["saddr"], Decoder::Ip);
        assert_eq!(f.fields["bytes"].rename.as_deref(), Some("octets"));
        assert_eq!(f.fields["drops"].kind, Some(Kind::Gauge));
        assert!(c.map("junk").unwrap().skip);
        assert!(c.map("other").is_none());
    }

    #[test]
    fn bad_lines_name_their_line() {
        assert_eq!(
            Config::parse("cap 5\nmap x frob\n").unwrap_err(),
            "line 2: unknown map option 'frob' (skip, rename, cap, field, label)"
        );
        assert!(Config::parse("cap 0")
            .unwrap_err()
            .starts_with("line 1: cap '0'"));
        assert!(Config::parse("map x rename a-b")
            .unwrap_err()
            .contains("not a metric name part"));
        assert!(Config::parse("map x label k base64")
            .unwrap_err()
            .contains("expected ip, ifname or hex"));
        assert!(Config::parse("map x").unwrap_err().contains("says nothing"));
        assert!(Config::parse("frob").unwrap_err().contains("unknown rule"));
    }
}

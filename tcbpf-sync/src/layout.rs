//! Where the policy and the node reports live in etcd, and how a map key
//! becomes part of an etcd key. Pure: no I/O, no etcd, no maps.
//!
//! ```text
//! PREFIX/maps/NAME/KEY    desired entry: KEY is the key's compact JSON text,
//!                         escaped; the etcd value is the value's JSON text
//! PREFIX/nodes/NODE       a node's status (JSON), under that node's lease
//! PREFIX/gens/NAME/G/record          generation G of map NAME: its record
//!                                    (JSON: generation, checksum, entries,
//!                                    author, time), written first
//! PREFIX/gens/NAME/G/entries/KEY     its entries, KEY escaped as above
//! PREFIX/current/NAME     the generation in force for NAME (its number,
//!                         as text), written last, once every part is in
//! PREFIX/current/NAME/NODE  the generation NODE runs instead, while a
//!                         rollout holds it there (canaries)
//! PREFIX/rollout/NAME     the last rollout of NAME and its state (JSON)
//! PREFIX/types/NAME/NODE  the key and value types of NAME at NODE (JSON),
//!                         under that node's lease
//! ```
//!
//! KEY escaping: `%`, `/` and every byte that is not printable ASCII
//! (space, control characters, anything past `~`) are written as `%XX`
//! (upper-case hex, as in a URL); everything else is kept, so keys stay
//! readable in `etcdctl get --prefix`: `7`, `{"port":53,"proto":17}`,
//! `"10.0.0.1"`.

use std::fmt;

/// A malformed key, name or JSON text, said in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayoutError {}

/// The etcd prefix a policy lives under, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// Checks and normalises a prefix as typed: not empty, no trailing `/`
    /// (`/tcbpf/` and `/tcbpf` are the same prefix).
    pub fn new(text: &str) -> Result<Prefix, LayoutError> {
        let trimmed = text.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(LayoutError(format!(
                "prefix '{text}': must name a directory, like /tcbpf/policy"
            )));
        }
        Ok(Prefix(trimmed.to_string()))
    }

    /// `PREFIX/maps/`: every desired entry of every map.
    pub fn maps(&self) -> String {
        format!("{}/maps/", self.0)
    }

    /// `PREFIX/maps/NAME/`: every desired entry of one map.
    pub fn map(&self, name: &str) -> String {
        format!("{}/maps/{name}/", self.0)
    }

    /// `PREFIX/maps/NAME/KEY` for the key's canonical JSON text.
    pub fn entry(&self, name: &str, key_json: &str) -> String {
        format!("{}{}", self.map(name), escape(key_json))
    }

    /// `PREFIX/nodes/`: every node's status.
    pub fn nodes(&self) -> String {
        format!("{}/nodes/", self.0)
    }

    /// `PREFIX/nodes/NODE`.
    pub fn node(&self, node: &str) -> String {
        format!("{}{node}", self.nodes())
    }

    /// `PREFIX/gens/NAME/`: every generation of one map.
    pub fn gens(&self, name: &str) -> String {
        format!("{}/gens/{name}/", self.0)
    }

    /// `PREFIX/gens/NAME/G/record`.
    pub fn gen_record(&self, name: &str, g: u64) -> String {
        format!("{}{g}/record", self.gens(name))
    }

    /// `PREFIX/gens/NAME/G/entries/`.
    pub fn gen_entries(&self, name: &str, g: u64) -> String {
        format!("{}{g}/entries/", self.gens(name))
    }

    /// `PREFIX/rollout/`: the last rollout of every map.
    pub fn rollouts(&self) -> String {
        format!("{}/rollout/", self.0)
    }

    /// `PREFIX/rollout/NAME`: the last rollout of NAME.
    pub fn rollout(&self, name: &str) -> String {
        format!("{}{name}", self.rollouts())
    }

    /// `PREFIX/types/NAME/`: the types each follower of NAME published.
    pub fn types(&self, name: &str) -> String {
        format!("{}/types/{name}/", self.0)
    }

    /// `PREFIX/current/`: the generation in force of every map.
    pub fn currents(&self) -> String {
        format!("{}/current/", self.0)
    }

    /// `PREFIX/current/NAME`.
    pub fn current(&self, name: &str) -> String {
        format!("{}{name}", self.currents())
    }

    /// `PREFIX/current/NAME/NODE`: the generation NODE runs instead of
    /// `PREFIX/current/NAME` while a rollout holds it there.
    pub fn pin(&self, name: &str, node: &str) -> String {
        format!("{}{name}/{node}", self.currents())
    }

    /// The map name of a key `PREFIX/current/NAME`.
    pub fn parse_current<'a>(&self, etcd_key: &'a [u8]) -> Option<&'a str> {
        let name = etcd_key.strip_prefix(self.currents().as_bytes())?;
        std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty() && !n.contains('/'))
    }

    /// The map and node names of a key `PREFIX/current/NAME/NODE`.
    pub fn parse_pin<'a>(&self, etcd_key: &'a [u8]) -> Option<(&'a str, &'a str)> {
        let rest = etcd_key.strip_prefix(self.currents().as_bytes())?;
        let (name, node) = std::str::from_utf8(rest).ok()?.split_once('/')?;
        (!name.is_empty() && !node.is_empty() && !node.contains('/')).then_some((name, node))
    }

    /// Splits an etcd key under `PREFIX/maps/` into the map name and the
    /// key's JSON text; `None` for keys outside the layout (no map name,
    /// or one that is not UTF-8: no followed map has it). A key part that
    /// does not unescape (a bad `%` escape, bytes that are not UTF-8) is
    /// `Err`, for the follower to count as rejected.
    pub fn parse_entry(&self, etcd_key: &[u8]) -> Option<(String, Result<String, LayoutError>)> {
        let rest = etcd_key.strip_prefix(self.maps().as_bytes())?;
        let slash = rest.iter().position(|&b| b == b'/')?;
        let name = std::str::from_utf8(&rest[..slash]).ok()?;
        let escaped = &rest[slash + 1..];
        if name.is_empty() || escaped.is_empty() {
            return None;
        }
        Some((name.to_string(), unescape(escaped)))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a map or node name: not empty, no `/`, printable ASCII.
pub fn check_name(what: &str, name: &str) -> Result<(), LayoutError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(LayoutError(format!(
            "{what} '{name}': must be printable ASCII without '/' or spaces"
        )));
    }
    Ok(())
}

/// A JSON text as one compact line, members in the order given (the form
/// `-j` prints), so that equal keys typed differently (`[ 1, 2 ]`,
/// `[1,2]`) land on the same etcd key.
pub fn canonical_json(what: &str, text: &str) -> Result<String, LayoutError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| LayoutError(format!("{what} '{text}' is not JSON: {e}")))?;
    Ok(v.to_string())
}

/// Escapes a key's JSON text for use as the last part of an etcd key.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b == b'%' || b == b'/' || !b.is_ascii_graphic() {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Reverses [`escape`] (on the bytes of an etcd key).
pub fn unescape(text: &[u8]) -> Result<String, LayoutError> {
    let shown = || shown_key(text);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| LayoutError(format!("key '{}': bad %-escape at {i}", shown())))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| LayoutError(format!("key '{}': not UTF-8", shown())))
}

/// An etcd key part as text for messages: bytes that are not printable
/// ASCII shown as `%XX`, as [`escape`] writes them.
pub fn shown_key(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_drops_trailing_slashes_and_rejects_empty() {
        assert_eq!(Prefix::new("/p/").unwrap().to_string(), "/p");
        assert_eq!(Prefix::new("/p").unwrap().maps(), "/p/maps/");
        assert!(Prefix::new("///").is_err());
    }

    #[test]
    fn keys_keep_json_readable_and_escape_only_what_breaks_paths() {
        assert_eq!(escape("7"), "7");
        assert_eq!(escape(r#"{"port":53}"#), r#"{"port":53}"#);
        assert_eq!(escape(r#""a/b c%""#), r#""a%2Fb%20c%25""#);
        assert_eq!(escape("\"é\""), "\"%C3%A9\"");
        for k in ["7", r#""a/b c%""#, "\"é\"", r#"{"a":[1,2]}"#] {
            assert_eq!(unescape(escape(k).as_bytes()).unwrap(), k);
        }
    }

    #[test]
    fn unescape_names_a_broken_escape_and_bytes_that_are_not_utf8() {
        assert!(unescape(b"%2").unwrap_err().0.contains("bad %-escape"));
        assert!(unescape(b"%zz").is_err());
        assert!(unescape(b"%\xff1").is_err());
        assert_eq!(
            unescape(b"\"%FF\"").unwrap_err().0,
            "key '\"%FF\"': not UTF-8"
        );
        assert_eq!(
            unescape(b"\"\xff\"").unwrap_err().0,
            "key '\"%FF\"': not UTF-8"
        );
    }

    #[test]
    fn canonical_json_is_compact_and_keeps_member_order() {
        assert_eq!(canonical_json("key", " [ 1, 2 ] ").unwrap(), "[1,2]");
        assert_eq!(
            canonical_json("key", r#"{ "b": 1, "a": 2 }"#).unwrap(),
            r#"{"b":1,"a":2}"#
        );
        let e = canonical_json("key", "{").unwrap_err();
        assert!(e.0.starts_with("key '{' is not JSON"), "{e}");
    }

    #[test]
    fn entry_keys_round_trip_through_parse_entry() {
        let p = Prefix::new("/fleet").unwrap();
        let k = p.entry("blocked", r#""a/b""#);
        assert_eq!(k, r#"/fleet/maps/blocked/"a%2Fb""#);
        assert_eq!(
            p.parse_entry(k.as_bytes()),
            Some(("blocked".to_string(), Ok(r#""a/b""#.to_string())))
        );
        assert_eq!(p.parse_entry(b"/fleet/nodes/n1"), None);
        assert_eq!(p.parse_entry(b"/fleet/maps/blocked"), None);
        assert_eq!(p.parse_entry(b"/fleet/maps/\xff/7"), None);
        let (name, bad) = p.parse_entry(b"/fleet/maps/blocked/%zz").unwrap();
        assert_eq!(name, "blocked");
        assert!(bad.unwrap_err().0.contains("bad %-escape"));
        let (_, bad) = p.parse_entry(b"/fleet/maps/blocked/\xfe").unwrap();
        assert!(bad.unwrap_err().0.contains("not UTF-8"));
    }

    #[test]
    fn current_pointers_and_rollout_pins_are_told_apart() {
        let p = Prefix::new("/f").unwrap();
        assert_eq!(p.current("m"), "/f/current/m");
        assert_eq!(p.pin("m", "n1"), "/f/current/m/n1");
        assert_eq!(p.parse_current(b"/f/current/m"), Some("m"));
        assert_eq!(p.parse_current(b"/f/current/m/n1"), None);
        assert_eq!(p.parse_pin(b"/f/current/m/n1"), Some(("m", "n1")));
        assert_eq!(p.parse_pin(b"/f/current/m"), None);
        assert_eq!(p.parse_pin(b"/f/current/m/n1/x"), None);
        assert_eq!(p.parse_current(b"/f/maps/m/1"), None);
        assert_eq!(p.gen_record("m", 3), "/f/gens/m/3/record");
        assert_eq!(p.gen_entries("m", 3), "/f/gens/m/3/entries/");
    }

    #[test]
    fn names_refuse_slashes_and_spaces() {
        assert!(check_name("map name", "blocked").is_ok());
        assert!(check_name("map name", "a/b").is_err());
        assert!(check_name("node", "a b").is_err());
        assert!(check_name("node", "").is_err());
    }
}

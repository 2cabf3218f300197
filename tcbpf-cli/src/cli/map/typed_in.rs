//! Keys and values given in the map's own types: `key json JSON`,
//! `value json JSON` (the shape `-j` prints), and for maps with BTF the
//! short forms `key 17` (one word for a scalar, an enum name, a string)
//! and `value packets 5 bytes 6` (member words, `in.port 80` for nested
//! members). How they are told apart from today's DATA words:
//!
//! - a member name of the side's struct starts member words (even one
//!   that is also a TYPE word, like `bytes`; the members of anonymous
//!   structs and unions are the struct's own, as in C and in `-j`);
//! - a TYPE word (`u32 7`) or `hex` starts DATA, as always;
//! - `json` takes the next word as JSON (any map; without BTF keys and
//!   values of 1, 2, 4, 8 bytes are integers, others byte arrays);
//! - with BTF for the side: one word is a value of the side's type
//!   (`17`, `V_DROP`, `eth0`, `[1,2,3]`) unless the side is not a scalar
//!   and the word is a number; words that start with a name (not a
//!   number) are member/value pairs of a struct, union or data section;
//! - everything else is bpftool's bare bytes (`key 7 0 0 0`), as before.
//!
//! No system calls here (the map's BTF is already read by the caller).

use super::super::error::CliError;
use super::super::words::{parse_number, Words};
use super::args;
use super::typed::types;
use super::OpenMap;
use serde_json::{Map, Value};
use tcbpf::btf::Kind;
use tcbpf::value::typed::MapTypes;
use tcbpf::value::{Data, FieldType};

/// What the words after `key` or `value` gave.
pub enum Given {
    /// DATA words (today's grammar).
    Data(Data),
    /// A value in the map's types, encoded once all options are known.
    Json(Value),
}

/// Which side of an entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

/// Reads the words after `key` or `value` up to the first of `stops`.
pub fn read(w: &mut Words, m: &OpenMap, side: Side, stops: &[&str]) -> Result<Given, CliError> {
    let what = side.name();
    let first = w
        .peek()
        .ok_or_else(|| CliError::usage(format!("expected {what} data after '{what}'")))?;
    if first == "json" {
        w.next();
        let text = w
            .next()
            .ok_or_else(|| CliError::usage(format!("{what}: expected JSON after 'json'")))?;
        let v = serde_json::from_str(&text)
            .map_err(|e| CliError::usage(format!("{what}: bad JSON: {e}")))?;
        return Ok(Given::Json(v));
    }
    let t = types(false, m);
    let named = t.is_some_and(|t| is_member(t, side, first));
    if !named && (first == "hex" || FieldType::from_word(first).is_some()) {
        return args::data(w, what, stops).map(Given::Data);
    }
    let Some(t) = t else {
        return args::data(w, what, stops).map(Given::Data);
    };
    let mut words = Vec::new();
    while let Some(word) = w.peek() {
        if stops.contains(&word) {
            break;
        }
        words.extend(w.next());
    }
    if words.is_empty() {
        return Err(CliError::usage(format!(
            "expected {what} data after '{what}'"
        )));
    }
    let shape = shape(t, side);
    let number = is_number(&words[0]);
    if words.len() == 1 && (shape == Shape::Scalar || !number) {
        return Ok(Given::Json(word_value(&words[0])));
    }
    if !number && shape == Shape::Members {
        return members(&words, what).map(Given::Json);
    }
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    Data::parse(&refs)
        .map(Given::Data)
        .map_err(|e| CliError::usage(format!("{what}: {e}")))
}

/// Encodes what [`read`] gave for a key (exact size).
pub fn key_bytes(m: &OpenMap, given: Given) -> Result<Vec<u8>, CliError> {
    match given {
        Given::Data(d) => d
            .into_exact(m.info.key_size as usize, "key")
            .map_err(args::bad),
        Given::Json(v) => with_types(m, |t| t.encode_key(&v)),
    }
}

/// Encodes a JSON value for the whole value buffer (every CPU of a
/// per-CPU map, or the `[{"cpu":…,"value":…}]` list).
pub fn value_bytes(m: &OpenMap, v: &Value, partial: bool) -> Result<Vec<u8>, CliError> {
    with_types(m, |t| t.encode_values(v, partial))
}

fn with_types(
    m: &OpenMap,
    f: impl FnOnce(&MapTypes) -> Result<Vec<u8>, tcbpf::value::typed::TypedError>,
) -> Result<Vec<u8>, CliError> {
    let untyped;
    let t = match types(false, m) {
        Some(t) => t,
        None => {
            let cpus = m.is_percpu().then(|| m.sizes.cpus());
            untyped = MapTypes::untyped(m.info.key_size as usize, m.info.value_size as usize, cpus);
            &untyped
        }
    };
    f(t).map_err(|e| CliError::usage(e.to_string()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    Members,
    Other,
}

fn shape(t: &MapTypes, side: Side) -> Shape {
    let id = match side {
        Side::Key => t.key_type(),
        Side::Value => t.value_type(),
    };
    let Some(id) = id else {
        let size = match side {
            Side::Key => t.key_size(),
            Side::Value => t.value_size(),
        };
        return if matches!(size, 1 | 2 | 4 | 8) {
            Shape::Scalar
        } else {
            Shape::Other
        };
    };
    let btf = t.btf();
    match btf.skip_mods_and_typedefs(id).and_then(|id| btf.ty(id)) {
        Ok(ty) => match ty.kind {
            Kind::Int(_) | Kind::Enum(_) | Kind::Enum64(_) | Kind::Float(_) => Shape::Scalar,
            Kind::Struct(_) | Kind::Union(_) | Kind::Datasec(_) => Shape::Members,
            _ => Shape::Other,
        },
        Err(_) => Shape::Other,
    }
}

/// True when `word` (up to a dot) names a member or variable of the
/// side's struct, union or data section (a member of an anonymous struct
/// or union member is one, as in C): then it starts member words even if
/// it is also a TYPE word (`bytes`).
fn is_member(t: &MapTypes, side: Side, word: &str) -> bool {
    let id = match side {
        Side::Key => t.key_type(),
        Side::Value => t.value_type(),
    };
    let (Some(id), name) = (id, word.split('.').next().unwrap_or(word)) else {
        return false;
    };
    let btf = t.btf();
    let Ok(ty) = btf.skip_mods_and_typedefs(id).and_then(|id| btf.ty(id)) else {
        return false;
    };
    match &ty.kind {
        Kind::Struct(_) | Kind::Union(_) => btf
            .flat_members(id)
            .is_ok_and(|ms| ms.iter().any(|m| m.name == name)),
        Kind::Datasec(d) => d
            .vars
            .iter()
            .any(|v| btf.name(v.ty).is_ok_and(|n| n == name)),
        _ => false,
    }
}

fn is_number(word: &str) -> bool {
    parse_number::<u64>(word).is_some()
        || word
            .strip_prefix('-')
            .is_some_and(|w| parse_number::<u64>(w).is_some())
}

/// A word as a JSON value: JSON when it parses as one, else a string
/// (an enum name, text for a char array).
fn word_value(word: &str) -> Value {
    if let Some(n) = parse_number::<u64>(word) {
        return Value::from(n);
    }
    if let Ok(n) = word.parse::<i64>() {
        return Value::from(n);
    }
    serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.to_string()))
}

/// `name value name value …` (dotted names for nested members) as a
/// JSON object.
fn members(words: &[String], what: &str) -> Result<Value, CliError> {
    if words.len() % 2 != 0 {
        return Err(CliError::usage(format!(
            "{what}: member '{}' has no value (expected NAME VALUE pairs)",
            words[words.len() - 1]
        )));
    }
    let mut root = Map::new();
    for pair in words.chunks(2) {
        let (path, word) = (&pair[0], &pair[1]);
        let mut obj = &mut root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                if obj.insert(part.to_string(), word_value(word)).is_some() {
                    return Err(CliError::usage(format!("{what}.{path}: given twice")));
                }
                break;
            }
            let next = obj
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            obj = next.as_object_mut().ok_or_else(|| {
                CliError::usage(format!(
                    "{what}.{path}: '{part}' is given a value and members"
                ))
            })?;
        }
    }
    Ok(Value::Object(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_words_build_nested_objects() {
        let w: Vec<String> = "packets 5 in.port 80 in.name eth0 hist [1,2]"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(
            members(&w, "value").unwrap(),
            serde_json::json!({"packets": 5, "in": {"port": 80, "name": "eth0"}, "hist": [1, 2]})
        );
        let e = members(&w[..3], "value").unwrap_err();
        assert_eq!(
            e.message,
            "value: member 'in.port' has no value (expected NAME VALUE pairs)"
        );
        let twice: Vec<String> = "a 1 a 2".split(' ').map(String::from).collect();
        assert_eq!(
            members(&twice, "value").unwrap_err().message,
            "value.a: given twice"
        );
    }

    #[test]
    fn words_are_numbers_json_or_strings() {
        assert_eq!(word_value("0x10"), serde_json::json!(16));
        assert_eq!(word_value("-3"), serde_json::json!(-3));
        assert_eq!(word_value("-0"), serde_json::json!(0));
        assert_eq!(word_value("V_DROP"), serde_json::json!("V_DROP"));
        assert!(is_number("-3") && is_number("0x1f") && !is_number("eth0"));
    }
}

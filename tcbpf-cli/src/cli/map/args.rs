//! Reading the DATA and TYPES words of map commands off the command line,
//! and turning value errors into usage errors. No system calls here: sizes
//! come from the map the caller opened.

use super::super::error::CliError;
use super::super::words::Words;
use tcbpf::value::{self, Data, FieldType, Layout};

/// A value-codec error as a usage error (exit 2).
pub fn bad(e: value::Error) -> CliError {
    CliError::usage(e.to_string())
}

/// Takes the DATA words that follow `key` or `value`, up to the first of
/// `stops` (the next keyword of the command). A type word always takes the
/// word after it as its value, so `str value` is the string "value".
pub fn data(w: &mut Words, what: &str, stops: &[&str]) -> Result<Data, CliError> {
    let mut words = Vec::new();
    while let Some(word) = w.peek() {
        if stops.contains(&word) {
            break;
        }
        let typed = word != "hex" && word != "bytes" && FieldType::from_word(word).is_some();
        words.extend(w.next());
        if typed {
            words.extend(w.next());
        }
    }
    if words.is_empty() {
        return Err(CliError::usage(format!(
            "expected {what} data after '{what}'"
        )));
    }
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    Data::parse(&refs).map_err(|e| CliError::usage(format!("{what}: {e}")))
}

/// Takes the TYPE words that follow `key` or `value` in dump, lookup and
/// load: every word that is a type, at least one.
pub fn types(w: &mut Words, what: &str) -> Result<Vec<FieldType>, CliError> {
    let mut out = Vec::new();
    while let Some(ty) = w.peek().and_then(FieldType::from_word) {
        w.next();
        out.push(ty);
    }
    if out.is_empty() {
        let given = value::shown(w.peek().unwrap_or("nothing").as_bytes());
        return Err(CliError::usage(format!(
            "{what}: {}",
            value::Error::UnknownType(given)
        )));
    }
    Ok(out)
}

/// Resolves TYPES against the map's key or value size.
pub fn layout(types: &[FieldType], size: u32, what: &'static str) -> Result<Layout, CliError> {
    Layout::new(types, size as usize, what).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn data_stops_at_the_next_keyword_but_not_inside_a_typed_field() {
        let mut w = words("u32 7 str value value u64 9");
        let d = data(&mut w, "key", &["value"]).unwrap();
        assert_eq!(d.types(), Some([FieldType::U32, FieldType::Str].as_slice()));
        assert_eq!(w.peek(), Some("value"));
    }

    #[test]
    fn types_stop_at_the_first_other_word_and_unknown_ones_are_named() {
        let mut w = words("u32 be16 value u64");
        assert_eq!(
            types(&mut w, "key").unwrap(),
            vec![FieldType::U32, FieldType::Be16]
        );
        let e = types(&mut words("u24"), "key").unwrap_err();
        assert!(
            e.message.starts_with("key: unknown type 'u24'"),
            "{}",
            e.message
        );
    }
}

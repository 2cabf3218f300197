//! The word grammar: tc-style keywords where any unambiguous prefix works
//! (`imp` for `import`), typed arguments, and [`keywords!`](crate::keywords)
//! to declare one grammar position as an enum. Pure: no I/O.

use crate::ErrorKind;
use std::fmt;

/// A front-end failure: bad words, a word of help where a value was
/// expected, or a map that could not be opened ([`super::mapref`]).
#[derive(Debug)]
pub struct Error {
    /// The class of failure (bad words are [`ErrorKind::BadInput`]).
    pub kind: ErrorKind,
    /// True when a word of help stood where a value was expected: the
    /// binary prints its usage instead of failing.
    pub help: bool,
    /// One line naming what was wrong, without a program name.
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// Bad words (`ErrorKind::BadInput`).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadInput, message)
    }

    /// A word of help at a grammar position.
    pub fn help() -> Error {
        Error {
            help: true,
            ..Error::usage("")
        }
    }

    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            help: false,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` caused by `source`.
    pub fn caused(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            source: Some(Box::new(source)),
            ..Error::new(kind, message)
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message led by `what` unless it names it already.
    pub fn context(mut self, what: &str) -> Error {
        if !self.help && !self.message.contains(what) {
            self.message = format!("{what}: {}", self.message);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The words of a command line, consumed left to right.
#[derive(Debug, Clone)]
pub struct Words {
    words: Vec<String>,
    pos: usize,
}

/// The words of `s`, split at white space (for tests and examples).
pub fn split(s: &str) -> Words {
    Words::new(s.split_whitespace().map(String::from).collect())
}

impl Words {
    /// Words from an argument list.
    pub fn new(words: Vec<String>) -> Self {
        Words { words, pos: 0 }
    }

    /// The next word, consumed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<String> {
        let w = self.words.get(self.pos).cloned();
        if w.is_some() {
            self.pos += 1;
        }
        w
    }

    /// The next word, not consumed.
    pub fn peek(&self) -> Option<&str> {
        self.words.get(self.pos).map(String::as_str)
    }

    /// True when every word is consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.words.len()
    }

    /// The next word, or a usage error saying `what` was expected. A word
    /// of help there asks for the usage ([`Error::help`]): it is never
    /// taken as a FILE, socket, path or device name.
    pub fn expect(&mut self, what: &str) -> Result<String, Error> {
        let w = self
            .next()
            .ok_or_else(|| Error::usage(format!("expected {what}")))?;
        if is_help(&w) {
            return Err(Error::help());
        }
        Ok(w)
    }

    /// The next word parsed as a number (decimal or 0x hex), naming `what`
    /// when it is missing or malformed.
    pub fn number<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, Error> {
        let w = self.expect(what)?;
        parse_number(&w).ok_or_else(|| Error::usage(format!("{what}: '{w}' is not a valid number")))
    }

    /// The next word parsed by `FromStr` (a decimal fraction: `0.5`).
    pub fn decimal<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, Error> {
        let w = self.expect(what)?;
        w.parse()
            .map_err(|_| Error::usage(format!("{what}: '{w}' is not a valid number")))
    }

    /// Consumes the next word if it is a prefix of `keyword`.
    pub fn eat(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(w) if matches(w, keyword) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Requires the keyword `word` (or a prefix of it) next.
    pub fn keyword(&mut self, word: &str) -> Result<(), Error> {
        if self.eat(word) {
            return Ok(());
        }
        Err(Error::usage(match self.peek() {
            Some(w) => format!("expected '{word}', found '{w}'"),
            None => format!("expected '{word}'"),
        }))
    }

    /// True when a word of help is among the words not yet consumed: a
    /// command that acts (opens a map) before it has read all its words
    /// asks this first, so `help` anywhere prints the usage and touches
    /// nothing, as tc's parsers do.
    pub fn help_ahead(&self) -> bool {
        self.words[self.pos.min(self.words.len())..]
            .iter()
            .any(|w| is_help(w))
    }

    /// Every remaining word, consumed.
    pub fn rest(&mut self) -> Vec<String> {
        let rest = self.words[self.pos.min(self.words.len())..].to_vec();
        self.pos = self.words.len();
        rest
    }

    /// A usage error when words are left over (a word of help there asks
    /// for the usage).
    pub fn finish(&self) -> Result<(), Error> {
        match self.peek() {
            None => Ok(()),
            Some(w) if is_help(w) => Err(Error::help()),
            Some(w) => Err(Error::usage(format!("unexpected word '{w}'"))),
        }
    }
}

/// tc's `matches()`: `word` is a non-empty prefix of `keyword`.
pub fn matches(word: &str, keyword: &str) -> bool {
    !word.is_empty() && keyword.starts_with(word)
}

/// Picks the keyword `word` names among `choices`: an exact match, or the
/// only keyword it is a prefix of. Ambiguous and unknown words are usage
/// errors that list the choices.
pub fn choose<'a>(word: &str, choices: &[&'a str], what: &str) -> Result<&'a str, Error> {
    if let Some(exact) = choices.iter().find(|c| **c == word) {
        return Ok(exact);
    }
    let found: Vec<&'a str> = choices
        .iter()
        .copied()
        .filter(|c| matches(word, c))
        .collect();
    let word = crate::value::shown(word.as_bytes());
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::usage(format!(
            "unknown {what} '{word}' (expected one of: {})",
            choices.join(", ")
        ))),
        many => Err(Error::usage(format!(
            "ambiguous {what} '{word}' (could be: {})",
            many.join(", ")
        ))),
    }
}

/// Picks the keyword `word` names from `table` (each word beside the
/// keyword it names) as [`choose`] does. Callers match on the keyword, so
/// a word added to a table without its arm does not compile.
pub fn pick<T: Copy>(word: &str, table: &[(&str, T)], what: &str) -> Result<T, Error> {
    let words: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
    let picked = choose(word, &words, what)?;
    Ok(table
        .iter()
        .find(|(w, _)| *w == picked)
        .map(|(_, k)| *k)
        .expect("choose returns one of the words it was given"))
}

/// Declares the keywords of one grammar position as an enum, each variant
/// with the word(s) that name it, and `Enum::choose(word)` to pick one as
/// [`choose`] does (exact word, or a unique prefix; a word of help is
/// [`Error::help`]). Dispatch then matches on the enum, so a keyword added
/// here without its arm fails to compile instead of falling into another
/// keyword's handler.
///
/// ```
/// tcbpf::keywords! {
///     /// The verbs of `tcbpf qdisc`.
///     pub enum QdiscVerb("qdisc command") { Add = "add", Delete = "del" | "delete" }
/// }
/// assert_eq!(QdiscVerb::choose("a").unwrap(), QdiscVerb::Add);
/// assert_eq!(QdiscVerb::choose("delete").unwrap(), QdiscVerb::Delete);
/// ```
#[macro_export]
macro_rules! keywords {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $($word:literal)|+ ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// What this grammar position is called in messages ("map command").
            #[allow(dead_code)]
            $vis const WHAT: &'static str = $what;

            /// Every word and the keyword it names, in grammar order.
            #[allow(dead_code)]
            $vis const WORDS: &'static [(&'static str, $name)] =
                &[ $( $( ($word, $name::$variant), )+ )+ ];

            /// The keyword `word` names: an exact word, or the only word it
            /// is a prefix of; a word of help asks for the usage; anything
            /// else is a usage error listing them.
            #[allow(dead_code)]
            $vis fn choose(word: &str) -> ::std::result::Result<$name, $crate::front::Error> {
                if $crate::front::words::is_help(word) {
                    return Err($crate::front::Error::help());
                }
                $crate::front::words::pick(word, Self::WORDS, $what)
            }
        }
    };
}

/// Parses decimal or `0x` hex into any integer type that fits.
pub fn parse_number<T: TryFrom<u64>>(w: &str) -> Option<T> {
    let v = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => w.parse::<u64>().ok()?,
    };
    T::try_from(v).ok()
}

/// True for the words that ask for help at any level.
pub fn is_help(word: &str) -> bool {
    matches!(word, "help" | "-h" | "--help")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_accepts_unique_prefix_and_rejects_ambiguous() {
        let c = ["import", "graft", "debug"];
        assert_eq!(choose("imp", &c, "verb").unwrap(), "import");
        assert_eq!(choose("g", &c, "verb").unwrap(), "graft");
        let c = ["delete", "dump"];
        assert!(choose("d", &c, "verb")
            .unwrap_err()
            .message
            .contains("ambiguous"));
        assert!(choose("x", &c, "verb")
            .unwrap_err()
            .message
            .contains("unknown verb 'x'"));
    }

    crate::keywords! {
        /// A grammar position for the tests.
        enum Verb("verb") { Import = "import", Graft = "graft", Debug = "debug" | "dbg" }
    }

    #[test]
    fn keywords_pick_their_variant_by_word_synonym_or_prefix() {
        assert_eq!(Verb::choose("imp").unwrap(), Verb::Import);
        assert_eq!(Verb::choose("dbg").unwrap(), Verb::Debug);
        assert_eq!(Verb::choose("de").unwrap(), Verb::Debug);
        assert_eq!(Verb::choose("graft").unwrap(), Verb::Graft);
        assert!(Verb::choose("help").unwrap_err().help);
        let e = Verb::choose("d").unwrap_err();
        assert!(e.message.contains("ambiguous verb 'd'"), "{}", e.message);
        let e = Verb::choose("x").unwrap_err();
        assert!(
            e.message.contains("import, graft, debug, dbg"),
            "{}",
            e.message
        );
    }

    #[test]
    fn exact_match_wins_over_longer_keyword() {
        assert_eq!(choose("pin", &["pin", "pinned"], "w").unwrap(), "pin");
    }

    #[test]
    fn numbers_parse_decimal_and_hex_and_check_range() {
        assert_eq!(parse_number::<u32>("42"), Some(42));
        assert_eq!(parse_number::<u32>("0x2a"), Some(42));
        assert_eq!(parse_number::<u8>("256"), None);
        assert_eq!(parse_number::<u32>("-1"), None);
    }

    #[test]
    fn a_word_of_help_is_never_a_value() {
        let e = split("help").expect("a FILE").unwrap_err();
        assert!(e.help);
        assert!(split("x help").help_ahead());
        assert!(split("").finish().is_ok());
        assert!(split("x").finish().is_err());
        assert_eq!(split("x y").rest(), ["x", "y"]);
    }
}

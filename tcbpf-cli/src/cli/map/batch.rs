//! `map batch [from FILE|-]`: a co-process for shell loops. Reads map
//! commands one per line in the grammar of `tcbpf map …` without the
//! prefix (words split as a shell would: quotes and backslashes), runs
//! them in order and writes each answer as soon as no more input is
//! waiting (so a `coproc` that asks and waits always gets its answer; a
//! file is answered in large writes). A failed command prints
//! `error: LINE N: …` (`-j`: `{"error": …, "line": N}`) and the batch goes
//! on; the exit status is the first failure's.
//!
//! The MAPs of lookup, update and delete are opened once and kept, one
//! descriptor per map id however the lines spell it (other verbs run as
//! `tcbpf map …` runs them). A line is at most 1 MiB (`map load`'s bound);
//! a longer one fails and the batch goes on after its end. `watch` and a
//! `load` from standard input are refused: one would replace the batch,
//! the other read the batch's own commands as data. Runs of `update` (flags `any`)
//! or of `delete` on one map, with nothing else in between, are gathered
//! and written with one UPDATE_BATCH / DELETE_BATCH when the run ends, when
//! another command comes, or before waiting for input. A batch call that
//! stops at an element goes on one element at a time from there, so each
//! line still gets its own result: no command observes the difference.

use super::super::error::{CliError, Exit};
use super::super::mapref::MapRef;
use super::super::output::Global;
use super::super::words::Words;
use super::elem::{self, UpdateOp};
use super::load::MAX_LINE_BYTES;
use super::OpenMap;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::rc::Rc;
use tcbpf::sys::map::{self as sysmap, update as flags};

/// Most elements gathered before they are written.
const MAX_PENDING: usize = 4096;
/// MAP spellings remembered before the word cache starts again (the
/// descriptors stay, keyed by map id).
const MAX_SPELLINGS: usize = 1024;
/// Answers are written when they pass this size.
const OUT_BYTES: usize = 64 << 10;

/// Runs `tcbpf map batch …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let source = if w.eat("from") {
        Some(w.expect("a file name (or -) after 'from'")?)
    } else {
        None
    };
    w.finish()?;
    let input: Box<dyn Read> = match source.as_deref() {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| CliError::from(e).context(path))?)
        }
    };
    let mut reader = BufReader::with_capacity(64 << 10, input);
    let inner = Global {
        stdin_taken: g.stdin_taken || matches!(source.as_deref(), None | Some("-")),
        ..g.clone()
    };
    let mut b = Batch {
        g: &inner,
        maps: HashMap::new(),
        by_id: HashMap::new(),
        key: String::new(),
        pending: None,
        out: Vec::with_capacity(OUT_BYTES + 4096),
        failed: 0,
        first_failure: None,
    };
    let mut lines = Lines::default();
    let mut n = 0usize;
    loop {
        if reader.buffer().is_empty() {
            b.flush_all()?;
        }
        let line = match lines.next(&mut reader)? {
            None => break,
            Some(Ok(line)) => line,
            Some(Err(TooLong)) => {
                n += 1;
                b.flush_pending();
                b.fail(
                    n,
                    CliError::usage(format!(
                        "the line is longer than {MAX_LINE_BYTES} bytes: skipped to its end"
                    )),
                );
                continue;
            }
        };
        n += 1;
        let text = match std::str::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        b.command(n, text.trim_end_matches(['\n', '\r']))?;
        if b.out.len() >= OUT_BYTES {
            b.write_out()?;
        }
    }
    b.flush_all()?;
    match b.first_failure {
        None => Ok(()),
        Some(exit) => Err(CliError {
            exit,
            message: format!("batch: {} of {n} lines failed", b.failed),
        }),
    }
}

/// A line longer than [`MAX_LINE_BYTES`].
struct TooLong;

/// Reads lines of at most [`MAX_LINE_BYTES`] (as `map load` bounds them):
/// a longer one is reported as soon as it passes the bound, and its rest
/// is read and dropped, never kept.
#[derive(Default)]
struct Lines {
    line: Vec<u8>,
    /// Dropping the rest of a line that passed the bound.
    skipping: bool,
}

impl Lines {
    /// The next line without its newline; None at the end of input.
    fn next(&mut self, r: &mut impl BufRead) -> std::io::Result<Option<Result<&[u8], TooLong>>> {
        self.line.clear();
        loop {
            let buf = match r.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                self.skipping = false;
                return Ok((!self.line.is_empty()).then_some(Ok(self.line.as_slice())));
            }
            let newline = buf.iter().position(|&c| c == b'\n');
            let take = newline.unwrap_or(buf.len());
            if self.skipping {
                r.consume(take + usize::from(newline.is_some()));
                self.skipping = newline.is_none();
                continue;
            }
            if self.line.len() + take > MAX_LINE_BYTES {
                r.consume(take + usize::from(newline.is_some()));
                self.skipping = newline.is_none();
                self.line.clear();
                return Ok(Some(Err(TooLong)));
            }
            self.line.extend_from_slice(&buf[..take]);
            r.consume(take + usize::from(newline.is_some()));
            if newline.is_some() {
                return Ok(Some(Ok(self.line.as_slice())));
            }
        }
    }
}

/// Refuses the commands that would take the batch's place: another batch,
/// and `watch`, which replaces the process, so the lines after it would be
/// dropped. (`load` from standard input, the batch's own commands, is
/// refused by `load` itself: `Global::stdin_taken`.)
fn refuse_in_batch(words: &[String]) -> Result<(), CliError> {
    match words.first().map(|verb| super::MapVerb::choose(verb)) {
        Some(Ok(super::MapVerb::Batch)) => {
            Err(CliError::usage("batch: a batch cannot run another batch"))
        }
        Some(Ok(super::MapVerb::Watch)) => Err(CliError::usage(
            "batch: 'watch' cannot run inside a batch (it would replace the batch and drop the lines after it); run it on its own",
        )),
        _ => Ok(()),
    }
}

/// Gathered updates or deletes of one map.
struct Pending {
    map: Rc<OpenMap>,
    delete: bool,
    keys: Vec<u8>,
    values: Vec<u8>,
    lines: Vec<usize>,
}

struct Batch<'g> {
    g: &'g Global,
    maps: HashMap<String, Rc<OpenMap>>,
    /// The open maps by map id and writability: one descriptor each.
    by_id: HashMap<(u32, bool), Rc<OpenMap>>,
    /// The MAP words of the command at hand, as the key of `maps`.
    key: String,
    pending: Option<Pending>,
    out: Vec<u8>,
    failed: usize,
    first_failure: Option<Exit>,
}

impl Batch<'_> {
    fn command(&mut self, n: usize, line: &str) -> Result<(), CliError> {
        let words = match split_words(line) {
            Ok(w) => w,
            Err(e) => {
                self.flush_pending();
                self.fail(n, CliError::usage(e));
                return Ok(());
            }
        };
        if words.first().map_or(true, |w| w.starts_with('#')) {
            return Ok(());
        }
        if let Err(e) = self.run_words(n, words) {
            self.flush_pending();
            self.fail(n, e);
        }
        Ok(())
    }

    fn run_words(&mut self, n: usize, words: Vec<String>) -> Result<(), CliError> {
        refuse_in_batch(&words)?;
        // The fast paths take the verbs spelt out and the MAP as two words
        // (`pinned PATH`, `fd N`…); prefixes, queues and stacks go the way
        // `tcbpf map …` goes.
        let fast = match (words[0].as_str(), words.get(1), words.get(2)) {
            ("lookup" | "update" | "delete", Some(kind), Some(what)) => {
                let m = self.open(kind, what)?;
                (!m.is_queue_or_stack() || words[0] == "update").then_some(m)
            }
            _ => None,
        };
        let verb = words[0].clone();
        let mut w = Words::new(words);
        let Some(m) = fast else {
            // Every other command as `tcbpf map …` would run it.
            self.flush_pending();
            self.write_out()?;
            let r = super::run(self.g, &mut w);
            std::io::stdout().flush()?;
            return r;
        };
        w.next();
        w.next();
        w.next();
        match verb.as_str() {
            "lookup" => {
                self.flush_pending();
                if !w.eat("key") {
                    return Err(CliError::usage("lookup: expected 'key DATA'"));
                }
                let out = elem::lookup_key(self.g, &mut w, &m)?;
                self.answer(out)
            }
            "update" => {
                let op = elem::parse_update(&mut w, &m)?;
                if op.flags == flags::ANY && !m.is_queue_or_stack() {
                    self.gather(n, m, false, op);
                    Ok(())
                } else {
                    self.flush_pending();
                    elem::apply_update(&m, &op)
                }
            }
            _ => {
                let (key, key_layout) = elem::parse_delete(&mut w, &m)?;
                let op = UpdateOp {
                    key,
                    key_layout,
                    value: Vec::new(),
                    flags: 0,
                };
                self.gather(n, m, true, op);
                Ok(())
            }
        }
    }

    /// The map two MAP words name, opened once (read-write, or read-only
    /// when that is all its pin allows) and found again by those words.
    /// One descriptor per map and mode: another spelling of a map already
    /// open (`pinned /a/./b`, `id N`) closes its new descriptor and shares
    /// the first.
    fn open(&mut self, kind: &str, what: &str) -> Result<Rc<OpenMap>, CliError> {
        self.key.clear();
        self.key.push_str(kind);
        self.key.push(' ');
        self.key.push_str(what);
        if let Some(m) = self.maps.get(self.key.as_str()) {
            return Ok(m.clone());
        }
        let r = MapRef::parse(&mut Words::new(vec![kind.to_string(), what.to_string()]))?;
        let (m, writable) = match OpenMap::open(&r, tcbpf::sys::obj::open::RDWR) {
            Err(e) if e.kind == tcbpf::ErrorKind::Permission => {
                (OpenMap::open(&r, tcbpf::sys::obj::open::RDONLY)?, false)
            }
            other => (other?, true),
        };
        let m = match self.by_id.get(&(m.info.id, writable)) {
            Some(first) => first.clone(),
            None => {
                let m = Rc::new(m);
                self.by_id.insert((m.info.id, writable), m.clone());
                m
            }
        };
        if self.maps.len() >= MAX_SPELLINGS {
            self.maps.clear();
        }
        self.maps.insert(self.key.clone(), m.clone());
        Ok(m)
    }

    fn gather(&mut self, n: usize, m: Rc<OpenMap>, delete: bool, op: UpdateOp) {
        let same = self
            .pending
            .as_ref()
            .is_some_and(|p| p.delete == delete && Rc::ptr_eq(&p.map, &m));
        if !same {
            self.flush_pending();
            self.pending = Some(Pending {
                map: m,
                delete,
                keys: Vec::new(),
                values: Vec::new(),
                lines: Vec::new(),
            });
        }
        if let Some(p) = self.pending.as_mut() {
            p.keys.extend_from_slice(&op.key);
            p.values.extend_from_slice(&op.value);
            p.lines.push(n);
            if p.lines.len() >= MAX_PENDING {
                self.flush_pending();
            }
        }
    }

    /// Writes the gathered run: one batch call, then one element at a time
    /// from where it stopped (each failing line reported).
    fn flush_pending(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let m = &p.map;
        let (ks, vs) = (m.sizes.key(), m.sizes.value());
        let count = p.lines.len();
        let done = if count < 2 {
            0
        } else if p.delete {
            sysmap::delete_batch(&m.fd, &m.sizes, &p.keys).unwrap_or_else(|e| e.done)
        } else {
            sysmap::update_batch(&m.fd, &m.sizes, &p.keys, &p.values, flags::ANY)
                .unwrap_or_else(|e| e.done)
        };
        for i in done..count {
            let key = &p.keys[i * ks..(i + 1) * ks];
            let r = if p.delete {
                sysmap::delete(&m.fd, key).map_err(|e| elem::delete_error(m, e, &None, key))
            } else {
                let value = &p.values[i * vs..(i + 1) * vs];
                sysmap::update(&m.fd, key, value, flags::ANY)
                    .map_err(|e| elem::update_error(m, e, flags::ANY, &None, key))
            };
            if let Err(e) = r {
                self.fail(p.lines[i], e);
            }
        }
    }

    fn answer(&mut self, out: Vec<u8>) -> Result<(), CliError> {
        if self.g.pretty {
            self.write_out()?;
            return elem::emit(self.g, out);
        }
        self.out.extend_from_slice(&out);
        if self.g.json {
            self.out.push(b'\n');
        }
        Ok(())
    }

    fn fail(&mut self, n: usize, e: CliError) {
        // A batch line asking for help has no usage to print in its place.
        let e = if e.is_help() {
            CliError::usage("help is not a batch command (see 'tcbpf map help')")
        } else {
            e
        };
        self.failed += 1;
        self.first_failure.get_or_insert(e.exit);
        if self.g.json {
            let v = serde_json::json!({"error": e.message, "line": n});
            self.out.extend_from_slice(v.to_string().as_bytes());
            self.out.push(b'\n');
        } else {
            let _ = writeln!(self.out, "error: LINE {n}: {}", e.message);
        }
    }

    fn write_out(&mut self) -> Result<(), CliError> {
        if !self.out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&self.out)?;
            stdout.flush()?;
            self.out.clear();
        }
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), CliError> {
        self.flush_pending();
        self.write_out()?;
        std::io::stdout().flush()?;
        Ok(())
    }
}

/// Splits a line into words as a shell would: blanks separate, '…' keeps
/// everything, "…" keeps all but `\"` and `\\`, a backslash quotes the next
/// character.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn lines_split_like_a_shell() {
        assert_eq!(
            split_words(r#"update fd 3 key 17 value json '{"a": 1}'"#).unwrap(),
            vec![
                "update",
                "fd",
                "3",
                "key",
                "17",
                "value",
                "json",
                r#"{"a": 1}"#
            ]
        );
        assert_eq!(
            split_words(r#"a "b \"c\" d" e\ f ''"#).unwrap(),
            vec!["a", r#"b "c" d"#, "e f", ""]
        );
        assert!(split_words("a 'b").is_err());
        assert!(split_words("   ").unwrap().is_empty());
    }
}

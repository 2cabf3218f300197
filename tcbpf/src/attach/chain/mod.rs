//! Ordered chains of programs on one tcx hook (`tcbpf chain apply`): the
//! chain file's grammar, and the plan that takes a hook from what is
//! attached to what the file lists. This file is pure: no files, no
//! syscalls; [`apply`] loads, attaches (with revision checks, retries and
//! rollback) and detaches as the plan says.
//!
//! tcbpf owns the links it attached for a chain (it pins them under one
//! directory per hook, named by each entry's key); programs attached by
//! anyone else are never touched and keep their places.

mod apply;

pub use apply::{apply, Applied, ApplyError, ChainHook, NewLink, ATTEMPTS, LOCK_WAIT};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// One line of a chain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEntry {
    /// `obj FILE [ sec NAME ] [ program FUNC ]`.
    Obj {
        /// The object file.
        file: PathBuf,
        /// The section (None: tc's default, `classifier`).
        section: Option<String>,
        /// The function (None: the section's first).
        program: Option<String>,
    },
    /// `pinned PATH`: a program already pinned.
    Pinned(PathBuf),
}

/// Parses a chain file: one entry per line, in run order; `#` starts a
/// comment; blank lines are skipped. Errors name the line.
pub fn parse_chain(text: &str) -> Result<Vec<ChainEntry>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |m: String| format!("line {}: {m}", n + 1);
        if raw.contains('\0') {
            return Err(at("a NUL byte (a chain file is text)".into()));
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let entry = match words[0] {
            "obj" | "object-file" => {
                let file = words
                    .get(1)
                    .ok_or_else(|| at("expected a FILE after 'obj'".into()))?;
                let (mut section, mut program) = (None, None);
                let mut rest = words[2..].iter();
                while let Some(w) = rest.next() {
                    let mut value = |what: &str| {
                        rest.next()
                            .map(|v| v.to_string())
                            .ok_or_else(|| at(format!("expected a {what} after '{w}'")))
                    };
                    match *w {
                        "sec" | "section" => section = Some(value("section name")?),
                        "program" => program = Some(value("function name")?),
                        other => {
                            return Err(at(format!(
                                "unknown word '{other}' (expected sec NAME or program FUNC)"
                            )))
                        }
                    }
                }
                ChainEntry::Obj {
                    file: PathBuf::from(file),
                    section,
                    program,
                }
            }
            "pinned" | "object-pinned" | "fd" => {
                if words.len() != 2 {
                    return Err(at("expected 'pinned PATH'".into()));
                }
                ChainEntry::Pinned(PathBuf::from(words[1]))
            }
            other => {
                return Err(at(format!(
                    "'{other}': expected 'obj FILE [ sec NAME ] [ program FUNC ]' or 'pinned PATH'"
                )))
            }
        };
        out.push(entry);
    }
    if out.is_empty() {
        return Err("the chain file lists no programs".into());
    }
    Ok(out)
}

/// A link tcbpf owns on the hook: its id, and the key of the entry it was
/// attached for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLink {
    /// The link's id.
    pub link_id: u32,
    /// The entry's key (see [`Plan::build`]).
    pub key: String,
}

/// Where a new entry's link goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Behind the link of desired entry `i` (kept or attached before it).
    AfterEntry(usize),
    /// In front of the kept link with this id (the first entry).
    BeforeLink(u32),
    /// At the tail of the hook (the first entry, nothing of ours kept).
    Tail,
}

/// What to do to go from the hook to the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// For each desired entry: `Some(link id)` when its link stays.
    pub kept: Vec<Option<u32>>,
    /// Entries to attach, in this order, each with its place.
    pub attach: Vec<(usize, Place)>,
    /// Owned links to detach (after every attach succeeded).
    pub detach: Vec<u32>,
}

impl Plan {
    /// Builds the plan. `hook` is the hook's link ids in run order (0 for
    /// programs without a link), `owned` the links tcbpf owns on it,
    /// `desired` the keys of the chain's entries in order, and `group` the
    /// object each entry comes from (entries of one object share maps only
    /// when loaded together: if one of them must be attached anew, all of
    /// them are).
    ///
    /// A kept link keeps its place; entries whose owned link is out of
    /// order, or whose key is new, get new links; owned links no entry
    /// wants are detached.
    pub fn build(hook: &[u32], owned: &[OwnedLink], desired: &[String], group: &[usize]) -> Plan {
        let pos: HashMap<u32, usize> = hook.iter().enumerate().map(|(i, &l)| (l, i)).collect();
        let mut by_key: HashMap<&str, u32> = HashMap::new();
        for o in owned {
            if pos.contains_key(&o.link_id) {
                by_key.entry(o.key.as_str()).or_insert(o.link_id);
            }
        }
        // Keep links that are already in the desired relative order.
        let mut kept: Vec<Option<u32>> = Vec::with_capacity(desired.len());
        let mut last = None;
        for key in desired {
            let k = by_key.get(key.as_str()).copied().filter(|l| {
                let p = pos[l];
                last.map_or(true, |q| p > q)
            });
            if let Some(l) = k {
                last = Some(pos[&l]);
            }
            kept.push(k);
        }
        // One object's entries are kept or renewed together.
        let renewed: HashSet<usize> = kept
            .iter()
            .zip(group)
            .filter(|(k, _)| k.is_none())
            .map(|(_, g)| *g)
            .collect();
        for (k, g) in kept.iter_mut().zip(group) {
            if renewed.contains(g) {
                *k = None;
            }
        }
        let mut attach = Vec::new();
        for (i, k) in kept.iter().enumerate() {
            if k.is_some() {
                continue;
            }
            let place = if i > 0 {
                Place::AfterEntry(i - 1)
            } else {
                match kept.iter().flatten().next() {
                    Some(&l) => Place::BeforeLink(l),
                    None => Place::Tail,
                }
            };
            attach.push((i, place));
        }
        let keep: HashSet<u32> = kept.iter().flatten().copied().collect();
        let detach = owned
            .iter()
            .map(|o| o.link_id)
            .filter(|l| !keep.contains(l))
            .collect();
        Plan {
            kept,
            attach,
            detach,
        }
    }

    /// True when the hook already is the chain.
    pub fn is_empty(&self) -> bool {
        self.attach.is_empty() && self.detach.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(pairs: &[(u32, &str)]) -> Vec<OwnedLink> {
        pairs
            .iter()
            .map(|(l, k)| OwnedLink {
                link_id: *l,
                key: k.to_string(),
            })
            .collect()
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chain_file_lines_parse_with_comments_and_errors_name_the_line() {
        let c = parse_chain("# first\nobj a.o sec tc program tc1\n\n  pinned /p  # x\nobj b.o\n")
            .unwrap();
        assert_eq!(
            c,
            vec![
                ChainEntry::Obj {
                    file: "a.o".into(),
                    section: Some("tc".into()),
                    program: Some("tc1".into())
                },
                ChainEntry::Pinned("/p".into()),
                ChainEntry::Obj {
                    file: "b.o".into(),
                    section: None,
                    program: None
                },
            ]
        );
        assert_eq!(
            parse_chain("obj a.o\nbogus x").unwrap_err(),
            "line 2: 'bogus': expected 'obj FILE [ sec NAME ] [ program FUNC ]' or 'pinned PATH'"
        );
        assert!(parse_chain("obj a.o sec")
            .unwrap_err()
            .contains("line 1: expected a section name after 'sec'"));
        assert!(parse_chain("pinned").unwrap_err().contains("line 1"));
        assert!(parse_chain("# nothing\n")
            .unwrap_err()
            .contains("no programs"));
        assert_eq!(
            parse_chain("obj a.o\nobj a.o program f\0oo\n").unwrap_err(),
            "line 2: a NUL byte (a chain file is text)"
        );
    }

    #[test]
    fn empty_hook_attaches_everything_in_order_at_the_tail() {
        let p = Plan::build(&[], &[], &keys(&["a", "b", "c"]), &[0, 0, 0]);
        assert_eq!(p.kept, vec![None, None, None]);
        assert_eq!(
            p.attach,
            vec![
                (0, Place::Tail),
                (1, Place::AfterEntry(0)),
                (2, Place::AfterEntry(1))
            ]
        );
        assert!(p.detach.is_empty());
    }

    #[test]
    fn the_same_chain_again_changes_nothing() {
        let hook = [9, 11, 12, 13];
        let own = owned(&[(11, "a"), (12, "b"), (13, "c")]);
        let p = Plan::build(&hook, &own, &keys(&["a", "b", "c"]), &[0, 0, 1]);
        assert_eq!(p.kept, vec![Some(11), Some(12), Some(13)]);
        assert!(p.is_empty());
    }

    #[test]
    fn new_and_removed_entries_keep_the_others_in_place() {
        let hook = [11, 12, 13];
        let own = owned(&[(11, "a"), (12, "b"), (13, "c")]);
        // drop b, add d before a (each its own object)
        let p = Plan::build(&hook, &own, &keys(&["d", "a", "c"]), &[3, 0, 2]);
        assert_eq!(p.kept, vec![None, Some(11), Some(13)]);
        assert_eq!(p.attach, vec![(0, Place::BeforeLink(11))]);
        assert_eq!(p.detach, vec![12]);
    }

    #[test]
    fn out_of_order_links_are_renewed_with_their_whole_object() {
        let hook = [11, 12, 13];
        let own = owned(&[(11, "a"), (12, "b"), (13, "c")]);
        // c moves to the front: c is kept, a and b (out of order) renewed.
        let p = Plan::build(&hook, &own, &keys(&["c", "a", "b"]), &[2, 0, 1]);
        assert_eq!(p.kept, vec![Some(13), None, None]);
        assert_eq!(
            p.attach,
            vec![(1, Place::AfterEntry(0)), (2, Place::AfterEntry(1))]
        );
        assert_eq!(p.detach, vec![11, 12]);
        // the same, all from one object: everything renewed.
        let p = Plan::build(&hook, &own, &keys(&["c", "a", "b"]), &[0, 0, 0]);
        assert_eq!(p.kept, vec![None, None, None]);
        assert_eq!(p.attach[0], (0, Place::Tail));
        assert_eq!(p.detach, vec![11, 12, 13]);
    }

    #[test]
    fn owned_links_no_longer_on_the_hook_are_forgotten() {
        let own = owned(&[(40, "a")]);
        let p = Plan::build(&[41], &own, &keys(&["a"]), &[0]);
        assert_eq!(p.kept, vec![None]);
        assert_eq!(p.attach, vec![(0, Place::Tail)]);
        assert_eq!(p.detach, vec![40]);
    }
}

//! Who may get what from a keeper: the policy file and the decision.
//!
//! ```text
//! # comment
//! allow uid U|gid G [ set NAME ] [ ro | rw ]
//! ```
//!
//! Root (uid 0) may always read and write every set. Everyone else gets
//! nothing unless a line allows it: `uid U` matches the peer's user id,
//! `gid G` its primary or any supplementary group (as the kernel reported
//! them when it connected); without `set` the line covers every set;
//! without `ro`/`rw` it allows read-only (the least). The most any matching
//! line allows wins. Pure: text in, decisions out; no files, no syscalls.

use std::fmt;

/// What a client may do with a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Read-only descriptors.
    ReadOnly,
    /// Read-write descriptors.
    ReadWrite,
}

impl Grant {
    /// `ro` or `rw`.
    pub fn word(self) -> &'static str {
        match self {
            Grant::ReadOnly => "ro",
            Grant::ReadWrite => "rw",
        }
    }
}

/// Whom a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// A user id.
    Uid(u32),
    /// A group id (primary or supplementary).
    Gid(u32),
}

impl Who {
    /// True when the rule's user or group is the peer's (primary or
    /// supplementary group).
    fn matches(self, peer: &Peer) -> bool {
        match self {
            Who::Uid(u) => u == peer.uid,
            Who::Gid(g) => g == peer.gid || peer.groups.contains(&g),
        }
    }
}

/// One `allow` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Whom it allows.
    pub who: Who,
    /// The set it covers; None for every set.
    pub set: Option<String>,
    /// What it allows.
    pub grant: Grant,
}

/// A peer as SO_PEERCRED and SO_PEERGROUPS describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// A policy line that does not parse: its number and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

fn number(word: Option<&str>, what: &str) -> Result<u32, String> {
    let w = word.ok_or_else(|| format!("expected {what}"))?;
    w.parse()
        .map_err(|_| format!("{what}: '{w}' is not a number"))
}

impl Policy {
    /// Parses the text of a policy file.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            let Some(first) = w.next() else { continue };
            let err = |message: String| PolicyError {
                line: i + 1,
                message,
            };
            if first != "allow" {
                return Err(err(format!("expected 'allow', found '{first}'")));
            }
            let who = match w.next() {
                Some("uid") => Who::Uid(number(w.next(), "a uid after 'uid'").map_err(err)?),
                Some("gid") => Who::Gid(number(w.next(), "a gid after 'gid'").map_err(err)?),
                Some(other) => {
                    return Err(err(format!("expected 'uid' or 'gid', found '{other}'")))
                }
                None => return Err(err("expected 'uid U' or 'gid G' after 'allow'".into())),
            };
            let mut rule = Rule {
                who,
                set: None,
                grant: Grant::ReadOnly,
            };
            let mut grant_seen = false;
            while let Some(word) = w.next() {
                match word {
                    "set" if rule.set.is_none() => {
                        let name = w
                            .next()
                            .ok_or_else(|| err("expected a set name after 'set'".into()))?;
                        rule.set = Some(name.to_string());
                    }
                    "ro" | "rw" if !grant_seen => {
                        grant_seen = true;
                        rule.grant = if word == "rw" {
                            Grant::ReadWrite
                        } else {
                            Grant::ReadOnly
                        };
                    }
                    _ => return Err(err(format!("unexpected word '{word}'"))),
                }
            }
            rules.push(rule);
        }
        Ok(Policy { rules })
    }

    /// What `peer` may do with `set`: root always read-write; otherwise
    /// the most any matching rule allows, None when no rule matches.
    pub fn grant(&self, peer: &Peer, set: &str) -> Option<Grant> {
        if peer.uid == 0 {
            return Some(Grant::ReadWrite);
        }
        self.rules
            .iter()
            .filter(|r| r.who.matches(peer))
            .filter(|r| r.set.as_deref().map_or(true, |s| s == set))
            .map(|r| r.grant)
            .max()
    }

    /// True for root and for a peer some rule gives `rw` (of any set): the
    /// keeper's connection limits never shut these out (see
    /// [`crate::keeper::admission`]).
    pub fn is_trusted(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || self
                .rules
                .iter()
                .any(|r| r.grant == Grant::ReadWrite && r.who.matches(peer))
    }

    /// True when `peer` may see counters and clients (`status`): root, or
    /// a rule covering every set.
    pub fn may_see_status(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || self
                .rules
                .iter()
                .any(|r| r.set.is_none() && r.who.matches(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1,
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_is_always_rw_and_others_get_nothing_by_default() {
        let p = Policy::default();
        assert_eq!(p.grant(&peer(0, 0, &[]), "x"), Some(Grant::ReadWrite));
        assert_eq!(p.grant(&peer(1000, 1000, &[]), "x"), None);
        assert!(p.may_see_status(&peer(0, 0, &[])));
        assert!(!p.may_see_status(&peer(1000, 1000, &[])));
    }

    #[test]
    fn rules_match_uid_gid_and_set_and_the_most_wins() {
        let p = Policy::parse(
            "# keeper policy\n\
             allow uid 65534 set verdict.o ro\n\
             allow gid 900 rw   # operators\n\
             \n\
             allow uid 1000\n\
             allow uid 1000 set a.o rw\n",
        )
        .unwrap();
        assert_eq!(p.rules.len(), 4);
        assert_eq!(
            p.grant(&peer(65534, 65534, &[]), "verdict.o"),
            Some(Grant::ReadOnly)
        );
        assert_eq!(p.grant(&peer(65534, 65534, &[]), "other.o"), None);
        assert_eq!(
            p.grant(&peer(5, 5, &[7, 900]), "any"),
            Some(Grant::ReadWrite)
        );
        assert_eq!(p.grant(&peer(5, 900, &[]), "any"), Some(Grant::ReadWrite));
        assert_eq!(
            p.grant(&peer(1000, 1000, &[]), "b.o"),
            Some(Grant::ReadOnly)
        );
        assert_eq!(
            p.grant(&peer(1000, 1000, &[]), "a.o"),
            Some(Grant::ReadWrite)
        );
        assert!(p.may_see_status(&peer(1000, 1000, &[])));
        assert!(!p.may_see_status(&peer(65534, 65534, &[])));
        // Trusted (never shut out by the connection limits): root and
        // whoever some line gives rw.
        assert!(p.is_trusted(&peer(0, 0, &[])));
        assert!(p.is_trusted(&peer(1000, 1000, &[])));
        assert!(p.is_trusted(&peer(5, 5, &[900])));
        assert!(!p.is_trusted(&peer(65534, 65534, &[])));
        assert!(!p.is_trusted(&peer(7, 7, &[])));
    }

    #[test]
    fn bad_lines_name_their_number_and_word() {
        for (text, line, needle) in [
            ("deny uid 1", 1, "expected 'allow'"),
            ("\nallow user 1", 2, "expected 'uid' or 'gid'"),
            ("allow uid x", 1, "not a number"),
            ("allow uid", 1, "expected a uid"),
            ("allow gid 1 set", 1, "set name"),
            ("allow uid 1 ro rw", 1, "unexpected word 'rw'"),
            ("allow uid 1 bogus", 1, "unexpected word"),
            ("allow", 1, "after 'allow'"),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }
}

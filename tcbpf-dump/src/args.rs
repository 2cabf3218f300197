//! The grammar of `tcbpf dump`, in tc's and tcpdump's words, and the exit
//! codes (0 ok, 1 not found, 2 usage or bad input, 3 permission, 4 other:
//! library errors by their `ErrorKind`, as everywhere in tcbpf).

use std::path::PathBuf;
use tcbpf::attach::tcx::Direction;
use tcbpf::trace::{self, classic::SNAP_MAX, DEFAULT_SNAPLEN};

/// `tcbpf dump help`; docs/dump.md's "tcbpf dump" block holds the same text.
pub const USAGE: &str = "\
Usage: tcbpf dump dev DEV [ ingress | egress | tcx { ingress | egress } ]
                  [ prog ID | pinned PATH ] [ filter EXPR ] [ verdict VERDICT ]
                  [ count N ] [ snaplen N ] [ buffer KIB ] [ w FILE ] [ -j ]
       tcbpf dump { prog ID | pinned PATH } [ … ]   (on any device)

Shows every packet the tc programs on DEV handle (cls_bpf filters and tcx
programs, both directions unless one is named; 'tcx' keeps tcx programs
only), or the one program 'prog'/'pinned' names, with the verdict each gave,
in run order. fentry/fexit tracing programs watch the programs; nothing is
detached or changed, and everything is detached when the dump ends (count N
records, SIGINT, SIGTERM or a closed output).

  filter EXPR      a pcap filter (tcpdump's syntax), run in the kernel on the
                   packet's first bytes before anything is written
  verdict VERDICT  keep only this verdict: ok|pass, shot|drop, redirect,
                   unspec|next, pipe, stolen, queued, repeat, trap, reclassify,
                   TC_ACT_* or a number
  snaplen N        bytes kept per packet (default 128, at most 2048)
  buffer KIB       ring buffer size (default 4096 KiB; a power of two)
  w FILE           write pcapng (w - to stdout: | wireshark -k -i - or
                   | tshark -r -); each packet's comment names the program,
                   its position, the verdict, mark and priority before and
                   after, and the redirect target
  -j               one JSON object per packet

Needs CAP_BPF and CAP_PERFMON, programs with BTF (objects built with
clang -g), and a kernel that allows fentry/fexit (BPF trampolines).
Exit status: 0 stopped (count, signal, output closed), 1 device or program
not found, 2 usage or bad input (a bad filter, a program without BTF),
3 permission denied, 4 other failure.
";

/// A failure with its exit code.
#[derive(Debug)]
pub struct Fail {
    /// The exit code.
    pub code: i32,
    /// What to print.
    pub message: String,
}

impl Fail {
    pub fn usage(m: impl Into<String>) -> Fail {
        Fail::from_kind(tcbpf::ErrorKind::BadInput, m.into())
    }

    pub fn not_found(m: impl Into<String>) -> Fail {
        Fail::from_kind(tcbpf::ErrorKind::NotFound, m.into())
    }

    pub fn other(m: impl Into<String>) -> Fail {
        Fail::from_kind(tcbpf::ErrorKind::System, m.into())
    }

    pub fn io(e: std::io::Error) -> Fail {
        Fail::from_kind(tcbpf::ErrorKind::from_io(&e), e.to_string())
    }

    /// A failure of `kind`, with the exit code every tcbpf binary gives
    /// it (`tcbpf::ErrorKind::exit_code`).
    pub fn from_kind(kind: tcbpf::ErrorKind, message: String) -> Fail {
        Fail {
            code: i32::from(kind.exit_code()),
            message,
        }
    }
}

/// Which program `prog`/`pinned` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgSel {
    Id(u32),
    Pinned(PathBuf),
}

/// What the words asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub dev: Option<String>,
    pub directions: Vec<Direction>,
    pub tcx_only: bool,
    pub prog: Option<ProgSel>,
    pub filter: Option<String>,
    pub verdict: Option<i32>,
    pub count: Option<u64>,
    pub snaplen: u32,
    pub buffer_kib: Option<u32>,
    pub write: Option<String>,
    pub json: bool,
}

const WORDS: [&str; 13] = [
    "dev", "ingress", "egress", "tcx", "prog", "pinned", "filter", "verdict", "count", "snaplen",
    "buffer", "w", "help",
];

/// The word `w` abbreviates (tc's unambiguous prefixes; `w` exactly).
fn choose(w: &str) -> Result<&'static str, Fail> {
    if let Some(exact) = WORDS.iter().find(|x| **x == w) {
        return Ok(exact);
    }
    let found: Vec<&str> = WORDS.iter().copied().filter(|x| x.starts_with(w)).collect();
    match (w, found.as_slice()) {
        ("write", _) => Ok("w"),
        ("-h" | "--help" | "-help", _) => Ok("help"),
        (_, [one]) if !w.is_empty() => Ok(one),
        (_, []) | (_, [_]) => Err(Fail::usage(format!(
            "unknown word '{w}' (see 'tcbpf dump help')"
        ))),
        (_, many) => Err(Fail::usage(format!(
            "'{w}' is ambiguous: {} (see 'tcbpf dump help')",
            many.join(", ")
        ))),
    }
}

impl Args {
    /// Parses the words after `dump`; `None` for `help`.
    pub fn parse(words: Vec<String>) -> Result<Option<Args>, Fail> {
        let mut a = Args {
            dev: None,
            directions: vec![Direction::Ingress, Direction::Egress],
            tcx_only: false,
            prog: None,
            filter: None,
            verdict: None,
            count: None,
            snaplen: DEFAULT_SNAPLEN,
            buffer_kib: None,
            write: None,
            json: false,
        };
        let mut it = words.into_iter();
        let value = |it: &mut std::vec::IntoIter<String>, what: &str| {
            it.next()
                .ok_or_else(|| Fail::usage(format!("expected {what}")))
        };
        fn number<T: std::str::FromStr>(s: String, what: &str) -> Result<T, Fail> {
            s.parse()
                .map_err(|_| Fail::usage(format!("'{s}' is not {what}")))
        }
        while let Some(w) = it.next() {
            if matches!(w.as_str(), "-j" | "-json" | "--json" | "-p" | "-pretty") {
                a.json = true;
                continue;
            }
            match choose(&w)? {
                "help" => return Ok(None),
                "dev" => a.dev = Some(value(&mut it, "a device after 'dev'")?),
                "ingress" => a.directions = vec![Direction::Ingress],
                "egress" => a.directions = vec![Direction::Egress],
                "tcx" => {
                    a.tcx_only = true;
                    match it.next().as_deref().map(choose) {
                        Some(Ok("ingress")) => a.directions = vec![Direction::Ingress],
                        Some(Ok("egress")) => a.directions = vec![Direction::Egress],
                        _ => return Err(Fail::usage("expected 'ingress' or 'egress' after 'tcx'")),
                    }
                }
                "prog" => {
                    let id = value(&mut it, "a program id after 'prog'")?;
                    a.prog = Some(ProgSel::Id(number(id, "a program id")?));
                }
                "pinned" => {
                    a.prog = Some(ProgSel::Pinned(
                        value(&mut it, "a path after 'pinned'")?.into(),
                    ))
                }
                "filter" => a.filter = Some(value(&mut it, "a pcap expression after 'filter'")?),
                "verdict" => {
                    let v = value(&mut it, "a verdict after 'verdict'")?;
                    a.verdict = Some(trace::verdict_by_name(&v).ok_or_else(|| {
                        Fail::usage(format!(
                            "unknown verdict '{v}' (ok, shot, redirect, unspec, … or a number)"
                        ))
                    })?);
                }
                "count" => {
                    let n: u64 = number(value(&mut it, "a number after 'count'")?, "a count")?;
                    if n == 0 {
                        return Err(Fail::usage("count must be at least 1"));
                    }
                    a.count = Some(n);
                }
                "snaplen" => {
                    let n: u32 = number(value(&mut it, "a number after 'snaplen'")?, "a length")?;
                    if n == 0 || n > SNAP_MAX {
                        return Err(Fail::usage(format!(
                            "snaplen {n} is not between 1 and {SNAP_MAX}"
                        )));
                    }
                    a.snaplen = n;
                }
                "buffer" => {
                    let n: u32 = number(value(&mut it, "KiB after 'buffer'")?, "a size in KiB")?;
                    if !n.is_power_of_two() || !(4..=1 << 20).contains(&n) {
                        return Err(Fail::usage(format!(
                            "buffer {n} KiB: a power of two from 4 to 1048576"
                        )));
                    }
                    a.buffer_kib = Some(n);
                }
                "w" => a.write = Some(value(&mut it, "a file (or -) after 'w'")?),
                other => unreachable!("word table holds '{other}'"),
            }
        }
        if a.dev.is_none() && a.prog.is_none() {
            return Err(Fail::usage(
                "expected 'dev DEV' or 'prog ID' / 'pinned PATH' (see 'tcbpf dump help')",
            ));
        }
        if a.json && a.write.is_some() {
            return Err(Fail::usage(
                "-j prints JSON lines; 'w' writes pcapng: choose one",
            ));
        }
        Ok(Some(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Args>, Fail> {
        Args::parse(line.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn words_and_prefixes() {
        let a = parse("dev va tcx eg prog 41 verd drop cou 60 snap 64 w out.pcapng")
            .unwrap()
            .unwrap();
        assert_eq!(a.dev.as_deref(), Some("va"));
        assert!(a.tcx_only);
        assert_eq!(a.directions, vec![Direction::Egress]);
        assert_eq!(a.prog, Some(ProgSel::Id(41)));
        assert_eq!(a.verdict, Some(2));
        assert_eq!(a.count, Some(60));
        assert_eq!(a.snaplen, 64);
        assert_eq!(a.write.as_deref(), Some("out.pcapng"));
        assert!(parse("help").unwrap().is_none());
    }

    #[test]
    fn bad_words_are_usage_errors_naming_them() {
        for (line, says) in [
            ("", "expected 'dev DEV'"),
            ("dev va snaplen 0", "snaplen 0"),
            ("dev va verdict maybe", "unknown verdict 'maybe'"),
            ("dev va frobnicate", "unknown word 'frobnicate'"),
            ("dev va p 3", "ambiguous"),
            ("dev va buffer 3", "power of two"),
            ("dev va tcx sideways", "after 'tcx'"),
            ("dev va -j w x", "choose one"),
        ] {
            let e = parse(line).unwrap_err();
            assert_eq!(e.code, 2, "{line}");
            assert!(e.message.contains(says), "{line}: {}", e.message);
        }
    }
}

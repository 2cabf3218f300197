//! `tcbpf chain apply dev DEV tcx { ingress | egress } FILE`: the words,
//! the chain file read and parsed, and the report. Planning, loading,
//! attaching with retries and rollback are the library's
//! `tcbpf::attach::chain::apply`.

use super::error::CliError;
use super::filter::TcxHook;
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::json;
use std::path::{Path, PathBuf};
use tcbpf::attach::chain::{self, parse_chain, Applied, ApplyError, ChainHook};
use tcbpf::attach::tcx::Direction;
use tcbpf::tc::{device, Socket};

/// `tcbpf chain help`.
pub const USAGE: &str = "\
Usage: tcbpf [-j] [-n NETNS] chain apply dev DEV tcx { ingress | egress } FILE

FILE lists programs in run order, one per line ('#' starts a comment):
    obj FILE [ sec NAME ] [ program FUNC ]
    pinned PATH
apply makes the tcx hook run them in that order: links tcbpf attached for
the chain before (pinned under BPFFS/tc/chains/DEV-DIR/) stay when still in
order, new ones go in after the previous entry, with the hook's revision
checked (a concurrent change is retried), and links the file no longer lists
are detached last. Each object is loaded once: its programs share its maps.
A failure leaves the hook as it was. Programs attached by others stay.
Applies on one hook take turns (a lock on the chain directory). FILE is a
regular file of at most 1 MiB of text.
";

#[derive(Debug)]
struct Args {
    dev: String,
    direction: Direction,
    file: PathBuf,
}

keywords! {
    /// The one verb of `tcbpf chain`.
    pub(crate) enum ChainVerb("chain command") { Apply = "apply" }
}

keywords! {
    /// The options of `chain apply` (the word after them is the file).
    pub(crate) enum ApplyOption("chain apply option") { Dev = "dev", Tcx = "tcx" }
}

fn parse(w: &mut Words) -> Result<Args, CliError> {
    let verb = w.expect("'apply'")?;
    let ChainVerb::Apply = ChainVerb::choose(&verb)?;
    let (mut dev, mut direction, mut file) = (None, None, None);
    while let Some(word) = w.next() {
        // After the hook, the first word that is no option is the file.
        let option = match ApplyOption::choose(&word) {
            Ok(o) => Some(o),
            Err(_) if file.is_none() && direction.is_some() => None,
            Err(e) => return Err(e.into()),
        };
        match option {
            Some(ApplyOption::Dev) => dev = Some(w.expect("a device after 'dev'")?),
            Some(ApplyOption::Tcx) => {
                let d = w.expect("ingress or egress after 'tcx'")?;
                direction = Some(TcxHook::direction(&d)?);
            }
            None => file = Some(PathBuf::from(word)),
        }
    }
    Ok(Args {
        dev: dev.ok_or_else(|| CliError::usage("expected 'dev DEV'"))?,
        direction: direction
            .ok_or_else(|| CliError::usage("expected 'tcx { ingress | egress }'"))?,
        file: file.ok_or_else(|| CliError::usage("expected the chain FILE"))?,
    })
}

/// Runs `tcbpf chain …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek().is_none() || w.help_ahead() {
        return Err(CliError::help());
    }
    let args = parse(w)?;
    let text = read_chain_file(&args.file)
        .map_err(|e| e.context(format!("chain file '{}'", args.file.display())))?;
    let entries = parse_chain(&text)
        .map_err(|e| CliError::usage(format!("chain file '{}': {e}", args.file.display())))?;
    let sock = Socket::open()?;
    let ifindex = device::ifindex(&sock, &args.dev)?;
    let _recovered =
        super::filter::recover_upgrade(&args.dev, ifindex, tcbpf::upgrade::Scope::Tcx)?;
    let hook = format!("dev '{}' tcx {}", args.dev, args.direction);
    let target = ChainHook {
        dev: &args.dev,
        ifindex,
        direction: args.direction,
    };
    let mut on_retry = |e: &ApplyError| {
        if g.verbose {
            eline!("tcbpf: {hook} changed meanwhile ({e}); retrying");
        }
    };
    match chain::apply(&target, &entries, &mut on_retry) {
        Ok(done) => report(g, &args, &hook, done),
        Err(e @ ApplyError::Undone(_)) => {
            Err(CliError::from(e).context(format!("chain apply on {hook} (the hook is as it was)")))
        }
        Err(e @ ApplyError::Locked { .. }) => {
            Err(CliError::from(e).context(format!("chain apply on {hook}")))
        }
        Err(e) => Err(CliError::from(e)),
    }
}

/// Longest chain file: a list of programs, not a stream.
const MAX_CHAIN_FILE_BYTES: u64 = 1 << 20;

/// Reads the chain file: a regular file of at most 1 MiB of text (a
/// directory, a device such as /dev/zero or a fifo is bad input, exit 2).
fn read_chain_file(path: &Path) -> Result<String, CliError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(CliError::from)?;
    let meta = file.metadata().map_err(CliError::from)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(CliError::usage(format!(
            "{what}: a chain file is a regular file"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CHAIN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(CliError::from)?;
    if bytes.len() as u64 > MAX_CHAIN_FILE_BYTES {
        return Err(CliError::usage(format!(
            "longer than {MAX_CHAIN_FILE_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        CliError::usage(format!("line {line}: not UTF-8 text"))
    })
}

fn report(g: &Global, args: &Args, hook: &str, d: Applied) -> Result<(), CliError> {
    if g.json {
        let attached: Vec<_> = d
            .attached
            .iter()
            .map(|l| json!({"link_id": l.link_id, "prog_id": l.prog_id, "name": l.name}))
            .collect();
        g.print_json(&json!({
            "dev": args.dev,
            "tcx": args.direction.to_string(),
            "kept": d.kept,
            "attached": attached,
            "detached": d.detached,
            "revision": d.revision,
            "retries": d.retries,
        }))?;
    } else {
        println!(
            "chain on {hook}: {} kept, {} attached, {} detached, revision {}",
            d.kept.len(),
            d.attached.len(),
            d.detached.len(),
            d.revision
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn apply_words_parse() {
        let a = parse(&mut words("apply dev v0 tcx egress /tmp/c.chain")).unwrap();
        assert_eq!(
            (a.dev.as_str(), a.direction, a.file.as_path()),
            ("v0", Direction::Egress, Path::new("/tmp/c.chain"))
        );
        assert!(parse(&mut words("apply dev v0 /f")).is_err());
        assert!(parse(&mut words("apply tcx ingress /f"))
            .unwrap_err()
            .message
            .contains("dev DEV"));
    }
}

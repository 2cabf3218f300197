//! `tcbpf exec bpf …`: the exec proxy in tc's words.
//!
//! ```text
//! tcbpf exec bpf import UDS [ timeout SECS ] [ mode OCTAL ] [ allow-uid UID ]…
//!                           [ run CMD [ ARGS… ] ]
//! tcbpf exec bpf import keeper SOCK [ set NAME ] [ map NAME ]… [ ro ] [ run CMD … ]
//! tcbpf exec bpf graft MAP_FILE [ key KEY ] obj FILE [ type cls|act ] [ sec NAME ]
//! tcbpf exec bpf debug
//! ```
//!
//! This module parses words and prints; receiving is `tcbpf::scm`, the
//! environment and exec are `tcbpf::exec`.

use super::error::CliError;
use super::graft;
use super::output::Global;
use super::words::{keywords, Words};
use serde_json::json;
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;
use tcbpf::exec;
use tcbpf::scm::{self, ReceiveOptions, Received, Receiver};

/// `tcbpf exec help`.
pub const USAGE: &str = "\
Usage: tcbpf exec bpf import UDS [ timeout SECS ] [ mode OCTAL ] [ allow-uid UID ]...
                              [ run CMD [ ARGS... ] ]
       tcbpf exec bpf import keeper SOCK [ set NAME ] [ map NAME ]... [ ro ]
                              [ run CMD [ ARGS... ] ]
       tcbpf exec bpf graft MAP_FILE [ key KEY ] { obj FILE [ type cls|act ] [ sec NAME ]
                            [ program FUNC ] [ verbose ] | pinned PATH }
       tcbpf exec bpf { debug | dbg }

import   bind the Unix socket UDS (mode 0600 unless 'mode' says otherwise),
         receive every map an exporter sends ('tcbpf map export', 'tcbpf filter
         ... export UDS', 'tc ... export UDS'), unlink UDS, and replace tcbpf
         with CMD (default /bin/sh, PATH search). CMD inherits the map
         descriptors and finds them in its environment:
           BPF_NUM_MAPS=<n>  BPF_MAP<id>=<fd>  BPF_MAP_<NAME>=<fd>
         Only root and the importer's own uid may send, plus each 'allow-uid';
         other senders' datagrams are dropped with a warning (the first five,
         then a count every 10 s; never blocking). 'timeout SECS'
         gives up waiting; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
         SIGPIPE or SIGALRM while waiting remove UDS and fail (a signal the
         importer inherited as ignored stays ignored).
         With -j, print what was received as JSON instead of running CMD.
         Every generation of struct bpf_elf_map is taken (20, 24, 28 or 36
         bytes per entry, told from the datagram's length and descriptors).
         'import keeper SOCK' gets the maps from a keeper instead (see
         'tcbpf keeper help'), with the same environment.
graft    load a program (or take a pinned one) and place it in a pinned
         program array; MAP_FILE and PATH may be m:REST (under the bpffs tc dir).
debug    stream the kernel trace pipe (bpf_trace_printk output); mounts
         tracefs at /sys/kernel/tracing when it is not mounted.
";

/// Runs `tcbpf exec …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let Some(word) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage("expected 'bpf' after 'exec'"));
    };
    let ExecType::Bpf = ExecType::choose(&word)?;
    let Some(verb) = w.next() else {
        eprint!("{USAGE}");
        return Err(CliError::usage(
            "expected import, graft or debug after 'exec bpf'",
        ));
    };
    // tc's short form of debug.
    if verb == "dbg" {
        return debug(w);
    }
    match ExecVerb::choose(&verb)? {
        ExecVerb::Import => import(g, w),
        ExecVerb::Graft => graft::graft(g, w).map_err(|e| e.with_usage(graft::USAGE)),
        ExecVerb::Debug => debug(w),
    }
}

keywords! {
    /// The one type `exec` knows.
    pub(crate) enum ExecType("exec type") { Bpf = "bpf" }
}

keywords! {
    /// The verbs of `exec bpf` (`dbg`, tc's short form of debug, is
    /// matched before these so that `d` stays a prefix of `debug` alone).
    pub(crate) enum ExecVerb("exec bpf command") { Import = "import", Graft = "graft", Debug = "debug" }
}

keywords! {
    /// The options of `exec bpf import`.
    pub(crate) enum ImportOption("import option") {
        Run = "run",
        Timeout = "timeout",
        Mode = "mode",
        AllowUid = "allow-uid",
    }
}

/// The parsed words of `import`.
#[derive(Debug, PartialEq)]
struct ImportArgs {
    uds: PathBuf,
    opts: ReceiveOptions,
    mode: u32,
    argv: Vec<OsString>,
}

fn parse_import(w: &mut Words) -> Result<ImportArgs, CliError> {
    let uds = PathBuf::from(w.expect("a socket path after 'import'")?);
    let mut args = ImportArgs {
        uds,
        opts: ReceiveOptions {
            stop_on_signals: true,
            ..Default::default()
        },
        mode: scm::DEFAULT_MODE,
        argv: vec![OsString::from(exec::DEFAULT_COMMAND)],
    };
    while let Some(word) = w.next() {
        match ImportOption::choose(&word)? {
            ImportOption::Run => {
                let rest = w.rest();
                if rest.is_empty() {
                    return Err(CliError::usage("expected a command after 'run'"));
                }
                args.argv = rest.into_iter().map(OsString::from).collect();
            }
            ImportOption::Timeout => {
                let text = w.expect("seconds after 'timeout'")?;
                let secs: f64 = text
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        CliError::usage(format!(
                            "timeout: '{text}' is not a positive number of seconds"
                        ))
                    })?;
                args.opts.timeout = Some(Duration::from_secs_f64(secs));
            }
            ImportOption::Mode => {
                let text = w.expect("an octal mode after 'mode'")?;
                let digits = text.strip_prefix("0o").unwrap_or(&text);
                args.mode = u32::from_str_radix(digits, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| {
                        CliError::usage(format!(
                            "mode: '{text}' is not an octal file mode (0000-0777)"
                        ))
                    })?;
            }
            ImportOption::AllowUid => {
                let uid: u32 = w.number("a uid after 'allow-uid'")?;
                args.opts.allowed_uids.push(uid);
            }
        }
    }
    Ok(args)
}

fn import(g: &Global, w: &mut Words) -> Result<(), CliError> {
    if w.peek() == Some("keeper") {
        w.next();
        return super::keeper::import(g, w);
    }
    let mut args = parse_import(w)?;
    // The maps are for the command this process becomes: receive them
    // inheritable rather than clearing close-on-exec one by one.
    args.opts.inheritable = !g.json;
    // The stop signals are blocked before the bind, so one that arrives at any
    // point of the wait unlinks the socket instead of killing the process.
    let receiver = Receiver::bind_stoppable(&args.uds, args.mode).map_err(CliError::from)?;
    // Warnings about refused senders are rate-limited and never block: a
    // flood from another user must not stall the wait (or make signals
    // unanswerable) when nobody reads stderr.
    let mut warnings = scm::DropWarnings::new();
    let warn = |line: String| {
        let text = format!("tcbpf: warning: {}: {line}\n", args.uds.display());
        tcbpf::sys::process::write_stderr_nowait(text.as_bytes());
    };
    let received = receiver.receive(&args.opts, |dropped| {
        if let Some(line) = warnings.note(dropped, std::time::Instant::now()) {
            warn(line);
        }
    });
    if let Some(line) = warnings.summary() {
        warn(line);
    }
    let received = received.map_err(CliError::from)?;
    // Closes the socket and unlinks its path before anything runs.
    receiver.close();
    if g.json {
        g.print_json(&received_json(&received))?;
        return Ok(());
    }
    let err = exec::exec_with_maps(received, &args.argv);
    let program = args.argv[0].to_string_lossy();
    Err(CliError::of(
        tcbpf::ErrorKind::from_io(&err),
        format!("cannot run '{program}': {}", tcbpf::sys::strip_os(&err)),
    ))
}

/// What `import -j` prints.
pub(super) fn received_json(r: &Received) -> serde_json::Value {
    let maps: Vec<serde_json::Value> = r
        .maps
        .iter()
        .map(|m| {
            json!({
                "id": m.desc.id,
                "name": m.info.name,
                "type": m.info.type_name(),
                "type_id": m.desc.map_type,
                "bytes_key": m.desc.key_size,
                "bytes_value": m.desc.value_size,
                "max_entries": m.desc.max_entries,
                "flags": m.desc.flags,
                "pinning": m.desc.pinning,
                "map_id": m.info.id,
                "fd": m.fd.as_raw_fd(),
            })
        })
        .collect();
    json!({
        "object": { "name": r.object.name, "dev": r.object.dev, "ino": r.object.ino },
        "num_maps": r.maps.len(),
        "entry_size": r.entry_size.bytes(),
        "maps": maps,
    })
}

fn debug(w: &mut Words) -> Result<(), CliError> {
    w.finish()?;
    let pipe = exec::trace::trace_pipe().map_err(CliError::from)?;
    let mut out = std::io::stdout().lock();
    exec::trace::stream_trace_pipe(&pipe, &mut out).map_err(CliError::from)
}

#[cfg(test)]
mod tests {
    use super::super::error::Exit;
    use super::*;

    use crate::cli::words::split as words;

    #[test]
    fn import_defaults_to_bin_sh_mode_0600_and_signal_stop() {
        let a = parse_import(&mut words("/tmp/x")).unwrap();
        assert_eq!(a.uds, PathBuf::from("/tmp/x"));
        assert_eq!(a.argv, vec![OsString::from("/bin/sh")]);
        assert_eq!(a.mode, 0o600);
        assert!(a.opts.stop_on_signals);
        assert_eq!(a.opts.timeout, None);
    }

    #[test]
    fn import_options_take_prefixes_and_run_takes_the_rest() {
        let a = parse_import(&mut words(
            "/tmp/x t 2.5 mo 0660 allow 1000 allow-uid 7 r ls -l run",
        ))
        .unwrap();
        assert_eq!(a.opts.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(a.mode, 0o660);
        assert_eq!(a.opts.allowed_uids, vec![1000, 7]);
        let argv: Vec<&str> = a.argv.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(argv, ["ls", "-l", "run"]);
    }

    #[test]
    fn import_rejects_bad_words_with_usage_errors() {
        for (line, needle) in [
            ("", "socket path"),
            ("/tmp/x run", "command after 'run'"),
            ("/tmp/x mode 0999", "octal"),
            ("/tmp/x mode 1777", "octal"),
            ("/tmp/x timeout -1", "positive"),
            ("/tmp/x allow-uid x", "not a valid number"),
            ("/tmp/x bogus", "unknown import option"),
        ] {
            let e = parse_import(&mut words(line)).unwrap_err();
            assert_eq!(e.exit, Exit::Usage, "{line}");
            assert!(e.message.contains(needle), "{line}: {}", e.message);
        }
    }
}

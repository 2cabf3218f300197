//! `tcbpf exporter …`, `tcbpf map watch …`, `tcbpf sync …` and `tcbpf
//! dump …` run the `tcbpf-exporter`, `tcbpf-sync` and `tcbpf-dump`
//! binaries, as git runs `git-*`: the HTTP server, the terminal crate, the
//! async runtime, the etcd client and libpcap live there, so they weigh
//! neither on this binary's start-up nor on the library. A helper is looked
//! for beside this binary first, then on PATH; the process is replaced
//! (execve), keeping the network namespace `-n` entered and the descriptors
//! a MAP like `env ID` names. A helper that is not there is exit 4 for all
//! (an installation fault: exit 1 is kept for what the words name, a key, a
//! map, a pin).

use super::error::CliError;
use super::output::Global;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The exporter's file name.
pub const EXPORTER: &str = "tcbpf-exporter";

/// The dump binary's file name.
pub const DUMP: &str = "tcbpf-dump";

/// Where `exec` would find `tcbpf-exporter` (`demo watch` asks before it
/// sets anything up). `None` when it is neither beside tcbpf nor on PATH.
pub fn find_exporter() -> Option<PathBuf> {
    find(EXPORTER)
}

/// Where the helper `name` is: beside the running `tcbpf`, else the first
/// executable of that name on PATH.
fn find(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `tcbpf-exporter [-j] ARGS…`.
pub fn exec(g: &Global, args: Vec<String>) -> Result<(), CliError> {
    run_helper(EXPORTER, "exporter", g, args)
}

/// Replaces this process with the helper `name` (`what` says which part
/// of tcbpf it is): `name [-j] ARGS…`, the environment kept.
pub fn run_helper(name: &str, what: &str, g: &Global, args: Vec<String>) -> Result<(), CliError> {
    let Some(path) = find(name) else {
        return Err(CliError::failure(format!(
            "{what}: {name} is neither beside tcbpf nor on PATH (install it beside tcbpf: cargo build -p {name})"
        )));
    };
    let program = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| CliError::failure(format!("the path of {name} holds a NUL byte")))?;
    let mut argv = vec![program.clone()];
    if g.json {
        argv.push(c"-j".into());
    }
    for a in args {
        argv.push(CString::new(a).map_err(|_| CliError::usage("an argument holds a NUL byte"))?);
    }
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let err = tcbpf::sys::process::execvpe(&argv, &envp);
    Err(CliError::failure(format!(
        "{what}: cannot run {}: {}",
        path.display(),
        tcbpf::sys::strip_os(&err)
    )))
}

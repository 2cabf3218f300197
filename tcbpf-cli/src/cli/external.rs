//! `tcbpf exporter …` and `tcbpf map watch …` run the `tcbpf-exporter`
//! binary, `tcbpf dump …` the `tcbpf-dump` binary, as git runs `git-*`:
//! the HTTP server, the terminal crate and libpcap live there, so they
//! weigh neither on this binary's start-up nor on the library. The binary is looked for beside this one first, then on PATH;
//! the process is replaced (execvpe), keeping the network namespace `-n`
//! entered and the descriptors a MAP like `env ID` names.

use super::error::CliError;
use super::output::Global;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// The helper binary's file name.
pub const EXPORTER: &str = "tcbpf-exporter";

/// The dump binary's file name.
pub const DUMP: &str = "tcbpf-dump";

/// Replaces this process with `BINARY [-j] ARGS…` (`tcbpf-exporter`,
/// `tcbpf-dump`).
pub fn exec(g: &Global, binary: &str, args: Vec<String>) -> Result<(), CliError> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(binary)))
        .filter(|p| p.is_file());
    let program = match &beside {
        Some(p) => CString::new(p.as_os_str().as_bytes()).ok(),
        None => CString::new(binary).ok(),
    }
    .ok_or_else(|| CliError::failure(format!("the path of {binary} holds a NUL byte")))?;
    let mut argv = vec![program];
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
        "cannot run {binary} (looked beside tcbpf and on PATH): {err}"
    )))
}

//! `tcbpf exporter …` and `tcbpf map watch …` run the `tcbpf-exporter`
//! binary, as git runs `git-*`: the HTTP server and the terminal crate live
//! there, so they weigh neither on this binary's start-up nor on the
//! library. The binary is looked for beside this one first, then on PATH;
//! the process is replaced (execvpe), keeping the network namespace `-n`
//! entered and the descriptors a MAP like `env ID` names.

use super::error::CliError;
use super::output::Global;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// The helper binary's file name.
pub const EXPORTER: &str = "tcbpf-exporter";

/// Where `exec` would find `tcbpf-exporter`: beside this binary, else the
/// first executable of that name on PATH. `None` when neither has it.
pub fn find_exporter() -> Option<std::path::PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(EXPORTER)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(EXPORTER))
                .find(|p| is_executable(p))
        })
    })
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `tcbpf-exporter [-j] ARGS…`.
pub fn exec(g: &Global, args: Vec<String>) -> Result<(), CliError> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(EXPORTER)))
        .filter(|p| p.is_file());
    let program = match &beside {
        Some(p) => CString::new(p.as_os_str().as_bytes()).ok(),
        None => CString::new(EXPORTER).ok(),
    }
    .ok_or_else(|| CliError::failure("the path of tcbpf-exporter holds a NUL byte"))?;
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
        "cannot run {EXPORTER} (looked beside tcbpf and on PATH): {err}"
    )))
}

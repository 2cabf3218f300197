//! `tcbpf sync …`: runs the `tcbpf-sync` binary, as git runs `git-*`, so
//! that its async runtime and etcd client never load into `tcbpf` itself.
//! The helper is looked for beside this executable first, then on PATH;
//! `-j`/`-p` and `-v` are passed on, and the namespace chosen by `-n` is inherited.
//! Nothing else here: the sync grammar belongs to `tcbpf-sync`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The helper's file name.
pub const HELPER: &str = "tcbpf-sync";

/// Where the helper is: beside the running `tcbpf`, else on PATH.
fn helper() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(HELPER)));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(HELPER))
        .find(|p| p.is_file())
}

/// Replaces this process with `tcbpf-sync [-j] [-v] WORDS…`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let Some(bin) = helper() else {
        return Err(CliError::not_found(format!(
            "sync: {HELPER} is neither beside tcbpf nor on PATH (build or install the tcbpf-sync crate)"
        )));
    };
    let mut args: Vec<OsString> = Vec::new();
    if g.json {
        args.push("-j".into());
    }
    if g.verbose {
        args.push("-v".into());
    }
    while let Some(word) = w.next() {
        args.push(word.into());
    }
    let e = std::process::Command::new(&bin).args(args).exec();
    Err(CliError::failure(format!(
        "sync: run {}: {e}",
        bin.display()
    )))
}

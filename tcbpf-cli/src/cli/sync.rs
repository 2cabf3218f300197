//! `tcbpf sync …`: runs the `tcbpf-sync` binary, as git runs `git-*`, so
//! that its async runtime and etcd client never load into `tcbpf` itself.
//! The helper is found and run as the exporter is (`external`): beside
//! this executable first, then on PATH; `-j`/`-p` and `-v` are passed on,
//! and the namespace chosen by `-n` is inherited. Nothing else here: the
//! sync grammar belongs to `tcbpf-sync`.

use super::error::CliError;
use super::output::Global;
use super::words::Words;

/// The helper's file name.
pub const HELPER: &str = "tcbpf-sync";

/// Replaces this process with `tcbpf-sync [-j] [-v] WORDS…`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let mut args = Vec::new();
    if g.verbose {
        args.push("-v".to_string());
    }
    args.extend(w.rest());
    super::external::run_helper(HELPER, "sync", g, args)
}

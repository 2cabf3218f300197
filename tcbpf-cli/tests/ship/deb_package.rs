//! The Debian package built from the repository (scripts/build-deb.sh, on
//! scripts/install.sh) installs on this machine with dpkg, gives a working
//! `tcbpf --version`, man pages `man -w` finds, completions and units, and
//! is removed again (also when an assertion fails: a guard purges it), so
//! the machine is left as it was. To keep the run short it packages the
//! binaries this test run built (debug info stripped by the script, as for
//! a release build) instead of making a release build of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcbpf_testkit::TempDir;

fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "tcbpf"])
        .1
        .contains("installed")
}

/// Purges the package when dropped.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "tcbpf"]).output();
    }
}

#[test]
fn deb_installs_runs_finds_its_man_pages_and_is_removed() {
    tcbpf_testkit::require_root!();
    if run("sh", &["-c", "command -v dpkg-deb"]).1.is_empty() {
        eprintln!("SKIP deb_installs_runs_finds_its_man_pages_and_is_removed: no dpkg-deb");
        return;
    }
    assert!(
        !installed() && !Path::new("/usr/bin/tcbpf").exists(),
        "a tcbpf is already installed in /usr: this test would replace and remove it"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcbpf")).parent().unwrap();
    // The helpers, beside tcbpf: built here only when missing (the
    // workspace build of scripts/test.sh has made them).
    if !["tcbpf-exporter", "tcbpf-sync", "tcbpf-dump"]
        .iter()
        .all(|b| bin_dir.join(b).is_file())
    {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "tcbpf-exporter",
                "-p",
                "tcbpf-sync",
                "-p",
                "tcbpf-dump",
            ])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "building tcbpf-exporter, tcbpf-sync and tcbpf-dump"
        );
    }

    let out_dir = TempDir::new("deb");
    let built = Command::new(root.join("scripts/build-deb.sh"))
        .arg(&out_dir.0)
        .env("TCBPF_BIN_DIR", bin_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(
        built.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default());
    assert!(deb.is_file(), "no .deb at '{}'", deb.display());
    let (ok, info, err) = run("dpkg-deb", &["--info", deb.to_str().unwrap()]);
    assert!(ok && info.contains("Package: tcbpf"), "{info}{err}");

    let _purge = Purge;
    let (ok, _, err) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok, "dpkg -i: {err}");
    assert!(installed());

    let (ok, version, err) = run("/usr/bin/tcbpf", &["--version"]);
    assert!(ok, "{err}");
    assert_eq!(
        version.trim(),
        format!("tcbpf {}", env!("CARGO_PKG_VERSION"))
    );
    for page in [
        "tcbpf",
        "tcbpf-map",
        "tcbpf-exporter",
        "tcbpf-sync",
        "tcbpf-dump",
    ] {
        let (ok, path, err) = run("man", &["-w", page]);
        assert!(ok, "man -w {page}: {err}");
        assert_eq!(
            path.trim(),
            format!("/usr/share/man/man8/{page}.8.gz"),
            "man -w {page}"
        );
    }
    let (_, files, _) = run("dpkg", &["-L", "tcbpf"]);
    for file in [
        "/usr/bin/tcbpf-exporter",
        "/usr/bin/tcbpf-sync",
        "/usr/bin/tcbpf-dump",
        "/usr/share/bash-completion/completions/tcbpf",
        "/usr/share/zsh/vendor-completions/_tcbpf",
        "/usr/share/fish/vendor_completions.d/tcbpf.fish",
        "/usr/lib/systemd/system/tcbpf-keeper.service",
        "/usr/lib/systemd/system/tcbpf-exporter.service",
        "/usr/lib/systemd/system/tcbpf-sync.service",
        "/usr/share/doc/tcbpf/copyright",
    ] {
        assert!(
            files.lines().any(|l| l == file),
            "{file} not in the package"
        );
    }
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/tcbpf-keeper.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/tcbpf keeper "), "{unit}");
    // The installed binary completes as the parser reads.
    let (ok, words, _) = run("/usr/bin/tcbpf", &["gen", "complete", "map"]);
    assert!(ok && words.lines().any(|w| w == "dump"), "{words}");

    let (ok, _, err) = run("dpkg", &["--purge", "tcbpf"]);
    assert!(ok, "dpkg --purge: {err}");
    assert!(!installed());
    for gone in [
        "/usr/bin/tcbpf",
        "/usr/bin/tcbpf-sync",
        "/usr/share/man/man8/tcbpf.8.gz",
        "/usr/lib/systemd/system/tcbpf-keeper.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
}

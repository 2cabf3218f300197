//! scripts/install.sh under a PREFIX and a DESTDIR: every part lands where
//! the README says (binaries, man pages, completions, units pointing at
//! BINDIR, the README with docs/ beside it), and `--uninstall` with the same settings removes every
//! file it wrote. Uses the binaries this test run built (`--no-build`).

use std::path::{Path, PathBuf};
use std::process::Command;
use tcbpf_testkit::TempDir;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn install(root: &Path, bin_dir: &Path, dest: &Path, arg: Option<&str>) {
    let out = Command::new(root.join("scripts/install.sh"))
        .args(arg)
        .env("PREFIX", "/opt/tcbpf")
        .env("DESTDIR", dest)
        .env("TCBPF_BIN_DIR", bin_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh {arg:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn install_puts_every_part_under_prefix_and_uninstall_removes_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tcbpf")).parent().unwrap();
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
    let dest = TempDir::new("install");
    install(&root, bin_dir, &dest.0, Some("--no-build"));
    let p = dest.0.join("opt/tcbpf");
    for file in [
        "bin/tcbpf",
        "bin/tcbpf-exporter",
        "bin/tcbpf-sync",
        "bin/tcbpf-dump",
        "share/man/man8/tcbpf.8.gz",
        "share/man/man8/tcbpf-map.8.gz",
        "share/man/man8/tcbpf-filter.8.gz",
        "share/man/man8/tcbpf-keeper.8.gz",
        "share/man/man8/tcbpf-sync.8.gz",
        "share/man/man8/tcbpf-exporter.8.gz",
        "share/man/man8/tcbpf-dump.8.gz",
        "share/bash-completion/completions/tcbpf",
        "share/zsh/site-functions/_tcbpf",
        "share/fish/vendor_completions.d/tcbpf.fish",
        "lib/systemd/system/tcbpf-keeper.service",
        "lib/systemd/system/tcbpf-keeper.socket",
        "lib/systemd/system/tcbpf-keeper-import.socket",
        "lib/systemd/system/tcbpf-exporter.service",
        "lib/systemd/system/tcbpf-sync.service",
        "share/doc/tcbpf/LICENSE-GPL-2.0",
        "share/doc/tcbpf/LICENSE-BSD-2-Clause",
        "share/doc/tcbpf/README.md",
    ] {
        assert!(p.join(file).is_file(), "{file} not installed");
    }
    // The README's links lead to docs/ beside it: every page is there.
    for page in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = page.unwrap().file_name();
        let file = p.join("share/doc/tcbpf/docs").join(&name);
        assert!(file.is_file(), "docs/{name:?} not installed");
    }
    // Nothing outside PREFIX (inside DESTDIR).
    for f in files_under(&dest.0) {
        assert!(f.starts_with(&p), "{} is outside PREFIX", f.display());
    }
    for unit in ["tcbpf-keeper", "tcbpf-exporter", "tcbpf-sync"] {
        let text =
            std::fs::read_to_string(p.join(format!("lib/systemd/system/{unit}.service"))).unwrap();
        assert!(
            text.contains("ExecStart=/opt/tcbpf/bin/tcbpf ") && !text.contains("/usr/local/bin"),
            "{unit}: {text}"
        );
    }
    let version = Command::new(p.join("bin/tcbpf"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("tcbpf "));

    install(&root, bin_dir, &dest.0, Some("--uninstall"));
    assert_eq!(files_under(&dest.0), Vec::<PathBuf>::new());
}

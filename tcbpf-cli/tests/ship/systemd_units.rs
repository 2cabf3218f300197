//! The systemd units in contrib/systemd are sandboxed: `systemd-analyze
//! security` rates each service's exposure at most 3.0 ("OK"), from the
//! unit files themselves (`--offline=yes`), so the check needs no systemd
//! running. Skipped (with a line saying so) where systemd-analyze is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn units() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/systemd");
    let mut units: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    units
}

/// "→ Overall exposure level for X.service: 1.5 OK 🙂" → 1.5
fn exposure(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.contains("Overall exposure level"))?;
    line.rsplit(": ")
        .next()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn exposure_parses_the_overall_line() {
    let out = "  NAME  DESCRIPTION\n→ Overall exposure level for k.service: 9.6 UNSAFE 😨\n";
    assert_eq!(exposure(out), Some(9.6));
    assert_eq!(exposure("nothing"), None);
}

#[test]
fn every_service_unit_scores_ok_in_systemd_analyze_security() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP every_service_unit_scores_ok_in_systemd_analyze_security: no systemd-analyze"
        );
        return;
    }
    let units = units();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "tcbpf-keeper.service",
        "tcbpf-exporter.service",
        "tcbpf-sync.service",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing: {names:?}"
        );
    }
    for unit in &units {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(unit)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score = exposure(&text).unwrap_or_else(|| {
            panic!(
                "no exposure for {}: {text}{}",
                unit.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(
            score <= 3.0,
            "{} scores {score} (more than 3.0):\n{text}",
            unit.display()
        );
        let unit_text = std::fs::read_to_string(unit).unwrap();
        for needed in [
            "CapabilityBoundingSet=",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "SystemCallFilter=",
        ] {
            assert!(
                unit_text.contains(needed),
                "{} lacks {needed}",
                unit.display()
            );
        }
    }
}

//! Every file the documentation names exists: each relative link of the
//! README and of docs/ leads to a file or directory of the repository, and
//! each repository path they mention (`bpf/…`, `scripts/…`, `docs/…`,
//! the crates' sources, `contrib/…`) names one. A path may stand for
//! several: `*`, `{a,b}` and an upper-case placeholder word
//! (`scripts/bench-NAME.sh`) then have to match at least one file.

use std::fs;
use std::path::{Path, PathBuf};
use tcbpf_testkit::repo;

/// Where a mentioned path starts: the repository's top-level folders.
const ROOTS: &[&str] = &[
    "bpf/",
    "scripts/",
    "docs/",
    "tcbpf/",
    "tcbpf-cli/",
    "tcbpf-exporter/",
    "tcbpf-sync/",
    "tcbpf-dump/",
    "testkit/",
    "contrib/",
    "fuzz/",
    "third_party/",
    ".ci/",
];

/// Files the documentation names that a build makes, never committed.
const GENERATED: &[&str] = &["bpf/vmlinux.h"];

/// The README and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages.insert(0, repo().join("README.md"));
    pages
}

/// `[text](target)` links of a markdown text, without web addresses and
/// in-page anchors; a target's own `#anchor` is cut off.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap();
        let web = ["http://", "https://", "mailto:"]
            .iter()
            .any(|s| target.starts_with(s));
        if !target.is_empty() && !web && !target.contains(char::is_whitespace) {
            links.push(target.to_string());
        }
    }
    links
}

/// Words of a text that are repository paths: those under a top-level
/// folder, and page names alone (`ARCHITECTURE.md`, at the top or in docs/).
fn mentioned_paths(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "`()[]<>\"';|".contains(c))
        .map(|w| w.trim_end_matches(['.', ':', ',']))
        .filter(|w| ROOTS.iter().any(|r| w.starts_with(r)) || is_page_name(w))
        .map(str::to_string)
        .collect()
}

fn is_page_name(word: &str) -> bool {
    word.strip_suffix(".md").is_some_and(|stem| {
        !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    })
}

/// `a{b,c}d` as `abd`, `acd` (one level of braces per pass, repeated).
fn expand_braces(pattern: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (pattern.find('{'), pattern.find('}')) else {
        return vec![pattern.to_string()];
    };
    if close < open {
        return vec![pattern.to_string()];
    }
    pattern[open + 1..close]
        .split(',')
        .flat_map(|alt| {
            expand_braces(&format!(
                "{}{alt}{}",
                &pattern[..open],
                &pattern[close + 1..]
            ))
        })
        .collect()
}

/// Words that stand for a name in a path (`scripts/bench-NAME.sh`).
const PLACEHOLDERS: &[&str] = &["NAME", "TARGET"];

/// Whether one path component matches one pattern component: `*` is any
/// run of characters, and so is a placeholder word.
fn component_matches(pattern: &str, name: &str) -> bool {
    let glob = PLACEHOLDERS
        .iter()
        .fold(pattern.to_string(), |p, word| p.replace(word, "*"));
    wildcard(glob.as_bytes(), name.as_bytes())
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| wildcard(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && wildcard(rest, &s[1..]),
    }
}

/// Whether the pattern (components relative to `dir`) names an existing
/// file or directory.
fn exists(dir: &Path, components: &[&str]) -> bool {
    let Some((first, rest)) = components.split_first() else {
        return true;
    };
    if first.is_empty() {
        return exists(dir, rest);
    }
    let literal = !first.contains('*') && !PLACEHOLDERS.iter().any(|w| first.contains(w));
    if literal {
        let next = dir.join(first);
        return next.exists() && exists(&next, rest);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        component_matches(first, &name) && exists(&e.path(), rest)
    })
}

fn names_something(base: &Path, path: &str) -> bool {
    expand_braces(path)
        .iter()
        .any(|p| exists(base, &p.split('/').collect::<Vec<_>>()))
}

#[test]
fn every_relative_link_of_the_readme_and_docs_leads_to_a_file() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for link in relative_links(&text) {
            if !page.parent().unwrap().join(&link).exists() {
                broken.push(format!("{}: {link}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_repository_path_the_readme_and_docs_name_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for path in mentioned_paths(&text) {
            checked += 1;
            let found = if is_page_name(&path) {
                repo().join(&path).exists() || repo().join("docs").join(&path).exists()
            } else {
                GENERATED.contains(&path.as_str()) || names_something(&repo(), &path)
            };
            if !found {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths found: the scan is broken"
    );
    assert!(missing.is_empty(), "no such file:\n{}", missing.join("\n"));
}

#[test]
fn the_path_patterns_match_what_they_should_and_nothing_else() {
    let repo = repo();
    for yes in [
        "bpf/demo.o",
        "bpf/",
        "scripts/bench-*.sh",
        "scripts/bench-NAME.sh",
        "tcbpf/src/{elf,btf}/mod.rs",
        "docs/json.md",
    ] {
        assert!(names_something(&repo, yes), "{yes}");
    }
    for no in [
        "bpf/verdict.o",
        "scripts/bench-*.py",
        "scripts/NAME.py",
        "tcbpf/src/{nothing,none}/mod.rs",
        "docs/DESIGN.md",
    ] {
        assert!(!names_something(&repo, no), "{no}");
    }
    assert_eq!(
        mentioned_paths("see `bpf/verdict.o`, (scripts/test.sh), DESIGN.md and /sys/fs/bpf/x.o."),
        ["bpf/verdict.o", "scripts/test.sh", "DESIGN.md"]
    );
    assert_eq!(
        relative_links("[a](docs/x.md#y) [b](https://e.org) [c](#z)"),
        ["docs/x.md"]
    );
}

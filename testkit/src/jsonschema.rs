//! The JSON Schemas of docs/json.md and a validator for real `-j` outputs
//! (Python's `jsonschema`, Debian's python3-jsonschema, installed by
//! scripts/setup.sh), shared by every binary's schema test.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The schemas of docs/json.md: `<!-- schema: NAME -->` then a json block.
pub fn json_schemas() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(crate::repo().join("docs/json.md")).unwrap();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("<!-- schema: ") {
        rest = &rest[i + "<!-- schema: ".len()..];
        let end = rest.find(" -->").unwrap();
        let name = rest[..end].to_string();
        let start = rest.find("```json\n").unwrap() + "```json\n".len();
        let stop = start + rest[start..].find("```").unwrap();
        out.push((name, rest[start..stop].to_string()));
        rest = &rest[stop..];
    }
    out
}

/// Validates each (schema name, output) against the schema of that name in
/// docs/json.md; an output is one JSON value or one per line (`map batch`,
/// `map events`, `map watch`), and each must match. Returns the failures,
/// one line each (an output that is not JSON, or empty, is one). `dir`
/// holds the files handed to python3.
pub fn schema_failures(dir: &Path, outputs: &[(&str, String)]) -> Vec<String> {
    let docs = json_schemas();
    let mut cases = Vec::new();
    for (i, (name, text)) in outputs.iter().enumerate() {
        let schema = docs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("docs/json.md has no schema '{name}'"));
        let s = dir.join(format!("schema{i}.json"));
        let o = dir.join(format!("out{i}.json"));
        std::fs::write(&s, &schema.1).unwrap();
        std::fs::write(&o, text).unwrap();
        cases.push(format!("{}\t{}\t{}", name, s.display(), o.display()));
    }
    let script = r#"
import json, sys
import jsonschema
bad = 0
for line in sys.stdin.read().splitlines():
    name, schema, out = line.split("\t")
    schema = json.load(open(schema))
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    text, pos, docs = open(out).read(), 0, []
    d = json.JSONDecoder()
    try:
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            doc, pos = d.raw_decode(text, pos)
            docs.append(doc)
    except ValueError as e:
        bad += 1
        print(f"{name}: not JSON ({e}): {text[:300]!r}")
    if not docs:
        bad += 1
        print(f"{name}: no JSON in {text[:300]!r}")
    for doc in docs:
        for e in v.iter_errors(doc):
            bad += 1
            print(f"{name}: {e.message[:300]} at {list(e.absolute_path)}")
sys.exit(1 if bad else 0)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'jsonschema'"),
        "python3-jsonschema is missing: run scripts/setup.sh"
    );
    assert!(out.status.success() || !out.stdout.is_empty(), "{err}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

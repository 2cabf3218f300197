//! The externs part of `tcbpf obj show`: each extern's kind, name,
//! weak or strong, and what it resolves to on the running kernel (read
//! from its BTF, config and kallsyms files; nothing is loaded).

use serde_json::{json, Value};
use tcbpf::elf::ObjectSpec;
use tcbpf::load::externs::{resolve, Outcome};

/// The externs of `spec` resolved against the running kernel.
pub(crate) fn outcomes(spec: &ObjectSpec) -> Vec<Outcome> {
    resolve(spec)
}

/// `externs: [{name, kind, weak, resolved, value|reason}]`.
pub(crate) fn json(spec: &ObjectSpec, outcomes: &[Outcome]) -> Value {
    spec.externs
        .iter()
        .zip(outcomes)
        .map(|(e, o)| {
            let mut v = json!({
                "name": e.name,
                "kind": e.kind.name(),
                "weak": e.weak,
                "resolved": o.is_ok(),
            });
            match o {
                Ok(r) => v["value"] = json!(r.to_string()),
                Err(u) => v["reason"] = json!(u.reason),
            }
            v
        })
        .collect()
}

/// `externs:` lines for the text listing (empty when there are none).
pub(crate) fn text(spec: &ObjectSpec, outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if spec.externs.is_empty() {
        return out;
    }
    let _ = writeln!(out, "externs:");
    for (e, o) in spec.externs.iter().zip(outcomes) {
        let strength = if e.weak { "weak" } else { "strong" };
        let what = match o {
            Ok(r) => format!("resolved {r}"),
            Err(u) => format!("unresolved: {}", u.reason),
        };
        let _ = writeln!(out, "  {} {} {strength} {what}", e.kind.name(), e.name);
    }
    out
}

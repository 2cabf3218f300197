//! Label and family names unique by construction. Prometheus refuses a
//! sample with a label name twice (the whole scrape fails: `up` = 0) and
//! keeps only one of two identical series, so names are not just joined
//! and sanitised, they are allocated:
//!
//! - **Labels of a map's series**: the origin labels come first (`map`
//!   always; `dev`, `direction`, `prog`, `attach` for a map found on a
//!   device; `copy` for a second map found alike).
//!   Then each top-level key member takes its sanitised name if it is free;
//!   then each nested member or array element (path joined with `_`:
//!   `in.port` → `in_port`) takes that name if free. Last, in key order,
//!   each member whose name was taken gets `key_NAME`, or if that is taken
//!   too `key_NAME_2`, `_3`…, the first free one. So members `dev` and `key_dev` of a map on a device
//!   give `key_dev_2` and `key_dev`; `in.port` beside `in_port` gives
//!   `key_in_port` and `in_port`.
//! - **Field parts of a map's families**: the same passes over the
//!   value's integer fields (after config renames); a taken part becomes
//!   `PART_2`, `PART_3`…: `in.port` beside `in_port` is
//!   `tcbpf_map_<map>_in_port_2`.
//! - **Maps**: every map series carries `map` (its name) and where it was
//!   found, never a kernel id (a reload would start new series); a map is
//!   exported once per scrape, and two maps of one name found alike get
//!   `copy`, so two maps whose name and field join alike (map `a` field
//!   `b_c`, map `a_b` field `c`) or two filters of one object share a
//!   family but never a series.
//! - **Families**: map families are `tcbpf_map_…`, a prefix no family of
//!   the exporter's own has (see [`crate::metrics::Families`]); a map
//!   family merges only with a map family of the same type, otherwise it
//!   takes the first free `NAME_2`, `NAME_3`….
//!
//! Pure: names in, names out.

use crate::metrics::label_name;
use std::collections::HashSet;

/// Names handed out so far.
#[derive(Debug, Default)]
pub struct NameSet {
    taken: HashSet<String>,
}

impl NameSet {
    /// A set holding `taken` already.
    pub fn with<S: AsRef<str>>(taken: impl IntoIterator<Item = S>) -> NameSet {
        NameSet {
            taken: taken.into_iter().map(|s| s.as_ref().to_string()).collect(),
        }
    }

    /// Takes `name` if free.
    pub fn claim(&mut self, name: &str) -> bool {
        self.taken.insert(name.to_string())
    }

    /// `name`, else `NAME_2`, `NAME_3`…: the first free one, taken.
    pub fn claim_numbered(&mut self, name: &str) -> String {
        if self.claim(name) {
            return name.to_string();
        }
        (2..)
            .map(|n| format!("{name}_{n}"))
            .find(|c| self.claim(c))
            .expect("some number is free")
    }
}

/// True for a path of a nested member or an array element (`in.port`,
/// `hist[2]`, `addr.0`), false for a top-level one.
fn is_nested(path: &str) -> bool {
    path.contains(['.', '['])
}

/// A path joined with `_` and sanitised: `in.port` → `in_port`,
/// `hist[2]` → `hist_2`.
pub fn joined(path: &str) -> String {
    label_name(&path.replace('[', "_").replace(']', ""))
}

/// Each path's joined name where free (top-level paths first, then nested
/// ones), then `fallback(name)` for the rest in the order of `paths`.
fn allocate(
    paths: &[&str],
    taken: &mut NameSet,
    fallback: impl Fn(&mut NameSet, &str) -> String,
) -> Vec<String> {
    let mut out: Vec<Option<String>> = vec![None; paths.len()];
    for nested in [false, true] {
        for (i, p) in paths.iter().enumerate() {
            let name = joined(p);
            if is_nested(p) == nested && taken.claim(&name) {
                out[i] = Some(name);
            }
        }
    }
    for (i, p) in paths.iter().enumerate() {
        if out[i].is_none() {
            out[i] = Some(fallback(taken, &joined(p)));
        }
    }
    out.into_iter().map(|n| n.unwrap_or_default()).collect()
}

/// The label names of a map's key parts (by path), beside the `origin`
/// label names: see the module doc.
pub fn key_labels(paths: &[&str], origin: &[&str]) -> Vec<String> {
    let mut taken = NameSet::with(origin);
    allocate(paths, &mut taken, |t, name| {
        t.claim_numbered(&format!("key_{name}"))
    })
}

/// The family name parts of a map's value fields (paths after renames):
/// see the module doc. A scalar value's empty path stays empty.
pub fn field_parts(paths: &[&str]) -> Vec<String> {
    let mut taken = NameSet::default();
    let mut out = allocate(paths, &mut taken, |t, name| t.claim_numbered(name));
    for (o, p) in out.iter_mut().zip(paths) {
        if p.is_empty() {
            o.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_members_named_like_origin_labels_or_each_other_stay_apart() {
        let origin = ["dev", "direction", "prog", "map_id"];
        assert_eq!(
            key_labels(&["dev", "key_dev", "in.port", "in_port"], &origin),
            ["key_dev_2", "key_dev", "key_in_port", "in_port"]
        );
        assert_eq!(key_labels(&["proto", "port"], &origin), ["proto", "port"]);
        assert_eq!(key_labels(&["key"], &["map_id"]), ["key"]);
        assert_eq!(
            key_labels(&["addr.0", "addr_0", "map_id", "key_map_id"], &origin),
            ["key_addr_0", "addr_0", "key_map_id_2", "key_map_id"]
        );
        // Sanitised names can meet too: '__x' → 'k__x'.
        assert_eq!(key_labels(&["__x", "k__x"], &[]), ["k__x", "key_k__x"]);
    }

    #[test]
    fn value_fields_joining_alike_get_numbered_parts() {
        assert_eq!(
            field_parts(&["packets", "in.port", "in_port"]),
            ["packets", "in_port_2", "in_port"]
        );
        assert_eq!(
            field_parts(&["hist[2]", "hist_2", "hist_2_2"]),
            ["hist_2_3", "hist_2", "hist_2_2"]
        );
        assert_eq!(field_parts(&[""]), [""]);
    }

    #[test]
    fn every_allocation_is_unique() {
        let paths = ["a", "a", "a.b", "a_b", "a[0]", "a_0", "key_a", "key_a_2"];
        let labels = key_labels(&paths, &["a", "dev"]);
        let set: HashSet<&String> = labels.iter().collect();
        assert_eq!(set.len(), labels.len(), "{labels:?}");
        assert!(!labels.contains(&"a".to_string()));
        let parts = field_parts(&paths);
        let set: HashSet<&String> = parts.iter().collect();
        assert_eq!(set.len(), parts.len(), "{parts:?}");
    }
}

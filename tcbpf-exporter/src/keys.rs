//! A map key, decoded by the library's typed codec
//! (`tcbpf::value::typed`), split into the parts that become labels:
//! struct members by path (nested ones and array elements joined by `.`:
//! `in.port`, `addr.0`), or one part `key` for a scalar key; byte arrays stay bytes so a decoder can show them as
//! an address or hex. Pure; rendering a part is the caller's job.

use tcbpf::btf::fmt::BtfValue;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// One part of a key, before a decoder renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPart {
    /// An integer.
    Int(i128),
    /// A name: an enumerator, a string.
    Name(String),
    /// Raw bytes (byte arrays, untyped keys).
    Bytes(Vec<u8>),
}

/// A key's parts: struct members by path (nested members joined by `.`),
/// or one part named `key` for a scalar key.
pub fn key_parts(v: &BtfValue) -> Vec<(String, KeyPart)> {
    let mut out = Vec::new();
    match v {
        BtfValue::Struct(_) => walk_parts(v, String::new(), &mut out),
        _ => walk_parts(v, "key".to_string(), &mut out),
    }
    out
}

fn walk_parts(v: &BtfValue, path: String, out: &mut Vec<(String, KeyPart)>) {
    let part = match v {
        BtfValue::Int(n) => KeyPart::Int(*n),
        BtfValue::Uint(n) => KeyPart::Int(*n as i128),
        BtfValue::Bool(b) => KeyPart::Int(*b as i128),
        BtfValue::Enum {
            name: Some(name), ..
        } => KeyPart::Name(name.clone()),
        BtfValue::Enum { name: None, value } => KeyPart::Int(*value),
        BtfValue::Str(s) => KeyPart::Name(s.clone()),
        BtfValue::Float(f) => KeyPart::Name(f.to_string()),
        BtfValue::Pointer(p) => KeyPart::Name(format!("{p:#x}")),
        BtfValue::Bytes(b) => KeyPart::Bytes(b.clone()),
        BtfValue::Array(items) => match byte_array(items) {
            Some(bytes) => KeyPart::Bytes(bytes),
            None => {
                for (i, item) in items.iter().enumerate() {
                    walk_parts(item, join(&path, &i.to_string()), out);
                }
                return;
            }
        },
        BtfValue::Struct(fields) => {
            for (name, f) in fields {
                walk_parts(f, join(&path, name), out);
            }
            return;
        }
    };
    out.push((path, part));
}

/// An array of u8 as its bytes.
fn byte_array(items: &[BtfValue]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|i| match i {
            BtfValue::Uint(n) if *n <= 0xff => Some(*n as u8),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_members_and_array_elements_are_paths() {
        let k = BtfValue::Struct(vec![
            (
                "in".into(),
                BtfValue::Struct(vec![("port".into(), BtfValue::Uint(3))]),
            ),
            ("in_port".into(), BtfValue::Uint(4)),
            (
                "ids".into(),
                BtfValue::Array(vec![BtfValue::Int(-1), BtfValue::Int(2)]),
            ),
        ]);
        let names: Vec<String> = key_parts(&k).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["in.port", "in_port", "ids.0", "ids.1"]);
    }

    #[test]
    fn key_parts_name_struct_members_and_scalar_keys() {
        let k = BtfValue::Struct(vec![
            ("proto".into(), BtfValue::Uint(17)),
            (
                "kind".into(),
                BtfValue::Enum {
                    name: Some("KIND_A".into()),
                    value: 0,
                },
            ),
            (
                "addr".into(),
                BtfValue::Array(vec![
                    BtfValue::Uint(10),
                    BtfValue::Uint(0),
                    BtfValue::Uint(0),
                    BtfValue::Uint(1),
                ]),
            ),
        ]);
        assert_eq!(
            key_parts(&k),
            vec![
                ("proto".to_string(), KeyPart::Int(17)),
                ("kind".to_string(), KeyPart::Name("KIND_A".into())),
                ("addr".to_string(), KeyPart::Bytes(vec![10, 0, 0, 1])),
            ]
        );
        assert_eq!(
            key_parts(&BtfValue::Uint(5)),
            vec![("key".to_string(), KeyPart::Int(5))]
        );
    }
}

//! A map's keys and values as typed by its BTF, shaped for statistics: the
//! integer leaf fields of a value (named by their member path) and the parts
//! of a key that become labels. Decoding itself is the library's
//! (`tcbpf::btf::fmt::decode`); the map's BTF comes from the kernel (map
//! info → BTF id → BTF bytes). No formatting for any output here.

use std::sync::Arc;
use tcbpf::btf::fmt::{self, BtfValue};
use tcbpf::btf::{Btf, TypeId};
use tcbpf::sys::{self, info::MapInfo};

/// The BTF of one map, with its key and value type ids.
pub struct MapTypes {
    btf: Arc<Btf>,
    key: Option<TypeId>,
    value: Option<TypeId>,
}

/// The BTF of the map described by `info`, when it has some.
pub fn types_of(info: &MapInfo) -> Result<Option<MapTypes>, sys::Error> {
    if info.btf_id == 0 || (info.btf_key_type_id == 0 && info.btf_value_type_id == 0) {
        return Ok(None);
    }
    let fd = sys::obj::btf_by_id(info.btf_id)?;
    let data = sys::info::btf_data(&fd)?;
    let Ok(btf) = Btf::parse(&data) else {
        return Ok(None);
    };
    let id = |t: u32| (t != 0).then_some(t);
    Ok(Some(MapTypes {
        btf: Arc::new(btf),
        key: id(info.btf_key_type_id),
        value: id(info.btf_value_type_id),
    }))
}

impl MapTypes {
    fn decode(&self, id: Option<TypeId>, bytes: &[u8]) -> BtfValue {
        id.and_then(|id| fmt::decode(&self.btf, id, bytes).ok())
            .unwrap_or_else(|| scalar(bytes))
    }

    /// A key, typed (untyped keys as [`scalar`]).
    pub fn key(&self, bytes: &[u8]) -> BtfValue {
        self.decode(self.key, bytes)
    }

    /// A value (one CPU's), typed (untyped values as [`scalar`]).
    pub fn value(&self, bytes: &[u8]) -> BtfValue {
        self.decode(self.value, bytes)
    }
}

/// Bytes without a type: an unsigned native-endian integer when 1, 2, 4 or
/// 8 bytes long, else the bytes.
pub fn scalar(bytes: &[u8]) -> BtfValue {
    match bytes.len() {
        1 | 2 | 4 | 8 => {
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            BtfValue::Uint(u64::from_ne_bytes(b) as u128)
        }
        _ => BtfValue::Bytes(bytes.to_vec()),
    }
}

/// The integer leaves of a value with their member paths joined by `_`
/// (`packets`, `hist_3`; empty for a scalar value). Enums count by value,
/// bools as 0/1; strings, floats and pointers are not counters.
pub fn int_fields(v: &BtfValue) -> Vec<(String, i128)> {
    let mut out = Vec::new();
    walk_ints(v, String::new(), &mut out);
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

fn walk_ints(v: &BtfValue, path: String, out: &mut Vec<(String, i128)>) {
    match v {
        BtfValue::Int(n) => out.push((path, *n)),
        BtfValue::Uint(n) => out.push((path, *n as i128)),
        BtfValue::Bool(b) => out.push((path, *b as i128)),
        BtfValue::Enum { value, .. } => out.push((path, *value)),
        BtfValue::Struct(fields) => {
            for (name, f) in fields {
                walk_ints(f, join(&path, name), out);
            }
        }
        BtfValue::Array(items) => {
            for (i, f) in items.iter().enumerate() {
                walk_ints(f, join(&path, &i.to_string()), out);
            }
        }
        _ => {}
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

/// A key's parts: struct members by name (nested members joined by `_`),
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
    fn value_fields_are_integer_leaves_by_path() {
        let v = BtfValue::Struct(vec![
            ("packets".into(), BtfValue::Uint(3)),
            ("name".into(), BtfValue::Str("x".into())),
            (
                "hist".into(),
                BtfValue::Array(vec![BtfValue::Uint(1), BtfValue::Int(-2)]),
            ),
        ]);
        assert_eq!(
            int_fields(&v),
            vec![
                ("packets".to_string(), 3),
                ("hist_0".to_string(), 1),
                ("hist_1".to_string(), -2)
            ]
        );
        assert_eq!(int_fields(&BtfValue::Uint(7)), vec![(String::new(), 7)]);
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
            key_parts(&scalar(&5u32.to_ne_bytes())),
            vec![("key".to_string(), KeyPart::Int(5))]
        );
    }
}

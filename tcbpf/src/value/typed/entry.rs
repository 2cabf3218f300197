//! Whole entries as JSON: `{"key": K, "value": V}`, or for per-CPU maps
//! `{"key": K, "values": [{"cpu": 0, "value": V}, …]}` (bpftool's shape),
//! read also with bpftool's `"formatted"` typed entry beside hex sides;
//! reading a `-j` dump array or one object per line; summing per-CPU
//! values and listing integer leaves with their paths. Pure.

use serde_json::Value;

use super::{MapTypes, Style, TypedError};
use crate::btf::fmt::BtfValue;

impl MapTypes {
    /// One entry as JSON text (raw key bytes, whole value buffer).
    pub fn entry_to_json(&self, key: &[u8], value: &[u8]) -> Result<String, TypedError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"{\"key\":");
        self.write_key(key, Style::Json, &mut out)?;
        if let Some(cpus) = self.cpus() {
            let stride = self.cpu_stride();
            if value.len() < stride * cpus {
                return Err(TypedError::new(
                    "value",
                    format!("needs {} bytes, got {}", stride * cpus, value.len()),
                ));
            }
            out.extend_from_slice(b",\"values\":[");
            for cpu in 0..cpus {
                if cpu > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"cpu\":");
                out.extend_from_slice(cpu.to_string().as_bytes());
                out.extend_from_slice(b",\"value\":");
                self.write_value(&value[cpu * stride..], Style::Json, &mut out)?;
                out.push(b'}');
            }
            out.push(b']');
        } else {
            out.extend_from_slice(b",\"value\":");
            self.write_value(value, Style::Json, &mut out)?;
        }
        out.push(b'}');
        String::from_utf8(out).map_err(|_| TypedError::new("", "JSON that is not UTF-8"))
    }

    /// One entry from JSON: the key bytes and the whole value buffer.
    /// Takes `value` (for per-CPU maps: every CPU the same) or `values`.
    pub fn entry_from_json(
        &self,
        json: &Value,
        partial: bool,
    ) -> Result<(Vec<u8>, Vec<u8>), TypedError> {
        let Value::Object(obj) = json else {
            return Err(TypedError::new(
                "",
                format!(
                    "expected an object {{\"key\": …, \"value\": …}}, got {}",
                    super::encode::kind_of(json)
                ),
            ));
        };
        if let Some(formatted) = obj.get("formatted") {
            return self.entry_from_bpftool(obj, formatted, partial);
        }
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "key" | "value" | "values"))
        {
            return Err(TypedError::new(
                "",
                format!("unknown field '{k}' (expected key and value)"),
            ));
        }
        let key = obj
            .get("key")
            .ok_or_else(|| TypedError::new("", "missing 'key'"))?;
        let key = self.encode_key(key)?;
        let value = match (obj.get("value"), obj.get("values")) {
            (Some(v), None) => self.encode_values(v, partial)?,
            (None, Some(v)) if self.cpus().is_some() => self.encode_values(v, partial)?,
            (None, Some(_)) => {
                return Err(TypedError::new(
                    "values",
                    "only per-CPU maps take 'values'; use 'value'",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(TypedError::new("", "give 'value' or 'values', not both"))
            }
            (None, None) => return Err(TypedError::new("", "missing 'value'")),
        };
        Ok((key, value))
    }

    /// An entry in bpftool's shape (`-j map dump` of a map with BTF): the
    /// typed entry as `formatted`, its bytes as hex `key` and `value` (or
    /// `values`). The entry is `formatted`'s; the hex sides may be left
    /// out, and when given must be the same bytes (with `partial`, they
    /// are not compared), so an edit of one and not the other is refused
    /// rather than lost.
    fn entry_from_bpftool(
        &self,
        obj: &serde_json::Map<String, Value>,
        formatted: &Value,
        partial: bool,
    ) -> Result<(Vec<u8>, Vec<u8>), TypedError> {
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "key" | "value" | "values" | "formatted"))
        {
            return Err(TypedError::new(
                "",
                format!("unknown field '{k}' (expected key, value and formatted)"),
            ));
        }
        if formatted.get("formatted").is_some() {
            return Err(TypedError::new("formatted", "holds 'formatted' again"));
        }
        let (key, value) = self
            .entry_from_json(formatted, partial)
            .map_err(|e| e.within("formatted"))?;
        if partial {
            return Ok((key, value));
        }
        let hex = MapTypes::untyped(self.key_size, self.value_size, self.cpus);
        let differ = |side: &str| {
            TypedError::new(
                side,
                format!("its bytes differ from formatted.{side}: change both, or leave out the hex sides"),
            )
        };
        if let Some(k) = obj.get("key") {
            if hex.encode_key(k)? != key {
                return Err(differ("key"));
            }
        }
        let raw = match (obj.get("value"), obj.get("values")) {
            (Some(v), None) => Some(("value", v)),
            (None, Some(v)) => Some(("values", v)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(TypedError::new("", "give 'value' or 'values', not both"))
            }
        };
        if let Some((side, v)) = raw {
            if hex.encode_values(v, false)? != value {
                return Err(differ(side));
            }
        }
        Ok((key, value))
    }
}

impl MapTypes {
    /// One line of NDJSON (`{"key": …, "value": …}`) appended to `key`
    /// and `value` as bytes (the whole value buffer), as
    /// [`MapTypes::entry_from_json`] would give them; plain lines skip
    /// `serde_json::Value` altogether. On error the buffers are unchanged.
    pub fn entry_from_json_line(
        &self,
        line: &[u8],
        partial: bool,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<(), TypedError> {
        if !partial && self.fast_entry(line, key, value).is_some() {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| TypedError::new("", format!("bad JSON: {e}")))?;
        let (k, val) = self.entry_from_json(&v, partial)?;
        key.extend_from_slice(&k);
        value.extend_from_slice(&val);
        Ok(())
    }
}

/// Reads entries from text holding either one JSON array (a `-j` dump)
/// or one JSON object per line (blank lines skipped). Errors name the
/// line (`line 3: …`).
pub fn parse_entries(text: &str) -> Result<Vec<Value>, TypedError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| TypedError::new(format!("line {}", e.line()), format!("bad JSON: {e}")))?;
        return match v {
            Value::Array(items) => Ok(items),
            _ => Err(TypedError::new("", "expected a JSON array")),
        };
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v = serde_json::from_str(line)
            .map_err(|e| TypedError::new(format!("line {}", n + 1), format!("bad JSON: {e}")))?;
        out.push(v);
    }
    Ok(out)
}

/// The integer leaves of a value with their paths (`packets`,
/// `inner.a`, `arr[2]`; `""` for a scalar value): integers, booleans
/// (0/1) and enums (their number). Unsigned values beyond `i128::MAX`
/// saturate.
pub fn int_fields(v: &BtfValue) -> Vec<(String, i128)> {
    let mut out = Vec::new();
    walk_ints(v, &mut String::new(), &mut out);
    out
}

fn walk_ints(v: &BtfValue, path: &mut String, out: &mut Vec<(String, i128)>) {
    match v {
        BtfValue::Int(i) => out.push((path.clone(), *i)),
        BtfValue::Uint(u) => out.push((path.clone(), i128::try_from(*u).unwrap_or(i128::MAX))),
        BtfValue::Bool(b) => out.push((path.clone(), *b as i128)),
        BtfValue::Enum { value, .. } => out.push((path.clone(), *value)),
        BtfValue::Array(items) => {
            for (k, item) in items.iter().enumerate() {
                let saved = path.len();
                path.push_str(&format!("[{k}]"));
                walk_ints(item, path, out);
                path.truncate(saved);
            }
        }
        BtfValue::Struct(fields) => {
            for (name, item) in fields {
                let saved = path.len();
                if !path.is_empty() && !name.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                walk_ints(item, path, out);
                path.truncate(saved);
            }
        }
        BtfValue::Float(_) | BtfValue::Pointer(_) | BtfValue::Str(_) | BtfValue::Bytes(_) => {}
    }
}

/// The sum of per-CPU values: integer leaves added (wrapping), floats
/// added, everything else (enums, strings, booleans) taken from the
/// first CPU. `None` for no values.
pub fn sum_values(values: &[BtfValue]) -> Option<BtfValue> {
    let (first, rest) = values.split_first()?;
    let mut acc = first.clone();
    for v in rest {
        add_into(&mut acc, v);
    }
    Some(acc)
}

fn add_into(acc: &mut BtfValue, v: &BtfValue) {
    match (acc, v) {
        (BtfValue::Int(a), BtfValue::Int(b)) => *a = a.wrapping_add(*b),
        (BtfValue::Uint(a), BtfValue::Uint(b)) => *a = a.wrapping_add(*b),
        (BtfValue::Float(a), BtfValue::Float(b)) => *a += *b,
        (BtfValue::Array(a), BtfValue::Array(b)) => {
            for (x, y) in a.iter_mut().zip(b) {
                add_into(x, y);
            }
        }
        (BtfValue::Struct(a), BtfValue::Struct(b)) => {
            for ((_, x), (_, y)) in a.iter_mut().zip(b) {
                add_into(x, y);
            }
        }
        _ => {}
    }
}

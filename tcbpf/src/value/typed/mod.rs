//! A map's own types: its key and value BTF ([`MapTypes`]), decoding raw
//! keys and values into [`BtfValue`]s and encoding JSON (the shape `-j`
//! prints) back into bytes, per-CPU values included; the JSON entry
//! format (`{"key": …, "value": …}`) shared by `map load json`, the
//! exporter and sync; integer leaves of a value for metrics.
//!
//! Pure: no syscalls here (`tcbpf::maps::types_of` reads a map's BTF from
//! the kernel). Never panics on BTF or bytes: every bad type, size or
//! member becomes a [`TypedError`] naming its path.

mod encode;
mod entry;
mod fast;
mod print;

pub use entry::{int_fields, parse_entries, sum_values};
pub use print::{write_text, Printer, Style};

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::btf::fmt::{decode, BtfValue};
use crate::btf::{Btf, Kind, TypeId, MAX_RESOLVE_DEPTH};

/// What was wrong with a key, value or entry, and where: `path` is the
/// member path (`value.inner.a`, `key`, `line 3: value.packets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedError {
    /// The member path (`key`, `value.packets`, `value[2].name`).
    pub path: String,
    /// What was wrong.
    pub message: String,
}

impl TypedError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        TypedError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error under a prefix (`line 3`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}: {}", self.path)
        };
        self
    }
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for TypedError {}

impl TypedError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

/// How one side (key or value) is typed.
#[derive(Debug, Clone)]
enum Side {
    /// By a BTF type that decodes and encodes.
    Btf(TypeId),
    /// By a BTF type that cannot be printed (a pointer, a function…): the
    /// error to give.
    Unprintable(TypedError),
    /// No BTF type: an unsigned integer of 1, 2, 4 or 8 bytes, else bytes.
    Untyped,
}

/// The BTF of one map: the type set, the key and value type ids (either
/// may be absent), the sizes, and the CPU count of per-CPU maps.
#[derive(Debug, Clone)]
pub struct MapTypes {
    btf: Arc<Btf>,
    key_id: Option<TypeId>,
    value_id: Option<TypeId>,
    key: Side,
    value: Side,
    key_size: usize,
    value_size: usize,
    cpus: Option<usize>,
    key_printer: Option<Arc<Printer>>,
    value_printer: Option<Arc<Printer>>,
    key_enc: Option<Arc<fast::Encoder>>,
    value_enc: Option<Arc<fast::Encoder>>,
}

impl MapTypes {
    /// The types of a map whose key and value are `key_id`/`value_id` of
    /// `btf` (0 or `None`: no type) and `key_size`/`value_size` bytes;
    /// `cpus` is `Some(possible CPUs)` for per-CPU maps. Fails when a type
    /// id is not in `btf` or its size is not the map's.
    pub fn new(
        btf: Arc<Btf>,
        key_id: Option<TypeId>,
        value_id: Option<TypeId>,
        key_size: usize,
        value_size: usize,
        cpus: Option<usize>,
    ) -> Result<MapTypes, TypedError> {
        let key_id = key_id.filter(|&id| id != 0);
        let value_id = value_id.filter(|&id| id != 0);
        let key = side(&btf, key_id, key_size, "key")?;
        let value = side(&btf, value_id, value_size, "value")?;
        let printer = |s: &Side| match s {
            Side::Btf(id) => Printer::new(&btf, *id).map(Arc::new),
            _ => None,
        };
        let (key_printer, value_printer) = (printer(&key), printer(&value));
        let encoder = |s: &Side, size: usize| match s {
            Side::Btf(id) => fast::Encoder::new(&btf, *id).map(Arc::new),
            Side::Untyped => fast::Encoder::untyped(size).map(Arc::new),
            Side::Unprintable(_) => None,
        };
        let (key_enc, value_enc) = (encoder(&key, key_size), encoder(&value, value_size));
        Ok(MapTypes {
            btf,
            key_id,
            value_id,
            key,
            value,
            key_size,
            value_size,
            cpus: cpus.map(|c| c.max(1)),
            key_printer,
            value_printer,
            key_enc,
            value_enc,
        })
    }

    /// Types for a map without BTF: keys and values of 1, 2, 4 or 8 bytes
    /// are unsigned integers, others byte arrays (`["0x01", …]`).
    pub fn untyped(key_size: usize, value_size: usize, cpus: Option<usize>) -> MapTypes {
        MapTypes {
            btf: Arc::new(Btf::new()),
            key_id: None,
            value_id: None,
            key: Side::Untyped,
            value: Side::Untyped,
            key_size,
            value_size,
            cpus: cpus.map(|c| c.max(1)),
            key_printer: None,
            value_printer: None,
            key_enc: fast::Encoder::untyped(key_size).map(Arc::new),
            value_enc: fast::Encoder::untyped(value_size).map(Arc::new),
        }
    }

    /// The type set.
    pub fn btf(&self) -> &Arc<Btf> {
        &self.btf
    }
    /// The key's BTF type id, when it has one.
    pub fn key_type(&self) -> Option<TypeId> {
        self.key_id
    }
    /// The value's BTF type id, when it has one.
    pub fn value_type(&self) -> Option<TypeId> {
        self.value_id
    }
    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size
    }
    /// Size of one value in bytes (one CPU's, for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }
    /// `Some(possible CPUs)` for per-CPU maps.
    pub fn cpus(&self) -> Option<usize> {
        self.cpus
    }
    /// Bytes between two CPUs' values in a per-CPU buffer (the value size
    /// rounded up to 8); the value size for other maps.
    pub fn cpu_stride(&self) -> usize {
        match self.cpus {
            Some(_) => self.value_size.div_ceil(8) * 8,
            None => self.value_size,
        }
    }
    /// Bytes of the whole value buffer as the syscalls take it.
    pub fn value_buf_size(&self) -> usize {
        self.cpu_stride() * self.cpus.unwrap_or(1)
    }
    /// True when the key has a printable BTF type.
    pub fn key_is_typed(&self) -> bool {
        matches!(self.key, Side::Btf(_))
    }
    /// True when the value has a printable BTF type.
    pub fn value_is_typed(&self) -> bool {
        matches!(self.value, Side::Btf(_))
    }
    /// True when the key is a plain integer (typed or not): `key 17` works.
    pub fn key_is_scalar(&self) -> bool {
        match &self.key {
            Side::Btf(id) => self
                .btf
                .skip_mods_and_typedefs(*id)
                .and_then(|id| self.btf.ty(id))
                .is_ok_and(|t| matches!(t.kind, Kind::Int(_) | Kind::Enum(_) | Kind::Enum64(_))),
            Side::Untyped => matches!(self.key_size, 1 | 2 | 4 | 8),
            Side::Unprintable(_) => false,
        }
    }

    /// Appends a key as `style` (JSON or text), without building a
    /// `BtfValue` when the type compiled.
    pub fn write_key(
        &self,
        bytes: &[u8],
        style: Style,
        out: &mut Vec<u8>,
    ) -> Result<(), TypedError> {
        if let (Some(p), Some(b)) = (&self.key_printer, bytes.get(..self.key_size)) {
            if p.write(b, style, out) {
                return Ok(());
            }
        }
        write_style(&self.decode_key(bytes)?, style, out);
        Ok(())
    }

    /// Appends one value (one CPU's) as `style`.
    pub fn write_value(
        &self,
        bytes: &[u8],
        style: Style,
        out: &mut Vec<u8>,
    ) -> Result<(), TypedError> {
        if let (Some(p), Some(b)) = (&self.value_printer, bytes.get(..self.value_size)) {
            if p.write(b, style, out) {
                return Ok(());
            }
        }
        write_style(&self.decode_value(bytes)?, style, out);
        Ok(())
    }

    /// Decodes a key.
    pub fn decode_key(&self, bytes: &[u8]) -> Result<BtfValue, TypedError> {
        self.decode_side(&self.key, bytes, self.key_size, "key")
    }

    /// Decodes one value (one CPU's value for per-CPU maps).
    pub fn decode_value(&self, bytes: &[u8]) -> Result<BtfValue, TypedError> {
        self.decode_side(&self.value, bytes, self.value_size, "value")
    }

    /// Decodes a whole value buffer: one value per CPU for per-CPU maps
    /// (`value_buf_size` bytes), else one.
    pub fn decode_values(&self, bytes: &[u8]) -> Result<Vec<BtfValue>, TypedError> {
        let n = self.cpus.unwrap_or(1);
        let stride = self.cpu_stride();
        if bytes.len() < stride * n {
            return Err(TypedError::new(
                "value",
                format!("needs {} bytes, got {}", stride * n, bytes.len()),
            ));
        }
        (0..n)
            .map(|c| self.decode_value(&bytes[c * stride..c * stride + self.value_size]))
            .collect()
    }

    /// Encodes a key from JSON.
    pub fn encode_key(&self, json: &Value) -> Result<Vec<u8>, TypedError> {
        self.encode_side(&self.key, json, self.key_size, "key", false)
    }

    /// Encodes one value from JSON; `partial` zero-fills missing members.
    pub fn encode_value(&self, json: &Value, partial: bool) -> Result<Vec<u8>, TypedError> {
        self.encode_side(&self.value, json, self.value_size, "value", partial)
    }

    /// Encodes a whole value buffer (`value_buf_size` bytes): for per-CPU
    /// maps, `values` is either one JSON value for every CPU or the
    /// `[{"cpu": 0, "value": …}, …]` array `-j` prints (every CPU named
    /// once, unless `partial`).
    pub fn encode_values(&self, json: &Value, partial: bool) -> Result<Vec<u8>, TypedError> {
        let Some(n) = self.cpus else {
            return self.encode_value(json, partial);
        };
        let stride = self.cpu_stride();
        let mut out = vec![0u8; stride * n];
        match json {
            Value::Array(items) if is_per_cpu_list(items) => {
                let mut seen = vec![false; n];
                for (k, item) in items.iter().enumerate() {
                    let path = format!("values[{k}]");
                    let cpu = item
                        .get("cpu")
                        .and_then(Value::as_u64)
                        .filter(|&c| (c as usize) < n)
                        .ok_or_else(|| {
                            TypedError::new(&path, format!("'cpu' must be a number below {n}"))
                        })? as usize;
                    if std::mem::replace(&mut seen[cpu], true) {
                        return Err(TypedError::new(path, format!("cpu {cpu} given twice")));
                    }
                    let v = item
                        .get("value")
                        .ok_or_else(|| TypedError::new(&path, "missing 'value'"))?;
                    let bytes = self
                        .encode_value(v, partial)
                        .map_err(|e| e.within(&format!("cpu {cpu}")))?;
                    out[cpu * stride..cpu * stride + self.value_size].copy_from_slice(&bytes);
                }
                if !partial {
                    if let Some(c) = seen.iter().position(|s| !s) {
                        return Err(TypedError::new(
                            "values",
                            format!("cpu {c} is missing ({n} possible CPUs; use 'partial' to zero-fill)"),
                        ));
                    }
                }
            }
            other => {
                let bytes = self.encode_value(other, partial)?;
                for c in 0..n {
                    out[c * stride..c * stride + self.value_size].copy_from_slice(&bytes);
                }
            }
        }
        Ok(out)
    }

    fn decode_side(
        &self,
        side: &Side,
        bytes: &[u8],
        size: usize,
        what: &str,
    ) -> Result<BtfValue, TypedError> {
        if bytes.len() < size {
            return Err(TypedError::new(
                what,
                format!("needs {size} bytes, got {}", bytes.len()),
            ));
        }
        let bytes = &bytes[..size];
        match side {
            Side::Btf(id) => {
                decode(&self.btf, *id, bytes).map_err(|e| TypedError::new(what, e.to_string()))
            }
            Side::Unprintable(e) => Err(e.clone()),
            Side::Untyped => Ok(match size {
                1 | 2 | 4 | 8 => BtfValue::Uint(
                    bytes
                        .iter()
                        .rev()
                        .fold(0u128, |acc, &b| acc << 8 | b as u128),
                ),
                _ => BtfValue::Bytes(bytes.to_vec()),
            }),
        }
    }

    fn encode_side(
        &self,
        side: &Side,
        json: &Value,
        size: usize,
        what: &str,
        partial: bool,
    ) -> Result<Vec<u8>, TypedError> {
        let mut out = vec![0u8; size];
        match side {
            Side::Btf(id) => encode::encode(&self.btf, *id, json, &mut out, what, partial)?,
            Side::Unprintable(e) => return Err(e.clone()),
            Side::Untyped => encode_untyped(json, &mut out, what)?,
        }
        Ok(out)
    }
}

/// A decoded value as `style`.
pub fn write_style(v: &BtfValue, style: Style, out: &mut Vec<u8>) {
    match style {
        Style::Json => out.extend_from_slice(v.to_json().as_bytes()),
        Style::Text => write_text(v, out),
    }
}

fn is_per_cpu_list(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.as_object().is_some_and(|o| o.contains_key("cpu")))
}

/// Checks that `id` has `size` bytes and prints; `Side::Untyped` for none.
fn side(btf: &Btf, id: Option<TypeId>, size: usize, what: &str) -> Result<Side, TypedError> {
    let Some(id) = id else {
        return Ok(Side::Untyped);
    };
    let got = btf
        .resolve_size(id)
        .map_err(|e| TypedError::new(what, e.to_string()))?;
    if got as usize != size {
        return Err(TypedError::new(
            what,
            format!(
                "BTF type {} has {got} bytes, the map's {what} {size}",
                btf.describe(id)
            ),
        ));
    }
    Ok(match unprintable(btf, id, 0) {
        Some(why) => Side::Unprintable(TypedError::new(
            what,
            format!("{why}; use 'raw' for its bytes"),
        )),
        None => Side::Btf(id),
    })
}

/// Why type `id` has no value form: its first part that has none
/// (pointer, function, forward declaration, void), or a struct whose
/// member names, as C gives them, repeat one.
fn unprintable(btf: &Btf, id: TypeId, depth: usize) -> Option<String> {
    let cannot = |what: String| Some(format!("{what} cannot be printed or parsed"));
    if depth > MAX_RESOLVE_DEPTH {
        return cannot("a type nested too deep".into());
    }
    let id = match btf.skip_mods_and_typedefs(id) {
        Ok(id) => id,
        Err(e) => return cannot(e.to_string()),
    };
    let t = match btf.ty(id) {
        Ok(t) => t,
        Err(e) => return cannot(e.to_string()),
    };
    match &t.kind {
        Kind::Int(_) | Kind::Enum(_) | Kind::Enum64(_) | Kind::Float(_) => None,
        Kind::Array(a) => unprintable(btf, a.elem, depth + 1),
        Kind::Struct(_) | Kind::Union(_) => match btf.flat_members(id) {
            Ok(members) => members
                .iter()
                .find_map(|m| unprintable(btf, m.ty, depth + 1)),
            Err(e) => Some(e.to_string()),
        },
        Kind::Datasec(d) => d
            .vars
            .iter()
            .find_map(|v| unprintable(btf, v.ty, depth + 1)),
        Kind::Var(v) => unprintable(btf, v.ty, depth + 1),
        Kind::Ptr(_) => cannot(format!("a pointer ({})", btf.describe(id))),
        _ => cannot(btf.describe(id)),
    }
}

/// A side without BTF: an integer (1, 2, 4, 8 bytes) or a byte array
/// (`["0x01", 2, …]`, every byte).
fn encode_untyped(json: &Value, out: &mut [u8], what: &str) -> Result<(), TypedError> {
    let size = out.len();
    match json {
        Value::Array(items) => {
            if items.len() != size {
                return Err(TypedError::new(
                    what,
                    format!("expected {size} bytes, got {}", items.len()),
                ));
            }
            for (k, (b, item)) in out.iter_mut().zip(items).enumerate() {
                *b = byte(item).ok_or_else(|| {
                    TypedError::new(format!("{what}[{k}]"), format!("{item} is not a byte"))
                })?;
            }
            Ok(())
        }
        Value::Number(n) if matches!(size, 1 | 2 | 4 | 8) => {
            let v = n
                .as_u64()
                .or_else(|| n.as_i64().map(|i| i as u64 & mask(size)))
                .filter(|v| v & !mask(size) == 0)
                .ok_or_else(|| {
                    TypedError::new(what, format!("{n} is out of range for u{}", size * 8))
                })?;
            out.copy_from_slice(&v.to_le_bytes()[..size]);
            Ok(())
        }
        other => Err(TypedError::new(
            what,
            format!(
                "expected {} of {size} bytes, got {}",
                if matches!(size, 1 | 2 | 4 | 8) {
                    "an integer or an array"
                } else {
                    "an array"
                },
                encode::kind_of(other)
            ),
        )),
    }
}

fn mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

fn byte(v: &Value) -> Option<u8> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|b| u8::try_from(b).ok()),
        Value::String(s) => u8::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok(),
        _ => None,
    }
}

//! The map's own types in the CLI: reading a map's BTF when it has some
//! (a note under `-v` when the kernel will not give it), and writing keys
//! and values by it, C-like text (`{packets: 5, bytes: 6}`) or JSON
//! in bpftool's shape (`{"packets":5,"bytes":6}`). Explicit TYPES and
//! `raw` win over BTF; the caller decides which sides use it.
//!
//! No map access here beyond reading the BTF; no writes to stdout.

use super::super::error::CliError;
use super::super::output::Global;
use super::OpenMap;
use tcbpf::btf::fmt::BtfValue;
use tcbpf::value::typed::{sum_values, write_style, MapTypes, Style};

/// The map's BTF, or `None` when it has none or the kernel will not give
/// it (then a note on stderr when `verbose`, and the caller goes untyped).
/// Read once per opened map.
pub fn types(verbose: bool, m: &OpenMap) -> Option<&MapTypes> {
    m.btf
        .get_or_init(|| match tcbpf::maps::types_for(&m.info) {
            Ok(t) => t,
            Err(e) => {
                if verbose {
                    eline!(
                        "tcbpf: note: {}: cannot read the map's BTF ({e}); printing untyped",
                        m.label
                    );
                }
                None
            }
        })
        .as_ref()
}

/// Which sides of an entry print by the map's BTF.
pub struct TypedSides {
    /// The map's types.
    pub types: MapTypes,
    /// Keys print by BTF.
    pub key: bool,
    /// Values print by BTF.
    pub value: bool,
}

impl TypedSides {
    /// The sides of `m` that print by BTF: those without explicit types,
    /// unless `raw`. `None` when none does or the map has no BTF. A side
    /// whose type cannot be printed (a pointer, a function) is an error
    /// that points at `raw`.
    pub fn for_map(
        g: &Global,
        m: &OpenMap,
        key: bool,
        value: bool,
        raw: bool,
    ) -> Result<Option<TypedSides>, CliError> {
        if raw || !(key || value) {
            return Ok(None);
        }
        let Some(types) = types(g.verbose, m).cloned() else {
            return Ok(None);
        };
        let probe = |r: Result<BtfValue, tcbpf::value::typed::TypedError>| {
            r.map(|_| ())
                .map_err(|e| CliError::usage(format!("{}: {e}", m.label)))
        };
        if key {
            probe(types.decode_key(&vec![0; types.key_size()]))?;
        }
        if value {
            probe(types.decode_value(&vec![0; types.value_size()]))?;
        }
        Ok(Some(TypedSides { types, key, value }))
    }

    /// Writes a key by BTF; false when it does not decode (the caller
    /// writes hex instead).
    pub fn write_key(&self, bytes: &[u8], json: bool, out: &mut Vec<u8>) -> bool {
        self.types.write_key(bytes, style(json), out).is_ok()
    }

    /// Writes one value (one CPU's) by BTF; false when it does not decode.
    pub fn write_value(&self, bytes: &[u8], json: bool, out: &mut Vec<u8>) -> bool {
        self.types.write_value(bytes, style(json), out).is_ok()
    }

    /// Writes the sum over CPUs of a per-CPU value buffer (integer
    /// members added, others from CPU 0); false when it does not decode.
    pub fn write_sum(&self, buf: &[u8], json: bool, out: &mut Vec<u8>) -> bool {
        match self.types.decode_values(buf).map(|v| sum_values(&v)) {
            Ok(Some(v)) => {
                write_value(&v, json, out);
                true
            }
            _ => false,
        }
    }
}

fn style(json: bool) -> Style {
    if json {
        Style::Json
    } else {
        Style::Text
    }
}

fn write_value(v: &BtfValue, json: bool, out: &mut Vec<u8>) {
    write_style(v, style(json), out);
}

//! `map add MAP key DATA [ field NAME | at OFFSET TYPE ] value N`: an
//! atomic add in the kernel (`tcbpf::atomic`), the shell's safe counter.
//! The field is a BTF member of the value (`field NAME`, as C names it:
//! a member of an anonymous struct is the value's own), a byte offset
//! with a width (`at OFFSET u32|u64|i32|i64`), or the whole value when it is
//! 4 or 8 bytes. Prints nothing, or with -j `{"key", "old", "new"}`.

use super::super::error::{CliError, Exit};
use super::super::output::Global;
use super::super::words::Words;
use super::elem::{key_data, key_json, key_not_found};
use super::OpenMap;
use serde_json::json;
use std::os::fd::AsFd;
use tcbpf::abi::MapType;
use tcbpf::atomic::{AddError, AtomicAdd, Width};

/// Where in the value the add goes.
struct Field {
    offset: u32,
    width: Width,
    signed: bool,
    name: String,
}

/// Runs `tcbpf map add …`.
pub fn run(g: &Global, w: &mut Words) -> Result<(), CliError> {
    let m = OpenMap::parse(w)?;
    check_type(&m)?;
    let stops = ["field", "at", "value"];
    if !w.eat("key") {
        return Err(CliError::usage("add: expected 'key DATA'"));
    }
    let (key, key_layout) = key_data(w, &m, &stops)?;
    let field = if w.eat("field") {
        let name = w.expect("a field NAME after 'field'")?;
        btf_field(&m, &name)?
    } else if w.eat("at") {
        let offset = w.number("a byte OFFSET after 'at'")?;
        let ty = w.expect("u32, u64, i32 or i64 after 'at OFFSET'")?;
        let (width, signed) = match ty.as_str() {
            "u32" => (Width::U32, false),
            "i32" => (Width::U32, true),
            "u64" => (Width::U64, false),
            "i64" => (Width::U64, true),
            _ => {
                return Err(CliError::usage(format!(
                    "add: 'at OFFSET' takes u32, u64, i32 or i64, not '{}'",
                    tcbpf::value::shown(ty.as_bytes())
                )))
            }
        };
        Field {
            offset,
            width,
            signed,
            name: format!("offset {offset}"),
        }
    } else {
        whole_value(&m)?
    };
    if !w.eat("value") {
        return Err(CliError::usage(
            "add: expected 'value N' (the number to add)",
        ));
    }
    let text = w.expect("a number after 'value'")?;
    let n = parse_addend(&text)?;
    w.finish()?;
    check_fits(&field, n, &text)?;
    let adder = AtomicAdd::new(
        m.fd.as_fd(),
        m.info.key_size,
        m.info.value_size,
        field.offset,
        field.width,
    )
    .map_err(|e| load_error(&m, &field, e))?;
    let old = adder
        .add(&key, n)
        .map_err(|e| CliError::from(m.err(e)))?
        .ok_or_else(|| {
            let mut e = key_not_found(&m, &key_layout, &key);
            e.message
                .push_str(" (add changes existing elements: create it with 'map update')");
            e
        })?;
    if g.json {
        let new = match field.width {
            Width::U32 => u64::from((old as u32).wrapping_add(n as u32)),
            Width::U64 => old.wrapping_add(n),
        };
        let (old, new) = if field.signed {
            let s = |v: u64| match field.width {
                Width::U32 => json!(v as u32 as i32),
                Width::U64 => json!(v as i64),
            };
            (s(old), s(new))
        } else {
            (json!(old), json!(new))
        };
        g.print_json(&json!({
            "key": key_json(g, &m, &key_layout, &key),
            "field": field.name,
            "old": old,
            "new": new,
        }))?;
    }
    Ok(())
}

fn check_type(m: &OpenMap) -> Result<(), CliError> {
    let ok = matches!(
        m.kind,
        Some(
            MapType::Hash
                | MapType::Array
                | MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruHash
                | MapType::LruPercpuHash
        )
    );
    if ok {
        Ok(())
    } else {
        // LPM tries included: a syscall program is sleepable and the
        // kernel keeps those away from LPM tries, so the load always fails.
        Err(CliError::usage(format!(
            "{}: add works on hash, array and LRU maps (per-CPU too), not {}",
            m.label,
            m.info.type_name()
        )))
    }
}

/// The number to add: decimal or 0x hex, negative to subtract.
fn parse_addend(text: &str) -> Result<u64, CliError> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => digits.parse::<u64>().ok(),
    };
    match (v, neg) {
        (Some(v), false) => Ok(v),
        (Some(v), true) if v <= 1 << 63 => Ok(v.wrapping_neg()),
        _ => Err(CliError::usage(format!(
            "add: '{}' is not a number (decimal or 0x hex, '-' to subtract)",
            tcbpf::value::shown(text.as_bytes())
        ))),
    }
}

/// Refuses an amount the field cannot hold: a 32-bit field adds the low 32
/// bits, so `4294967296` would add 0. It takes -2^31 to 2^32-1.
fn check_fits(field: &Field, n: u64, text: &str) -> Result<(), CliError> {
    let fits = match field.width {
        Width::U64 => true,
        Width::U32 => n <= u64::from(u32::MAX) || (i64::from(i32::MIN)..0).contains(&(n as i64)),
    };
    if fits {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "add: {} is out of range for the 32-bit field {} (-2147483648 to 4294967295)",
            tcbpf::value::shown(text.as_bytes()),
            field.name
        )))
    }
}

/// The whole value as the field, when it is 4 or 8 bytes.
fn whole_value(m: &OpenMap) -> Result<Field, CliError> {
    let width = match m.info.value_size {
        4 => Width::U32,
        8 => Width::U64,
        n => {
            return Err(CliError::usage(format!(
                "{}: the value is {n} bytes; name a 4- or 8-byte field with 'field NAME' or 'at OFFSET u32|u64'",
                m.label
            )))
        }
    };
    Ok(Field {
        offset: 0,
        width,
        signed: false,
        name: "value".into(),
    })
}

/// The member NAME of the map's BTF value type.
fn btf_field(m: &OpenMap, name: &str) -> Result<Field, CliError> {
    let no_btf = || {
        CliError::usage(format!(
            "{}: the map has no BTF value type to find field '{name}' in; use 'at OFFSET u32|u64'",
            m.label
        ))
    };
    if m.info.btf_id == 0 || m.info.btf_value_type_id == 0 {
        return Err(no_btf());
    }
    let fd = tcbpf::sys::obj::btf_by_id(m.info.btf_id).map_err(|e| CliError::from(m.err(e)))?;
    let raw = tcbpf::sys::info::btf_data(&fd).map_err(|e| CliError::from(m.err(e)))?;
    let btf = tcbpf::btf::Btf::parse(&raw)
        .map_err(|e| CliError::failure(format!("{}: the kernel's BTF: {e}", m.label)))?;
    let vt = m.info.btf_value_type_id;
    let container = btf
        .skip_mods_and_typedefs(vt)
        .and_then(|id| btf.ty(id))
        .map_err(|e| CliError::usage(format!("{}: {e}", m.label)))?;
    if matches!(container.kind, tcbpf::btf::Kind::Union(_)) {
        return Err(CliError::usage(format!(
            "{}: the value type {} is a union: its members share bytes, so add takes no field of it; use 'at OFFSET u32|u64'",
            m.label,
            btf.describe(vt)
        )));
    }
    let members = btf
        .flat_members(vt)
        .map_err(|e| CliError::usage(format!("{}: {e}", m.label)))?;
    let member = members.iter().find(|f| f.name == name).ok_or_else(|| {
        CliError::usage(format!(
            "{}: the value type {} has no field '{}'",
            m.label,
            btf.describe(vt),
            tcbpf::value::shown(name.as_bytes())
        ))
    })?;
    if member.shared {
        return Err(CliError::usage(format!(
            "{}: field '{name}' of {} lies in an anonymous union: its members share bytes, so add takes no field of it; use 'at OFFSET u32|u64'",
            m.label,
            btf.describe(vt)
        )));
    }
    let size = btf
        .resolve_size(member.ty)
        .map_err(|e| CliError::usage(format!("{}: field '{name}': {e}", m.label)))?;
    let is_int = btf
        .skip_mods_and_typedefs(member.ty)
        .and_then(|id| btf.ty(id))
        .is_ok_and(|t| matches!(t.kind, tcbpf::btf::Kind::Int(_)));
    let width = match (is_int, size, member.bitfield_size, member.bit_offset % 8) {
        (true, 4, 0, 0) => Width::U32,
        (true, 8, 0, 0) => Width::U64,
        _ => {
            return Err(CliError::usage(format!(
                "{}: field '{name}' ({}) is not a 4- or 8-byte integer field",
                m.label,
                btf.describe(member.ty)
            )))
        }
    };
    Ok(Field {
        offset: member.bit_offset / 8,
        width,
        signed: false,
        name: name.to_string(),
    })
}

fn load_error(m: &OpenMap, field: &Field, e: AddError) -> CliError {
    match e {
        AddError::Invalid(s) => CliError::usage(format!("{}: {}: {s}", m.label, field.name)),
        AddError::Denied(s) => CliError {
            exit: Exit::Permission,
            message: format!("{}: {s}", m.label),
        },
        AddError::Sys(e) => CliError::from(m.err(e)),
        AddError::Load(l) => {
            let denied = l.kind() == tcbpf::ErrorKind::Permission;
            let text = AddError::Load(l).to_string();
            if denied {
                CliError {
                    exit: Exit::Permission,
                    message: format!(
                        "{}: add needs CAP_BPF: it loads a small BPF_PROG_TYPE_SYSCALL program that adds in the kernel ({text})",
                        m.label
                    ),
                }
            } else {
                CliError::failure(format!(
                    "{}: the kernel refused the program that adds to {} ({text})",
                    m.label, field.name
                ))
            }
        }
    }
}

//! The JSON value input (`map update … value json`, `map load … json`,
//! `tcbpf sync`): JSON checked and encoded against a map's BTF. The fixed
//! BTF is that of `bpf/typed_maps.o` (scalars, nested structs and arrays,
//! enums, char arrays, bitfields, a struct key). The first two bytes pick
//! the key and value types by id, the third the flags (bit 0 `partial`,
//! bit 1 per-CPU with two CPUs); the rest is one NDJSON line. Whatever the
//! input, nothing may panic, and the fast NDJSON path must agree with the
//! general one: the same bytes when both accept, both refusing otherwise.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tcbpf::btf::Btf;
use tcbpf::value::typed::MapTypes;

static FIXED: OnceLock<Arc<Btf>> = OnceLock::new();

fn fixed() -> &'static Arc<Btf> {
    FIXED.get_or_init(|| {
        let obj = include_bytes!("../../bpf/typed_maps.o");
        let spec = tcbpf::elf::ObjectSpec::parse("typed_maps.o", obj).expect("parses");
        Arc::new(spec.btf.expect("has BTF"))
    })
}

fuzz_target!(|data: &[u8]| {
    let [key_id, value_id, flags, line @ ..] = data else {
        return;
    };
    let btf = fixed();
    let (key_id, value_id) = (u32::from(*key_id), u32::from(*value_id));
    let (Ok(key_size), Ok(value_size)) = (btf.resolve_size(key_id), btf.resolve_size(value_id))
    else {
        return;
    };
    let cpus = (flags & 2 != 0).then_some(2);
    let Ok(types) = MapTypes::new(
        btf.clone(),
        Some(key_id),
        Some(value_id),
        key_size as usize,
        value_size as usize,
        cpus,
    ) else {
        return;
    };
    let partial = flags & 1 != 0;
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let fast = types.entry_from_json_line(line, partial, &mut key, &mut value);
    let general = serde_json::from_slice::<serde_json::Value>(line)
        .map_err(|e| e.to_string())
        .and_then(|j| types.entry_from_json(&j, partial).map_err(|e| e.to_string()));
    match (fast, general) {
        (Ok(()), Ok(both)) => assert_eq!((key, value), both),
        (Err(_), Err(_)) => {}
        (f, g) => panic!("fast {f:?}, general {g:?}"),
    }
});

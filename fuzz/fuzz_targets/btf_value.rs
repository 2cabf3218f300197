//! The BTF value decoder (`tcbpf::btf::fmt::decode`, what `map dump`
//! prints by BTF type): the first byte picks the mode. Mode 0: the fixed
//! BTF of `bpf/btf_maps.o`, the next two bytes a type id, the rest the
//! value bytes. Otherwise the BTF itself comes from the input too:
//! `[u16 BTF length][BTF][u32 type id][value bytes]`. Text and JSON must
//! render whatever decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tcbpf::btf::{fmt, Btf};

static FIXED: OnceLock<Btf> = OnceLock::new();

fn fixed() -> &'static Btf {
    FIXED.get_or_init(|| {
        let obj = include_bytes!("../../bpf/btf_maps.o");
        let spec = tcbpf::elf::ObjectSpec::parse("btf_maps.o", obj).expect("parses");
        spec.btf.expect("has BTF")
    })
}

fn render(btf: &Btf, id: u32, bytes: &[u8]) {
    if let Ok(v) = fmt::decode(btf, id, bytes) {
        let _ = v.to_string();
        let _ = v.to_json();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if rest.len() < 2 {
            return;
        }
        let id = u32::from(u16::from_le_bytes([rest[0], rest[1]]));
        render(fixed(), id, &rest[2..]);
        return;
    }
    if rest.len() < 2 {
        return;
    }
    let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    if rest.len() < len + 4 {
        return;
    }
    let Ok(btf) = Btf::parse(&rest[..len]) else {
        return;
    };
    let id = u32::from_le_bytes(rest[len..len + 4].try_into().unwrap());
    render(&btf, id, &rest[len + 4..]);
});

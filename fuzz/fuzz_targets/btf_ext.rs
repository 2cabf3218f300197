//! `.BTF.ext` parsing (func info, line info, CO-RE relocation records).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tcbpf::btf::BtfExt::parse(data);
});

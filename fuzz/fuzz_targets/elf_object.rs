//! ELF object parsing: any bytes into `ObjectSpec::parse` (maps, programs,
//! relocations, BTF and .BTF.ext); an error is fine, a panic is not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = tcbpf::elf::ObjectSpec::parse("fuzz.o", data) {
        // Walk what came out as the CLI's `obj show` does.
        for m in &spec.maps {
            let _ = m.definition();
        }
        for p in &spec.programs {
            let _ = p.insns.len();
        }
    }
});

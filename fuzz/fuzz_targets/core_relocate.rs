//! CO-RE relocation against a fixed target BTF: the object's own BTF,
//! `.BTF.ext` records and instructions come from the input (seeded with the
//! committed CO-RE objects); the target is the BTF of
//! `bpf/core_classifier.o`, parsed once. Every program's functions are
//! relocated as the loader does; errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tcbpf::btf::core::relocate_function;
use tcbpf::btf::TargetBtf;
use tcbpf::elf::ObjectSpec;

static TARGET: OnceLock<TargetBtf> = OnceLock::new();

fn target() -> &'static TargetBtf {
    TARGET.get_or_init(|| {
        let obj = include_bytes!("../../bpf/core_classifier.o");
        let spec = ObjectSpec::parse("core_classifier.o", obj).expect("committed object parses");
        let btf = spec.btf.expect("core_classifier.o has BTF");
        TargetBtf::parse(Box::new(btf.to_bytes())).expect("its BTF is a valid target")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = ObjectSpec::parse("fuzz.o", data) else {
        return;
    };
    let (Some(local), Some(ext)) = (&spec.btf, &spec.btf_ext) else {
        return;
    };
    let targets = [target()];
    for p in &spec.programs {
        for place in &p.layout {
            let Some(insns) = p
                .insns
                .get(place.program_insn..place.program_insn + place.len)
            else {
                continue;
            };
            let mut bytes = Vec::with_capacity(insns.len() * 8);
            for i in insns {
                bytes.extend_from_slice(&[i.code, i.regs]);
                bytes.extend_from_slice(&i.off.to_le_bytes());
                bytes.extend_from_slice(&i.imm.to_le_bytes());
            }
            let _ = relocate_function(
                local,
                ext,
                &place.section,
                place.section_insn as u32,
                &mut bytes,
                &targets,
            );
        }
    }
});

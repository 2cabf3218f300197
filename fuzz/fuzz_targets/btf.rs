//! BTF parsing: `Btf::parse` and `TargetBtf::parse` must agree on what is
//! valid, and whatever parses must write back and describe every type.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tcbpf::btf::{Btf, TargetBtf, TypeView};

fuzz_target!(|data: &[u8]| {
    let typed = Btf::parse(data);
    let target = TargetBtf::parse(Box::new(data.to_vec()));
    assert_eq!(
        typed.is_ok(),
        target.is_ok(),
        "Btf and TargetBtf disagree: {:?} vs {:?}",
        typed.as_ref().err(),
        target.as_ref().err()
    );
    if let Ok(btf) = typed {
        let _ = btf.to_bytes();
        for id in btf.first_id()..btf.end_id().min(btf.first_id() + 512) {
            let _ = btf.describe(id);
            let _ = btf.resolve_size(id);
            let _ = TypeView::skip_mods_and_typedefs(&btf, id);
        }
    }
});

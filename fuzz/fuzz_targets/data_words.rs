//! The DATA and TYPES word grammar of `tcbpf map`: the input is split into
//! words as a shell would; the first byte picks a key/value size. DATA
//! parsing (`u32 7 be16 80`, `hex …`, bare bytes) and TYPES layouts with
//! `encode_words` (what `map load` does per line) must never panic, and
//! errors must stay short (words are shown by start and length).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tcbpf::value::{Data, FieldType, Layout};

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let size = usize::from(size % 64) + 1;
    let text = String::from_utf8_lossy(rest);
    let words: Vec<&str> = text.split_whitespace().collect();
    match Data::parse(&words) {
        Ok(d) => {
            let _ = d.types().map(<[FieldType]>::len);
            if let Err(e) = d.into_exact(size, "key") {
                assert!(e.to_string().len() < 600, "long error: {e}");
            }
        }
        Err(e) => assert!(e.to_string().len() < 600, "long error: {e}"),
    }
    // TYPES: leading type words, the rest are values for them.
    let types: Vec<FieldType> = words
        .iter()
        .map_while(|w| FieldType::from_word(w))
        .collect();
    if let Ok(layout) = Layout::new(&types, size, "value") {
        let mut values = words[types.len()..].iter().map(|w| w.as_bytes());
        let mut out = Vec::new();
        if let Err(e) = layout.encode_words(&mut values, "value", &mut out) {
            assert!(e.to_string().len() < 600, "long error: {e}");
        } else {
            assert_eq!(out.len(), layout.size());
        }
    }
});

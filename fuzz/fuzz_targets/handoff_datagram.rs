//! The hand-off datagram decoder (`struct bpf_map_aux` chunks): whatever a
//! local user sends must decode or fail cleanly, and what decodes must
//! encode back to the same entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tcbpf::scm::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(chunk) = wire::decode_chunk(data) {
        let again = wire::encode_chunk(&chunk.object, chunk.total, &chunk.maps);
        let back = wire::decode_chunk(&again).expect("re-encoded chunk decodes");
        assert_eq!(back.maps, chunk.maps);
        assert_eq!(back.total, chunk.total);
    }
});

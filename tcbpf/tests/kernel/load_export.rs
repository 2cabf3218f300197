//! `LoadedObject::export`: the library's one call that hands a loaded
//! object's maps to an importer as tc does (`filter add … export UDS`).

use crate::load_common;

use load_common::*;
use tcbpf::load::load_file;
use tcbpf::scm::{self, ReceiveOptions, SendOptions};
use tcbpf::sys::info::map_info;
use tcbpf_testkit::SockPath;

#[test]
fn export_sends_every_map_of_a_loaded_object_with_its_ids_and_identity() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("legacy"), &fs.options()).unwrap();
    let sock = SockPath::new("load_export");
    let receiver = scm::Receiver::bind(&sock.0, scm::DEFAULT_MODE).unwrap();
    obj.export(&sock.0, &SendOptions::default()).unwrap();
    let got = receiver
        .receive(&ReceiveOptions::default(), |_| {})
        .unwrap();

    assert_eq!(got.object, obj.object_id());
    assert!(got.object.name.ends_with("legacy.o"), "{}", got.object.name);
    assert_eq!(got.maps.len(), obj.maps.len());
    for (sent, received) in obj.maps.iter().zip(&got.maps) {
        assert_eq!(received.desc.id, sent.spec.id, "map {}", sent.spec.name);
        assert_eq!(received.desc.key_size, sent.spec.key_size);
        assert_eq!(received.desc.value_size, sent.spec.value_size);
        assert_eq!(received.desc.pinning, sent.spec.pinning.raw());
        // The same kernel map arrived, not one like it.
        assert_eq!(received.info.id, map_info(&sent.fd).unwrap().id);
    }
}

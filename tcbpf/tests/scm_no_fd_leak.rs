//! The importer leaks no descriptor on bad input: after thousands of bad
//! datagrams of every kind (each carrying descriptors), this process holds
//! exactly the descriptors it held before.
//!
//! A test binary of its own with a single test, so no other test thread
//! opens or closes descriptors while it counts /proc/self/fd.

use std::os::fd::{AsFd, BorrowedFd};
use tcbpf::scm::{self, wire, MapDesc, ObjectId, ReceiveOptions, Receiver, Sender};
use tcbpf::sys::{info::map_info, MapFd};
use tcbpf_testkit::SockPath;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn hash_map(name: &str, key_size: u32) -> MapFd {
    tcbpf_testkit::hash_map(name, key_size, 8, 4)
}

#[test]
fn thousands_of_bad_datagrams_leave_the_fd_count_unchanged() {
    tcbpf_testkit::require_root!();
    let maps: Vec<MapFd> = (0..66).map(|i| hash_map(&format!("leak{i}"), 4)).collect();
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let obj = ObjectId {
        name: "leak.o".into(),
        dev: 0,
        ino: 0,
    };
    let d = MapDesc::from_info(&map_info(&maps[0]).unwrap(), 0);
    let all: Vec<BorrowedFd<'_>> = maps.iter().map(|m| m.as_fd()).collect();
    let d64 = vec![d; 64];
    let mut wrong_key = d;
    wrong_key.key_size = 16;
    let mut bad_version = wire::encode_chunk(&obj, 2, &[d, d]);
    bad_version[0] = 0;
    // (payload, descriptors): each one is refused.
    let cases: Vec<(Vec<u8>, Vec<BorrowedFd<'_>>)> = vec![
        (bad_version, all[..2].to_vec()),
        (wire::encode_chunk(&obj, 5, &[d, d]), all[..2].to_vec()),
        (wire::encode_chunk(&obj, 64, &d64), all[..66].to_vec()),
        (wire::encode_chunk(&obj, 3, &[d, d, d]), all[..2].to_vec()),
        (wire::encode_chunk(&obj, 2, &[d, d]), all[..3].to_vec()),
        (
            wire::encode_chunk(&obj, 2, &[d, d]),
            vec![all[0], file.as_fd()],
        ),
        (
            wire::encode_chunk(&obj, 2, &[d, wrong_key]),
            all[..2].to_vec(),
        ),
        (vec![1, 0, 1], all[..1].to_vec()),
        (wire::encode_chunk(&obj, 1, &[d]), vec![]),
    ];
    let sock = SockPath::new("scm-leak");
    let path = sock.0.clone();
    let opts = ReceiveOptions {
        timeout: Some(std::time::Duration::from_secs(5)),
        ..Default::default()
    };
    // One warm-up round so lazily opened descriptors are counted in `before`.
    let before_rounds = |n: usize| {
        for i in 0..n {
            let (bytes, fds) = &cases[i % cases.len()];
            let receiver = Receiver::bind(&path, scm::DEFAULT_MODE).unwrap();
            Sender::connect(&path)
                .unwrap()
                .send_raw(bytes, fds)
                .unwrap();
            let err = receiver.receive(&opts, |_| {}).unwrap_err();
            assert_eq!(
                err.kind,
                tcbpf::ErrorKind::BadInput,
                "case {}: {err}",
                i % cases.len()
            );
        }
    };
    before_rounds(cases.len());
    let before = open_fds();
    before_rounds(3000);
    assert_eq!(open_fds(), before, "descriptors leaked");
    assert!(!path.exists());
}

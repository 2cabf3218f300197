//! The hand-off over real AF_UNIX sockets with real kernel maps (run as
//! root): whole transfers in chunks of 64, and every kind of bad datagram
//! ending the receive with a clear error, its descriptors closed and the
//! socket path gone.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use tcbpf::scm::{self, wire, MapDesc, ObjectId, ReceiveOptions, Receiver, Sender};
use tcbpf::sys::{info::map_info, map, MapFd};
use tcbpf::ErrorKind;
use tcbpf_testkit::SockPath;

fn hash_map(name: &str, key_size: u32) -> MapFd {
    tcbpf_testkit::hash_map(name, key_size, 8, 8)
}

fn desc_of(fd: &MapFd, id: u32) -> MapDesc {
    MapDesc::from_info(&map_info(fd).unwrap(), id)
}

fn object() -> ObjectId {
    ObjectId {
        name: "scm_transfer.o".into(),
        dev: 3,
        ino: 12345,
    }
}

fn opts() -> ReceiveOptions {
    ReceiveOptions {
        timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    }
}

#[test]
fn transfers_of_1_3_64_65_and_200_maps_arrive_whole_and_in_order() {
    tcbpf_testkit::require_root!();
    for count in [1usize, 3, 64, 65, 200] {
        let path = SockPath::new("sizes");
        let maps: Vec<MapFd> = (0..count)
            .map(|i| hash_map(&format!("scm_t{i}"), 4))
            .collect();
        let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
        let sender_path = path.0.clone();
        let received = std::thread::scope(|s| {
            let maps = &maps;
            let sender = s.spawn(move || {
                let described: Vec<(MapDesc, BorrowedFd<'_>)> = maps
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (desc_of(m, 1000 + i as u32), m.as_fd()))
                    .collect();
                scm::send_maps(&sender_path, &object(), &described)
            });
            let got = receiver.receive(&opts(), |d| panic!("unexpected drop: {d}"));
            sender.join().unwrap().unwrap();
            got.unwrap()
        });
        assert_eq!(received.object, object());
        assert_eq!(received.maps.len(), count, "{count} maps");
        for (i, m) in received.maps.iter().enumerate() {
            assert_eq!(m.desc.id, 1000 + i as u32);
            assert_eq!(m.info.name, format!("scm_t{i}"));
            assert_eq!(m.info.id, map_info(&maps[i]).unwrap().id, "same kernel map");
        }
        drop(receiver);
        assert!(!path.0.exists(), "socket path unlinked after receiving");
    }
}

#[test]
fn received_descriptors_are_close_on_exec_and_writes_are_shared() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("cloexec");
    let m = hash_map("scm_shared", 4);
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    scm::send_maps(&path.0, &object(), &[(desc_of(&m, 0), m.as_fd())]).unwrap();
    let got = receiver.receive(&opts(), |_| {}).unwrap();
    let fd = &got.maps[0].fd;
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap()
        .trim();
    let flags = u32::from_str_radix(flags, 8).unwrap();
    assert_ne!(
        flags & libc::O_CLOEXEC as u32,
        0,
        "received fd is close-on-exec"
    );
    map::update(fd, &1u32.to_ne_bytes(), &77u64.to_ne_bytes(), 0).unwrap();
    let mut v = [0u8; 8];
    map::lookup(&m, &1u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 77);
}

#[test]
fn inheritable_receipt_leaves_close_on_exec_off_for_the_exec_proxy() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("inherit");
    let m = hash_map("scm_inherit", 4);
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    scm::send_maps(&path.0, &object(), &[(desc_of(&m, 0), m.as_fd())]).unwrap();
    let o = ReceiveOptions {
        inheritable: true,
        ..opts()
    };
    let got = receiver.receive(&o, |_| {}).unwrap();
    assert!(got.inheritable);
    let fd = got.maps[0].fd.as_raw_fd();
    // SAFETY: F_GETFD on a descriptor this test owns through `got`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert_eq!(
        flags & libc::FD_CLOEXEC,
        0,
        "inheritable receipt: no FD_CLOEXEC"
    );
}

#[test]
fn socket_is_created_mode_0600_and_mode_can_widen_it() {
    let path = SockPath::new("mode");
    let r = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    let mode = std::fs::metadata(&path.0).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(r);
    let r = Receiver::bind(&path.0, 0o666).unwrap();
    let mode = std::fs::metadata(&path.0).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "umask does not narrow an explicit mode");
    drop(r);
}

#[test]
fn existing_path_is_refused_and_left_alone() {
    let path = SockPath::new("exists");
    std::fs::write(&path.0, b"keep me").unwrap();
    let err = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadInput);
    assert!(err.message.contains("already exists"), "{}", err.message);
    assert_eq!(std::fs::read(&path.0).unwrap(), b"keep me");
}

#[test]
fn path_longer_than_sun_path_is_refused() {
    let long = std::env::temp_dir().join("x".repeat(120));
    let err = Receiver::bind(&long, scm::DEFAULT_MODE).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadInput);
    assert!(
        err.message.contains("longer than sun_path"),
        "{}",
        err.message
    );
    assert!(!long.exists());
}

#[test]
fn sending_to_nobody_says_nobody_listens() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("nobody");
    let m = hash_map("scm_nobody", 4);
    let err = scm::send_maps(&path.0, &object(), &[(desc_of(&m, 0), m.as_fd())]).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotListening);
    assert!(
        err.message.contains("nobody is listening"),
        "{}",
        err.message
    );
}

/// Binds, sends one raw datagram, receives: the error, with the path checked
/// gone afterwards.
fn receive_after_raw(tag: &str, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> scm::Error {
    let path = SockPath::new(tag);
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    Sender::connect(&path.0)
        .unwrap()
        .send_raw(bytes, fds)
        .unwrap();
    let err = receiver.receive(&opts(), |_| {}).unwrap_err();
    drop(receiver);
    assert!(!path.0.exists(), "{tag}: socket unlinked after the error");
    err
}

#[test]
fn import_fails_on_wrong_version() {
    tcbpf_testkit::require_root!();
    let m = hash_map("scm_bad_ver", 4);
    let mut bytes = wire::encode_chunk(&object(), 1, &[desc_of(&m, 0)]);
    bytes[0] = 9;
    let err = receive_after_raw("ver", &bytes, &[m.as_fd()]);
    assert_eq!(err.kind, ErrorKind::BadInput);
    assert!(err.message.contains("uds_ver 9"), "{}", err.message);
}

#[test]
fn import_fails_when_count_is_larger_than_entries_carried() {
    tcbpf_testkit::require_root!();
    let m = hash_map("scm_bad_cnt", 4);
    let bytes = wire::encode_chunk(&object(), 3, &[desc_of(&m, 0)]);
    let err = receive_after_raw("count", &bytes, &[m.as_fd()]);
    assert!(
        err.message.contains("should carry 3, but it carries 1"),
        "{}",
        err.message
    );
}

#[test]
fn import_fails_on_truncated_control_message() {
    tcbpf_testkit::require_root!();
    let maps: Vec<MapFd> = (0..65)
        .map(|i| hash_map(&format!("scm_ct{i}"), 4))
        .collect();
    let descs: Vec<MapDesc> = maps[..64].iter().map(|m| desc_of(m, 0)).collect();
    let bytes = wire::encode_chunk(&object(), 64, &descs);
    let fds: Vec<BorrowedFd<'_>> = maps.iter().map(|m| m.as_fd()).collect();
    let err = receive_after_raw("ctrunc", &bytes, &fds);
    assert!(err.message.contains("MSG_CTRUNC"), "{}", err.message);
}

#[test]
fn import_fails_without_scm_rights() {
    tcbpf_testkit::require_root!();
    let m = hash_map("scm_norights", 4);
    let bytes = wire::encode_chunk(&object(), 1, &[desc_of(&m, 0)]);
    let err = receive_after_raw("norights", &bytes, &[]);
    assert!(err.message.contains("no SCM_RIGHTS"), "{}", err.message);
}

#[test]
fn import_fails_on_fewer_or_more_descriptors_than_entries() {
    tcbpf_testkit::require_root!();
    let a = hash_map("scm_fd_a", 4);
    let b = hash_map("scm_fd_b", 4);
    let two = wire::encode_chunk(&object(), 2, &[desc_of(&a, 0), desc_of(&b, 1)]);
    let err = receive_after_raw("fewer", &two, &[a.as_fd()]);
    assert!(
        err.message.contains("1 descriptor(s) for 2 map entries"),
        "{}",
        err.message
    );
    let one = wire::encode_chunk(&object(), 1, &[desc_of(&a, 0)]);
    let err = receive_after_raw("more", &one, &[a.as_fd(), b.as_fd()]);
    assert!(
        err.message.contains("2 descriptor(s) for 1 map entries"),
        "{}",
        err.message
    );
}

#[test]
fn import_fails_on_descriptor_that_is_not_a_map() {
    tcbpf_testkit::require_root!();
    let m = hash_map("scm_notmap", 4);
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let bytes = wire::encode_chunk(&object(), 1, &[desc_of(&m, 5)]);
    let err = receive_after_raw("notmap", &bytes, &[file.as_fd()]);
    assert!(err.message.contains("entry id 5"), "{}", err.message);
    assert!(err.message.contains("not a bpf map"), "{}", err.message);
}

#[test]
fn import_fails_when_map_differs_from_its_entry() {
    tcbpf_testkit::require_root!();
    let m = hash_map("scm_mismatch", 4);
    let mut d = desc_of(&m, 2);
    d.key_size = 8;
    let bytes = wire::encode_chunk(&object(), 1, &[d]);
    let err = receive_after_raw("mismatch", &bytes, &[m.as_fd()]);
    assert!(
        err.message.contains("entry says type 1 key 8 value 8"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("'scm_mismatch' of type 1 key 4"),
        "{}",
        err.message
    );
}

#[test]
fn import_fails_when_a_later_datagram_changes_the_count() {
    tcbpf_testkit::require_root!();
    let maps: Vec<MapFd> = (0..65)
        .map(|i| hash_map(&format!("scm_ch{i}"), 4))
        .collect();
    let path = SockPath::new("change");
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    let sender = Sender::connect(&path.0).unwrap();
    let first: Vec<MapDesc> = maps[..64].iter().map(|m| desc_of(m, 0)).collect();
    let fds: Vec<BorrowedFd<'_>> = maps[..64].iter().map(|m| m.as_fd()).collect();
    sender
        .send_raw(&wire::encode_chunk(&object(), 65, &first), &fds)
        .unwrap();
    sender
        .send_raw(
            &wire::encode_chunk(&object(), 66, &[desc_of(&maps[64], 0)]),
            &[maps[64].as_fd()],
        )
        .unwrap();
    let err = receiver.receive(&opts(), |_| {}).unwrap_err();
    assert!(
        err.message.contains("changed from 65 to 66"),
        "{}",
        err.message
    );
}

#[test]
fn receive_times_out_when_the_transfer_stops_short() {
    tcbpf_testkit::require_root!();
    let maps: Vec<MapFd> = (0..2).map(|i| hash_map(&format!("scm_to{i}"), 4)).collect();
    let path = SockPath::new("timeout");
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    // A chunk of 64 is full, so num_ent 100 promises a second datagram that never comes.
    let descs: Vec<MapDesc> = (0..64).map(|_| desc_of(&maps[0], 0)).collect();
    let fds: Vec<BorrowedFd<'_>> = (0..64).map(|_| maps[0].as_fd()).collect();
    Sender::connect(&path.0)
        .unwrap()
        .send_raw(&wire::encode_chunk(&object(), 100, &descs), &fds)
        .unwrap();
    let o = ReceiveOptions {
        timeout: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    let err = receiver.receive(&o, |_| {}).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TimedOut);
    assert!(
        err.message.contains("received 64 of 100 maps"),
        "{}",
        err.message
    );
}

#[test]
fn import_refuses_a_program_descriptor_sent_as_a_map() {
    tcbpf_testkit::require_root!();
    use tcbpf::sys::prog;
    // r0 = 0; exit
    let insns = [
        tcbpf::abi::Insn {
            code: 0xb7,
            regs: 0,
            off: 0,
            imm: 0,
        },
        tcbpf::abi::Insn {
            code: 0x95,
            regs: 0,
            off: 0,
            imm: 0,
        },
    ];
    let loaded = prog::load(&prog::ProgLoad {
        prog_type: 1, // socket filter
        insns: &insns,
        license: "GPL",
        name: "scm_prog",
        ..Default::default()
    })
    .map_err(|e| e.error)
    .unwrap();
    let m = hash_map("scm_prog_map", 4);
    let bytes = wire::encode_chunk(&object(), 1, &[desc_of(&m, 3)]);
    let err = receive_after_raw("prog", &bytes, &[loaded.fd.as_fd()]);
    assert!(err.message.contains("not a bpf map"), "{}", err.message);
    assert!(err.message.contains("bpf-prog"), "{}", err.message);
}

#[test]
fn queue_and_array_maps_travel_like_hash_maps() {
    tcbpf_testkit::require_root!();
    let path = SockPath::new("kinds");
    let queue = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Queue as u32,
        key_size: 0,
        value_size: 4,
        max_entries: 8,
        name: "scm_queue",
        ..Default::default()
    })
    .unwrap();
    let array = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 8,
        name: "scm_array",
        ..Default::default()
    })
    .unwrap();
    let receiver = Receiver::bind(&path.0, scm::DEFAULT_MODE).unwrap();
    scm::send_maps(
        &path.0,
        &object(),
        &[
            (desc_of(&queue, 0), queue.as_fd()),
            (desc_of(&array, 1), array.as_fd()),
        ],
    )
    .unwrap();
    let got = receiver.receive(&opts(), |_| {}).unwrap();
    let names: Vec<&str> = got.maps.iter().map(|m| m.info.name.as_str()).collect();
    assert_eq!(names, ["scm_queue", "scm_array"]);
    assert_eq!(got.maps[0].desc.key_size, 0);
}

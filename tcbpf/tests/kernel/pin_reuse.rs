//! Pinning with tc's paths, in a private bpffs: a second load reuses the
//! first one's pinned maps, an incompatible pin is refused naming both
//! definitions, custom pinning follows the pinning table, bpffs is mounted
//! when absent, and a failed load leaves no pin or directory behind.

use crate::load_common;

use load_common::*;
use sha1::{Digest, Sha1};
use tcbpf::load::{load_file, LoadError, LoadOptions};
use tcbpf::sys;

fn sha1_of(path: &std::path::Path) -> String {
    Sha1::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn kernel_id(fd: &sys::MapFd) -> u32 {
    sys::info::map_info(fd).unwrap().id
}

#[test]
fn second_load_reuses_the_pinned_maps_of_the_first() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let file = fixture("legacy");
    let first = load_file(&file, &fs.options()).unwrap();
    let sha = sha1_of(&file);
    assert_eq!(first.sha1_hex, sha);
    let obj_pin = fs.path.join("tc").join(&sha).join("obj_pinned");
    let glob_pin = fs.path.join("tc/globals/glob_pinned");
    assert_eq!(
        first.map("obj_pinned").unwrap().pin_path.as_ref(),
        Some(&obj_pin)
    );
    assert_eq!(
        first.map("glob_pinned").unwrap().pin_path.as_ref(),
        Some(&glob_pin)
    );
    assert!(obj_pin.exists() && glob_pin.exists());
    assert_eq!(run(&first.main_program().fd, &ipv4_packet(17)), 0);

    let second = load_file(&file, &fs.options()).unwrap();
    for name in ["obj_pinned", "glob_pinned"] {
        let (a, b) = (first.map(name).unwrap(), second.map(name).unwrap());
        assert!(b.reused && !a.reused, "{name}");
        assert_eq!(kernel_id(&a.fd), kernel_id(&b.fd), "{name} is the same map");
    }
    let (a, b) = (
        first.map("proto_count").unwrap(),
        second.map("proto_count").unwrap(),
    );
    assert_ne!(
        kernel_id(&a.fd),
        kernel_id(&b.fd),
        "unpinned maps are per load"
    );
    assert_eq!(run(&second.main_program().fd, &ipv4_packet(17)), 0);
    assert_eq!(
        lookup_u64(&first.map("glob_pinned").unwrap().fd, 0),
        Some(2)
    );
    assert_eq!(
        lookup_u64(&second.map("proto_count").unwrap().fd, 17),
        Some(1)
    );
}

#[test]
fn btf_pin_by_name_is_shared_through_tc_globals() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let first = load_file(&fixture("btf_maps"), &fs.options()).unwrap();
    let second = load_file(&fixture("btf_maps"), &fs.options()).unwrap();
    let (a, b) = (
        first.map("btf_pinned").unwrap(),
        second.map("btf_pinned").unwrap(),
    );
    assert!(b.reused);
    assert_eq!(kernel_id(&a.fd), kernel_id(&b.fd));
    run(&first.main_program().fd, &ipv4_packet(17));
    run(&second.main_program().fd, &ipv4_packet(17));
    assert_eq!(lookup_u64(&a.fd, 17), Some(2));
}

#[test]
fn incompatible_pin_is_refused_naming_both_definitions_and_nothing_is_left_behind() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let globals = fs.path.join("tc/globals");
    std::fs::create_dir_all(&globals).unwrap();
    let other = sys::map::create(&sys::map::MapCreate {
        map_type: tcbpf::abi::MapType::Array as u32,
        key_size: 4,
        value_size: 16,
        max_entries: 4,
        name: "glob_pinned",
        ..Default::default()
    })
    .unwrap();
    sys::obj::pin(&other, &globals.join("glob_pinned")).unwrap();

    let file = fixture("legacy");
    let err = load_file(&file, &fs.options()).unwrap_err();
    assert!(matches!(err, LoadError::PinMismatch(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("map 'glob_pinned'"), "{msg}");
    assert!(
        msg.contains("array key 4 value 16 max 4 flags 0x0"),
        "pinned: {msg}"
    );
    assert!(
        msg.contains("array key 4 value 8 max 4 flags 0x0"),
        "object: {msg}"
    );
    // obj_pinned was created and pinned before the mismatch: undone.
    assert!(!fs.path.join("tc").join(sha1_of(&file)).exists());
    assert!(
        globals.join("glob_pinned").exists(),
        "the other pin is untouched"
    );
}

#[test]
fn custom_pinning_follows_the_pinning_table() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let db = fs.dir.0.join("bpf_pinning");
    std::fs::write(&db, "# test table\n42\tcustom/sub\n").unwrap();
    let opts = LoadOptions {
        pinning_db: db,
        ..fs.options()
    };
    let obj = load_file(&fixture("legacy"), &opts).unwrap();
    let want = fs.path.join("custom/sub/custom_pinned");
    assert_eq!(
        obj.map("custom_pinned").unwrap().pin_path.as_ref(),
        Some(&want)
    );
    let pinned = sys::obj::get_pinned_map(&want, 0).unwrap();
    assert_eq!(
        kernel_id(&pinned),
        kernel_id(&obj.map("custom_pinned").unwrap().fd)
    );
}

#[test]
fn custom_pinning_value_missing_from_the_table_is_not_pinned() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let obj = load_file(&fixture("legacy"), &fs.options()).unwrap();
    assert_eq!(obj.map("custom_pinned").unwrap().pin_path, None);
    assert!(
        obj.notes.iter().any(|n| n.contains("custom_pinned")),
        "{:?}",
        obj.notes
    );
}

#[test]
fn bpffs_is_mounted_when_absent() {
    tcbpf_testkit::require_root!();
    let dir = TempDir::new("nobpffs");
    let mnt = dir.0.join("bpf");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = sys::fs::unmount(&self.0);
        }
    }
    let _guard = Unmount(mnt.clone());
    assert!(!sys::fs::is_bpffs(&mnt));
    let opts = LoadOptions {
        bpffs: mnt.clone(),
        pinning_db: dir.0.join("none"),
        ..LoadOptions::default()
    };
    let obj = load_file(&fixture("legacy"), &opts).unwrap();
    assert!(sys::fs::is_bpffs(&mnt));
    assert!(mnt.join("tc/globals/glob_pinned").exists());
    drop(obj);
}

#[test]
fn obj_load_pins_the_program_and_refuses_a_taken_path() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let path = fs.path.join("prog");
    let opts = LoadOptions {
        pin_program: Some(path.clone()),
        ..fs.options()
    };
    let obj = load_file(&fixture("legacy"), &opts).unwrap();
    let pinned = sys::obj::get_pinned_prog(&path).unwrap();
    let id = |fd: &sys::ProgFd| sys::info::prog_info(fd).unwrap().id;
    assert_eq!(id(&pinned), id(&obj.main_program().fd));
    assert_eq!(run(&pinned, &ipv4_packet(6)), 2);
    drop(obj);

    // The path is taken now: the second load is refused before it
    // creates or pins anything.
    std::fs::remove_dir_all(fs.path.join("tc")).unwrap();
    let err = load_file(&fixture("legacy"), &opts).unwrap_err();
    assert!(err.to_string().contains("prog: already exists"), "{err}");
    assert!(!fs.path.join("tc").exists(), "no pins or directories made");
}

#[test]
fn program_pin_outside_a_bpffs_is_refused_before_anything_is_made() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let elsewhere = TempDir::new("notbpf");
    let opts = LoadOptions {
        pin_program: Some(elsewhere.0.join("prog")),
        ..fs.options()
    };
    let err = load_file(&fixture("legacy"), &opts).unwrap_err();
    assert!(
        err.to_string().contains("is not on a bpf filesystem"),
        "{err}"
    );
    assert!(err.is_bad_input());
    assert!(!fs.path.join("tc").exists());
}

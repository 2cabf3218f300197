//! Load failures: a verifier rejection names the section and shows the
//! tail of the log; BTF the kernel refuses is dropped with a note and the
//! object still loads.

use crate::load_common;

use load_common::*;
use tcbpf::btf::{Kind, Type};
use tcbpf::elf::ObjectSpec;
use tcbpf::load::{load_file, load_spec, LoadError, LoadOptions, ObjectIdentity};

#[test]
fn verifier_rejection_names_the_section_and_shows_the_log_tail() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let err = load_file(&fixture("reject"), &fs.options()).unwrap_err();
    let LoadError::Verifier(v) = &err else {
        panic!("not a verifier error: {err}");
    };
    assert_eq!(v.section, "classifier");
    assert!(v.log.contains("invalid access to packet"), "{}", v.log);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: section 'classifier': program 'unchecked_read' rejected: BPF_PROG_LOAD",
            fixture("reject").display()
        )),
        "{msg}"
    );
    assert!(msg.contains("verifier log (last lines):"), "{msg}");
    assert!(msg.contains("invalid access to packet"), "{msg}");
    assert!(
        msg.lines().count() <= 2 + tcbpf::load::LOG_TAIL_LINES,
        "{msg}"
    );
}

#[test]
fn verbose_keeps_the_verifier_log_of_a_loaded_program() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let opts = LoadOptions {
        section: Some("ok".into()),
        verbose: true,
        ..fs.options()
    };
    let obj = load_file(&fixture("reject"), &opts).unwrap();
    assert!(
        obj.main_program().verifier_log.contains("processed"),
        "{}",
        obj.main_program().verifier_log
    );
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(6)), 0);
}

#[test]
fn btf_the_kernel_refuses_is_dropped_with_a_note() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let path = fixture("btf_maps");
    let bytes = std::fs::read(&path).unwrap();
    let mut spec = ObjectSpec::parse("btf_maps.o", &bytes).unwrap();
    // A pointer to a type that does not exist: the kernel's BTF check fails.
    spec.btf.as_mut().unwrap().add_type(Type {
        name_off: 0,
        kind: Kind::Ptr(999_999),
    });
    let identity = ObjectIdentity::of(&path, &bytes).unwrap();
    let obj = load_spec(&spec, &identity, &fs.options()).unwrap();
    assert!(obj.btf.is_none());
    assert!(
        obj.notes
            .iter()
            .any(|n| n.starts_with("BTF: the kernel refused it")),
        "{:?}",
        obj.notes
    );
    assert_eq!(run(&obj.main_program().fd, &ipv4_packet(6)), 2);
    assert_eq!(lookup_u64(&obj.map("sized").unwrap().fd, 1), Some(1));
}

#[test]
fn outer_map_without_its_inner_map_is_refused_naming_it() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let path = fixture("mim_legacy");
    let bytes = std::fs::read(&path).unwrap();
    let mut spec = ObjectSpec::parse("mim_legacy.o", &bytes).unwrap();
    let outer = spec.maps.iter_mut().find(|m| m.name == "outer").unwrap();
    outer.inner_id = 99;
    let identity = ObjectIdentity::of(&path, &bytes).unwrap();
    let err = load_spec(&spec, &identity, &fs.options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mim_legacy.o: map 'outer': map-in-map without its inner map (no map with id 99 in the object)"
    );
}

#[test]
fn tail_call_key_beyond_the_program_array_is_refused() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let path = fixture("tailcall");
    let bytes = std::fs::read(&path).unwrap();
    let mut spec = ObjectSpec::parse("tailcall.o", &bytes).unwrap();
    let p = spec
        .programs
        .iter_mut()
        .find(|p| p.section == "1/2")
        .unwrap();
    p.tail_call.as_mut().unwrap().key = 8;
    let identity = ObjectIdentity::of(&path, &bytes).unwrap();
    let err = load_spec(&spec, &identity, &fs.options()).unwrap_err();
    assert!(
        err.to_string()
            .contains("map 'jmp_table': cannot store '1/2' at index 8: the array has 8 entries"),
        "{err}"
    );
}

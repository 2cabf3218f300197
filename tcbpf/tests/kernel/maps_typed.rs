//! `tcbpf::maps` against the real kernel: a map's own types read back by
//! BTF id (types_of), and diff-apply (apply) with and without `replace`,
//! per-CPU and array maps included, checked through the sys layer.

use crate::load_common;

use load_common::*;
use serde_json::json;
use tcbpf::load::{load_file, LoadedObject};
use tcbpf::maps::{apply, read_all, types_of, ApplyReport};
use tcbpf::sys;

fn load() -> (Bpffs, LoadedObject) {
    let fs = Bpffs::new();
    let obj = load_file(&fixture("typed_maps"), &fs.options()).unwrap();
    (fs, obj)
}

#[test]
fn types_of_reads_each_map_s_btf_from_the_kernel() {
    tcbpf_testkit::require_root!();
    let (_fs, obj) = load();
    let counters = &obj.map("counters").unwrap().fd;
    let t = types_of(counters).unwrap().expect("counters has BTF");
    let mut v = 5u64.to_ne_bytes().to_vec();
    v.extend_from_slice(&6u64.to_ne_bytes());
    sys::map::update(counters, &17u32.to_ne_bytes(), &v, 0).unwrap();
    let mut got = vec![0u8; 16];
    sys::map::lookup(counters, &17u32.to_ne_bytes(), &mut got, 0).unwrap();
    assert_eq!(
        t.entry_to_json(&17u32.to_ne_bytes(), &got).unwrap(),
        r#"{"key":17,"value":{"packets":5,"bytes":6}}"#
    );
    assert_eq!(
        t.decode_value(&got).unwrap().to_string(),
        "{.packets = 5, .bytes = 6}"
    );

    // Global data: the value is the section, variables by name.
    let data = &obj.map(".data").unwrap().fd;
    let t = types_of(data).unwrap().expect(".data has BTF");
    assert!(!t.key_is_typed() && t.key_is_scalar());
    let mut got = vec![0u8; t.value_size()];
    sys::map::lookup(data, &0u32.to_ne_bytes(), &mut got, 0).unwrap();
    assert_eq!(
        t.decode_value(&got).unwrap().to_json(),
        r#"{"hits":5,"label":"edge"}"#
    );

    // Per-CPU: one value per possible CPU.
    let pcpu = &obj.map("pcpu").unwrap().fd;
    let t = types_of(pcpu).unwrap().unwrap();
    let cpus = sys::possible_cpus().unwrap();
    assert_eq!(t.cpus(), Some(cpus));
    let buf = t
        .encode_values(&json!({"packets": 1, "bytes": 2}), false)
        .unwrap();
    sys::map::update(pcpu, &3u32.to_ne_bytes(), &buf, 0).unwrap();
    let mut got = vec![0u8; t.value_buf_size()];
    sys::map::lookup(pcpu, &3u32.to_ne_bytes(), &mut got, 0).unwrap();
    let values = t.decode_values(&got).unwrap();
    assert_eq!(values.len(), cpus);
    assert!(values
        .iter()
        .all(|v| v.to_json() == r#"{"packets":1,"bytes":2}"#));

    // A map without BTF.
    let plain = tcbpf_testkit::hash_map("plain", 4, 8, 4);
    assert!(types_of(&plain).unwrap().is_none());
}

fn counter(p: u64, b: u64) -> Vec<u8> {
    let mut v = p.to_ne_bytes().to_vec();
    v.extend_from_slice(&b.to_ne_bytes());
    v
}

fn contents(map: &sys::MapFd) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = read_all(map).unwrap();
    all.sort();
    all
}

#[test]
fn apply_adds_changes_keeps_and_with_replace_removes() {
    tcbpf_testkit::require_root!();
    let (_fs, obj) = load();
    let map = &obj.map("counters").unwrap().fd;
    for k in 1u32..=3 {
        sys::map::update(map, &k.to_ne_bytes(), &counter(k as u64, 0), 0).unwrap();
    }
    // 1 unchanged, 2 changed, 4 added; 3 stays without replace.
    let entries = vec![
        (1u32.to_ne_bytes().to_vec(), counter(1, 0)),
        (2u32.to_ne_bytes().to_vec(), counter(20, 0)),
        (4u32.to_ne_bytes().to_vec(), counter(4, 4)),
    ];
    let r = apply(map, &entries, false).unwrap();
    assert_eq!(
        r,
        ApplyReport {
            added: 1,
            changed: 1,
            unchanged: 1,
            removed: 0
        }
    );
    assert_eq!(contents(map).len(), 4);
    let r = apply(map, &entries, true).unwrap();
    assert_eq!(
        r,
        ApplyReport {
            added: 0,
            changed: 0,
            unchanged: 3,
            removed: 1
        }
    );
    let mut want = entries.clone();
    want.sort();
    assert_eq!(contents(map), want);

    // A wrong size anywhere: nothing is written.
    let bad = vec![
        (5u32.to_ne_bytes().to_vec(), counter(5, 5)),
        (6u32.to_ne_bytes().to_vec(), vec![0; 3]),
    ];
    let e = apply(map, &bad, true).unwrap_err().to_string();
    assert_eq!(
        e,
        "entry 2: key of 4 and value of 3 bytes; the map takes 4 and 16"
    );
    assert_eq!(contents(map), want);
}

#[test]
fn apply_on_per_cpu_and_array_maps() {
    tcbpf_testkit::require_root!();
    let (_fs, obj) = load();
    let pcpu = &obj.map("pcpu").unwrap().fd;
    let t = types_of(pcpu).unwrap().unwrap();
    let entry = |k: u32, p: u64| {
        (
            k.to_ne_bytes().to_vec(),
            t.encode_values(&json!({"packets": p, "bytes": 0}), false)
                .unwrap(),
        )
    };
    sys::map::update(pcpu, &9u32.to_ne_bytes(), &entry(9, 9).1, 0).unwrap();
    let r = apply(pcpu, &[entry(1, 1), entry(2, 2)], true).unwrap();
    assert_eq!((r.added, r.removed), (2, 1));
    let r = apply(pcpu, &[entry(1, 1), entry(2, 3)], true).unwrap();
    assert_eq!((r.unchanged, r.changed, r.removed), (1, 1, 0));
    let got = contents(pcpu);
    assert_eq!(got, {
        let mut w = vec![entry(1, 1), entry(2, 3)];
        w.sort();
        w
    });

    // Arrays cannot delete: replace zeroes the slots not named.
    let verdicts = &obj.map("verdicts").unwrap().fd;
    sys::map::update(verdicts, &3u32.to_ne_bytes(), &2u32.to_ne_bytes(), 0).unwrap();
    let r = apply(
        verdicts,
        &[(1u32.to_ne_bytes().to_vec(), 7u32.to_ne_bytes().to_vec())],
        true,
    )
    .unwrap();
    assert_eq!((r.changed, r.removed), (1, 1));
    assert_eq!(lookup_u32(verdicts, 3), 0);
    assert_eq!(lookup_u32(verdicts, 1), 7);
}

fn lookup_u32(map: &sys::MapFd, k: u32) -> u32 {
    let mut v = [0u8; 4];
    sys::map::lookup(map, &k.to_ne_bytes(), &mut v, 0).unwrap();
    u32::from_ne_bytes(v)
}

#[test]
fn apply_replace_makes_room_in_a_full_map_before_it_writes() {
    // A policy swapped whole on a map that is full: the keys that go must
    // be deleted before the new ones are written, or the kernel refuses
    // them (E2BIG) and the map is left half-applied.
    let m = tcbpf_testkit::hash_map(&tcbpf_testkit::unique("apply_full"), 4, 4, 8);
    let old: Vec<(Vec<u8>, Vec<u8>)> = (0..8u32)
        .map(|k| (k.to_ne_bytes().to_vec(), 1u32.to_ne_bytes().to_vec()))
        .collect();
    apply(&m, &old, false).unwrap();
    let new: Vec<(Vec<u8>, Vec<u8>)> = (100..108u32)
        .map(|k| (k.to_ne_bytes().to_vec(), 2u32.to_ne_bytes().to_vec()))
        .collect();
    let report = apply(&m, &new, true).unwrap();
    assert_eq!(
        report,
        ApplyReport {
            added: 8,
            changed: 0,
            unchanged: 0,
            removed: 8
        }
    );
    let mut got = contents(&m);
    got.sort();
    assert_eq!(got, new);
}

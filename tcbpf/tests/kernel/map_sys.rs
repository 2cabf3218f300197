//! The map commands of the sys layer against the real kernel (run as root):
//! batches, lookup-and-delete, queue/stack, freeze, fdinfo.

use tcbpf::sys::{self, map, MapFd};

fn create(map_type: tcbpf::abi::MapType, key: u32, value: u32, entries: u32, name: &str) -> MapFd {
    map::create(&map::MapCreate {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: entries,
        name,
        ..Default::default()
    })
    .expect("create map")
}

fn packed(n: u32) -> (Vec<u8>, Vec<u8>) {
    let keys = (0..n).flat_map(|k| k.to_ne_bytes()).collect();
    let values = (0..n).flat_map(|k| (k as u64 * 7).to_ne_bytes()).collect();
    (keys, values)
}

/// Reads the whole map with LOOKUP_BATCH in chunks of `chunk`, growing on ENOSPC.
fn batch_dump(m: &MapFd, chunk: usize) -> Vec<(u32, u64)> {
    let sizes = map::ElemSizes::of(m).unwrap();
    let mut cursor = map::BatchCursor::new(&sizes);
    let (mut keys, mut values) = (vec![0u8; chunk * 4], vec![0u8; chunk * 8]);
    let mut out = Vec::new();
    while !cursor.is_done() {
        match map::lookup_batch(m, &sizes, &mut cursor, &mut keys, &mut values) {
            Ok(n) => {
                for i in 0..n {
                    let k = u32::from_ne_bytes(keys[i * 4..i * 4 + 4].try_into().unwrap());
                    let v = u64::from_ne_bytes(values[i * 8..i * 8 + 8].try_into().unwrap());
                    out.push((k, v));
                }
            }
            Err(e) if e.errno() == Some(libc::ENOSPC) => {
                keys.resize(keys.len() * 2, 0);
                values.resize(values.len() * 2, 0);
            }
            Err(e) => panic!("lookup batch: {e}"),
        }
    }
    out.sort();
    out
}

#[test]
fn update_batch_then_lookup_batch_returns_every_entry_once() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 5000, "msys_batch");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let (keys, values) = packed(5000);
    assert_eq!(
        map::update_batch(&m, &sizes, &keys, &values, map::update::ANY).unwrap(),
        5000
    );
    // A chunk of 1 makes hash buckets with two entries overflow: ENOSPC, then retry.
    for chunk in [1, 7, 1000, 8192] {
        let got = batch_dump(&m, chunk);
        assert_eq!(got.len(), 5000, "chunk {chunk}");
        assert!(got.iter().all(|&(k, v)| v == k as u64 * 7));
    }
}

#[test]
fn delete_batch_removes_exactly_the_given_keys() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 100, "msys_delb");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let (keys, values) = packed(100);
    map::update_batch(&m, &sizes, &keys, &values, 0).unwrap();
    assert_eq!(map::delete_batch(&m, &sizes, &keys[..40 * 4]).unwrap(), 40);
    let left = batch_dump(&m, 64);
    assert_eq!(left.len(), 60);
    assert_eq!(left[0].0, 40);
    let err = map::delete_batch(&m, &sizes, &keys[..4]).unwrap_err();
    assert_eq!((err.done, err.error.errno()), (0, Some(libc::ENOENT)));
}

#[test]
fn update_batch_stopping_part_way_reports_how_many_were_written() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Array, 4, 8, 5, "msys_partial");
    let sizes = map::ElemSizes::of(&m).unwrap();
    // Keys 0..10 into a 5-slot array: index 5 is out of range.
    let (keys, values) = packed(10);
    let err = map::update_batch(&m, &sizes, &keys, &values, map::update::ANY).unwrap_err();
    assert_eq!(err.done, 5, "{}", err.error);
    assert_eq!(err.error.errno(), Some(libc::E2BIG));
    assert_eq!(err.error.op, "BPF_MAP_UPDATE_BATCH");
}

#[test]
fn update_batch_refuses_exist_flags_before_writing_anything() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 10, "msys_noexist");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let (keys, values) = packed(3);
    let err = map::update_batch(&m, &sizes, &keys, &values, map::update::NOEXIST).unwrap_err();
    assert_eq!((err.done, err.error.errno()), (0, Some(libc::EINVAL)));
    assert!(batch_dump(&m, 8).is_empty());
}

#[test]
fn batch_buffers_without_a_whole_element_are_refused_before_the_kernel() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 10, "msys_small");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let err = map::update_batch(&m, &sizes, &[0; 4], &[0; 7], 0).unwrap_err();
    assert_eq!(err.error.source.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn percpu_sizes_round_each_cpu_value_up_to_eight_bytes() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::PercpuArray, 4, 4, 2, "msys_pcpu");
    let sizes = map::ElemSizes::of(&m).unwrap();
    let cpus = sys::possible_cpus().unwrap();
    assert_eq!(
        (sizes.cpu_stride(), sizes.cpus(), sizes.value()),
        (8, cpus, 8 * cpus)
    );
    let mut value = vec![0u8; sizes.value()];
    for cpu in 0..cpus {
        value[cpu * 8..cpu * 8 + 4].copy_from_slice(&(cpu as u32 + 10).to_ne_bytes());
    }
    map::update(&m, &1u32.to_ne_bytes(), &value, 0).unwrap();
    let mut back = vec![0u8; sizes.value()];
    map::lookup(&m, &1u32.to_ne_bytes(), &mut back, 0).unwrap();
    assert_eq!(back, value);
}

#[test]
fn lookup_and_delete_takes_the_entry_out() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Hash, 4, 8, 4, "msys_lad");
    map::update(&m, &3u32.to_ne_bytes(), &33u64.to_ne_bytes(), 0).unwrap();
    let mut v = [0u8; 8];
    map::lookup_and_delete(&m, &3u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 33);
    assert!(map::lookup(&m, &3u32.to_ne_bytes(), &mut v, 0)
        .unwrap_err()
        .is_not_found());
}

#[test]
fn queue_pops_in_order_and_stack_in_reverse() {
    tcbpf_testkit::require_root!();
    let q = create(tcbpf::abi::MapType::Queue, 0, 4, 8, "msys_q");
    let s = create(tcbpf::abi::MapType::Stack, 0, 4, 8, "msys_s");
    for v in [1u32, 2, 3] {
        map::push(&q, &v.to_ne_bytes(), 0).unwrap();
        map::push(&s, &v.to_ne_bytes(), 0).unwrap();
    }
    let mut v = [0u8; 4];
    map::peek(&q, &mut v).unwrap();
    assert_eq!(u32::from_ne_bytes(v), 1);
    let mut order = (vec![], vec![]);
    for _ in 0..3 {
        map::pop(&q, &mut v).unwrap();
        order.0.push(u32::from_ne_bytes(v));
        map::pop(&s, &mut v).unwrap();
        order.1.push(u32::from_ne_bytes(v));
    }
    assert_eq!(order, (vec![1, 2, 3], vec![3, 2, 1]));
    assert!(map::pop(&q, &mut v).unwrap_err().is_not_found());
}

#[test]
fn frozen_map_refuses_writes_and_fdinfo_says_so() {
    tcbpf_testkit::require_root!();
    let m = create(tcbpf::abi::MapType::Array, 4, 8, 4, "msys_frz");
    let before = sys::info::map_fdinfo(&m).unwrap();
    assert!(!before.frozen);
    assert!(before.memlock > 0);
    map::freeze(&m).unwrap();
    assert!(sys::info::map_fdinfo(&m).unwrap().frozen);
    let err = map::update(&m, &0u32.to_ne_bytes(), &1u64.to_ne_bytes(), 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM));
}

#[test]
fn lpm_trie_walks_by_batch_too() {
    tcbpf_testkit::require_root!();
    let m = map::create(&map::MapCreate {
        map_type: tcbpf::abi::MapType::LpmTrie as u32,
        key_size: 8,
        value_size: 8,
        max_entries: 4,
        map_flags: tcbpf::abi::map_flags::NO_PREALLOC,
        name: "msys_lpm",
        ..Default::default()
    })
    .unwrap();
    let mut key = 24u32.to_ne_bytes().to_vec();
    key.extend_from_slice(&[10, 1, 2, 0]);
    map::update(&m, &key, &5u64.to_ne_bytes(), 0).unwrap();
    let sizes = map::ElemSizes::of(&m).unwrap();
    let mut cursor = map::BatchCursor::new(&sizes);
    let (mut k, mut v) = ([0u8; 64], [0u8; 64]);
    let n = map::lookup_batch(&m, &sizes, &mut cursor, &mut k, &mut v).unwrap();
    assert_eq!(
        (n, &k[..8], &v[..8]),
        (1, key.as_slice(), 5u64.to_ne_bytes().as_slice())
    );
}

//! `tcbpf::front`, the vocabulary the three binaries share, against the
//! real kernel (run as root): MAP words opened into a `Map`, and its one
//! streaming batch walk over every entry on each of its three paths (the
//! calling thread, a walker thread for large maps, GET_NEXT_KEY where the
//! map type has no batch command).

use std::collections::BTreeMap;
use tcbpf::front::{words::split, Map, MapRef};
use tcbpf::sys::{map, MapFd};
use tcbpf::ErrorKind;

fn create(map_type: tcbpf::abi::MapType, key: u32, value: u32, entries: u32, flags: u32) -> MapFd {
    map::create(&map::MapCreate {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: entries,
        map_flags: flags,
        name: "front_walk",
        ..Default::default()
    })
    .expect("create map")
}

/// Every entry the walk gives, as key → value bytes, with the number of
/// times a key came (must be once).
fn walked(m: &Map) -> BTreeMap<Vec<u8>, (Vec<u8>, usize)> {
    let (ks, vs) = (m.sizes.key(), m.sizes.value());
    let mut out: BTreeMap<Vec<u8>, (Vec<u8>, usize)> = BTreeMap::new();
    m.for_each_batch(|keys, values, n| {
        for i in 0..n {
            let e = out
                .entry(keys[i * ks..(i + 1) * ks].to_vec())
                .or_insert((Vec::new(), 0));
            e.0 = values[i * vs..(i + 1) * vs].to_vec();
            e.1 += 1;
        }
        Ok::<(), tcbpf::sys::Error>(())
    })
    .expect("walk");
    out
}

fn opened(fd: &MapFd) -> Map {
    let id = tcbpf::sys::info::map_info(fd).unwrap().id;
    // The id as hex words: the form every binary takes.
    Map::parse_read(&mut split(&format!("id {id:#x}"))).expect("open by id in hex")
}

#[test]
fn the_walk_gives_every_entry_once_on_the_calling_thread_and_on_a_walker_thread() {
    tcbpf_testkit::require_root!();
    // 100 entries walk on this thread; 40,000 (over 1 << 14) on a walker thread.
    for n in [100u32, 40_000] {
        let fd = create(tcbpf::abi::MapType::Hash, 4, 8, n, 0);
        let sizes = map::ElemSizes::of(&fd).unwrap();
        let keys: Vec<u8> = (0..n).flat_map(|k| k.to_ne_bytes()).collect();
        let values: Vec<u8> = (0..n)
            .flat_map(|k| (u64::from(k) * 3).to_ne_bytes())
            .collect();
        map::update_batch(&fd, &sizes, &keys, &values, 0).unwrap();
        let m = opened(&fd);
        assert_eq!(m.label, format!("id {}", m.info.id));
        let got = walked(&m);
        assert_eq!(got.len(), n as usize);
        for (k, (v, times)) in &got {
            let k = u32::from_ne_bytes(k[..].try_into().unwrap());
            assert_eq!(*times, 1, "key {k}");
            assert_eq!(
                u64::from_ne_bytes(v[..].try_into().unwrap()),
                u64::from(k) * 3
            );
        }
    }
}

#[test]
fn the_walk_falls_back_to_next_key_for_a_map_type_without_batch() {
    tcbpf_testkit::require_root!();
    // A devmap (index → ifindex) has no LOOKUP_BATCH; lo is ifindex 1.
    let fd = create(tcbpf::abi::MapType::Devmap, 4, 4, 8, 0);
    for i in [0u32, 3, 5] {
        map::update(&fd, &i.to_ne_bytes(), &1u32.to_ne_bytes(), 0).unwrap();
    }
    // The kernel has no batch walk for it: the per-element path runs.
    let sizes = map::ElemSizes::of(&fd).unwrap();
    let mut cursor = map::BatchCursor::new(&sizes);
    let (mut k, mut v) = (vec![0u8; 8 * 4], vec![0u8; 8 * 4]);
    let e = map::lookup_batch(&fd, &sizes, &mut cursor, &mut k, &mut v).unwrap_err();
    assert!(map::is_unsupported(&e), "{e}");
    let got = walked(&opened(&fd));
    let keys: Vec<u32> = got
        .keys()
        .map(|k| u32::from_ne_bytes(k[..].try_into().unwrap()))
        .collect();
    assert_eq!(keys, [0, 3, 5]);
    assert!(got
        .values()
        .all(|(v, times)| *times == 1 && v[..] == 1u32.to_ne_bytes()));
}

#[test]
fn opening_names_the_map_words_and_says_the_kind() {
    tcbpf_testkit::require_root!();
    let e = Map::open(&MapRef::Id(0x7fff_fff0), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.message.starts_with("id 2147483632: "), "{}", e.message);
    let dir = tcbpf_testkit::TempDir::new("front");
    let e = Map::open(&MapRef::Pinned(dir.0.clone()), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{}", e.message);
    assert!(e.message.contains("not a bpf map"), "{}", e.message);
    let stale = dir.0.join("keeper.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let r = MapRef::Keeper(stale.clone(), "set/m".into());
    let e = Map::open(&r, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotListening, "{}", e.message);
    assert!(e.message.starts_with(&r.to_string()), "{}", e.message);
    // A word of help where a value goes is a request for the usage.
    assert!(Map::parse(&mut split("pinned help")).unwrap_err().help);
}

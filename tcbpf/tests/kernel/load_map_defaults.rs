//! Map defaults libbpf applies, applied by tcbpf too and compared with
//! `bpftool prog load` of the same object (`bpf/events.c`): a perf event
//! array without max_entries sized to the possible CPUs, a ring buffer of
//! 3 pages rounded up to 4; both created without BTF key/value types.

use std::process::Command;
use tcbpf::load;
use tcbpf::load::map_defaults::{count_cpu_list, POSSIBLE_CPUS};
use tcbpf::sys::{self, info};
use tcbpf_testkit::*;

fn map_info_of(prog: &sys::ProgFd, name: &str) -> info::MapInfo {
    for id in info::prog_info(prog).unwrap().map_ids {
        let m = sys::obj::map_by_id(id, 0).unwrap();
        let i = info::map_info(&m).unwrap();
        if i.name == name {
            return i;
        }
    }
    panic!("no map {name}");
}

#[test]
fn perf_array_and_ring_buffer_get_libbpfs_sizes() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let file = fixture("events.o");
    let ours = load::load_file(&file, &fs.options()).unwrap();
    let pin = fs.join("bpftool_events");
    let out = Command::new("bpftool")
        .args(["prog", "load", s(&file), s(&pin)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = sys::obj::get_pinned_prog(&pin).unwrap();

    let cpus = count_cpu_list(&std::fs::read_to_string(POSSIBLE_CPUS).unwrap()).unwrap();
    let pa = info::map_info(&ours.map("pa").unwrap().fd).unwrap();
    assert_eq!(pa.max_entries, cpus, "one slot per possible CPU");
    let rb = info::map_info(&ours.map("rb").unwrap().fd).unwrap();
    assert_eq!(rb.max_entries, 4 * sys::ringbuf::page_size() as u32);
    for (mine, name) in [(&pa, "pa"), (&rb, "rb")] {
        let libbpf = map_info_of(&theirs, name);
        assert_eq!(
            (
                mine.map_type,
                mine.key_size,
                mine.value_size,
                mine.max_entries
            ),
            (
                libbpf.map_type,
                libbpf.key_size,
                libbpf.value_size,
                libbpf.max_entries
            ),
            "{name} as libbpf creates it"
        );
        assert_eq!(mine.btf_value_type_id, 0, "{name}: no BTF value type");
    }
    assert!(
        !ours.notes.iter().any(|n| n.contains("refused its BTF")),
        "no BTF retry needed: {:?}",
        ours.notes
    );
}

//! The loader's map memory estimate against the kernel: every map of every
//! test object, created by the loader, costs what `map_memory_estimate`
//! says, as the kernel reports it (`memlock` in the map's fdinfo), within
//! 5 % or 4 KiB; a flow agent shaped like netobserv's (six no-prealloc
//! hashes of 2^24 entries) loads; the huge preallocated map stays refused.

use crate::load_common;

use load_common::*;
use std::collections::BTreeSet;
use tcbpf::abi::MapType;
use tcbpf::load::{load_file, map_memory_estimate, LoadOptions, LoadedObject};
use tcbpf::sys;

/// Objects the loader refuses on purpose (bad input, an extern this kernel
/// lacks, a map over the memory limit, a program the verifier rejects),
/// and `dump` (`tcbpf dump`'s fentry/fexit/tp_btf programs: they load only
/// with `LoadOptions::trace_target`, which this test does not give; the
/// trace tests load it on its targets).
const NOT_LOADABLE: &[&str] = &[
    "deep_calls",
    "dump",
    "ext_kconfig_strong",
    "ext_kfunc_proto",
    "ext_ksym_typed",
    "ext_strong_kfunc",
    "huge_map",
    "legacy_65maps",
    "reject",
    "upgrade_badmap",
    "upgrade_unverifiable",
];

/// How far the estimate may be from the kernel's figure: 5 % of it, or
/// 4 KiB for maps whose size is mostly fixed overhead.
fn close(estimate: u128, kernel: u64) -> bool {
    let kernel = u128::from(kernel);
    estimate.abs_diff(kernel) <= (kernel / 20).max(4096)
}

fn cpus() -> usize {
    sys::possible_cpus().unwrap()
}

/// `(map, type, estimate, memlock)` for each map of `obj`; an outer map is
/// estimated without its inner map (the kernel charges that one apart).
fn compare(obj: &LoadedObject) -> Vec<(String, MapType, u128, u64)> {
    obj.maps
        .iter()
        .map(|m| {
            let mut spec = m.spec.clone();
            spec.inner = None;
            let kernel = sys::info::map_fdinfo(&m.fd).unwrap().memlock;
            (
                m.spec.name.clone(),
                m.spec.map_type,
                map_memory_estimate(&spec, cpus()),
                kernel,
            )
        })
        .collect()
}

/// Loads `bpf/NAME.o` into `fs`, its first program as the main one (of
/// type `act` when its section is `action`).
fn load(fs: &Bpffs, name: &str) -> Result<LoadedObject, tcbpf::load::LoadError> {
    let spec = tcbpf::elf::ObjectSpec::from_file(&fixture(name))?;
    let first = spec.programs.first().expect("a program");
    let opts = LoadOptions {
        program: Some(first.name.clone()),
        // The kind its section names (`action`, `xdp`…), else a classifier.
        prog_type: tcbpf::abi::section_by_name(&first.section)
            .and_then(|s| tcbpf::load::ProgKind::from_word(s.word))
            .unwrap_or_default(),
        ..fs.options()
    };
    load_file(&fixture(name), &opts)
}

#[test]
fn every_map_of_every_test_object_costs_what_the_estimate_says() {
    tcbpf_testkit::require_root!();
    let mut objects: Vec<String> = std::fs::read_dir(tcbpf_testkit::fixture(""))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".o").map(str::to_string)
        })
        .filter(|n| !NOT_LOADABLE.contains(&n.as_str()) && n != "flow_agent")
        .collect();
    objects.sort();
    let mut types = BTreeSet::new();
    let mut far = Vec::new();
    let mut rows = 0;
    for name in &objects {
        let fs = Bpffs::new();
        let obj = load(&fs, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (map, ty, estimate, kernel) in compare(&obj) {
            eprintln!("{name:>20} {map:>24} {ty:>18} estimate {estimate:>9} memlock {kernel:>9}");
            rows += 1;
            types.insert(ty.to_string());
            if !close(estimate, kernel) {
                far.push(format!(
                    "{name}: {map} ({ty}): estimate {estimate}, kernel {kernel}"
                ));
            }
        }
    }
    assert!(far.is_empty(), "{far:#?}");
    assert!(rows > 100, "{rows} maps compared");
    let want = [
        "array",
        "percpu_array",
        "prog_array",
        "perf_event_array",
        "array_of_maps",
        "hash",
        "percpu_hash",
        "lru_hash",
        "lru_percpu_hash",
        "hash_of_maps",
        "lpm_trie",
        "ringbuf",
        "user_ringbuf",
        "queue",
        "stack",
        "bloom_filter",
        "stack_trace",
        "sockhash",
        "sockmap",
        "devmap",
        "devmap_hash",
        "xskmap",
        "cgroup_array",
        "sk_storage",
    ];
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|t| !types.contains(*t))
        .collect();
    assert!(missing.is_empty(), "no test object has {missing:?}");
}

#[test]
fn a_flow_agent_with_six_no_prealloc_hashes_of_16m_entries_loads_and_costs_its_estimate() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    // 2 GiB: room for the buckets (about 1.6 GB), not for 22 GB of
    // elements counted as preallocated.
    let opts = LoadOptions {
        max_map_memory: Some(2 << 30),
        ..fs.options()
    };
    let obj = load_file(&fixture("flow_agent"), &opts).unwrap();
    let rows = compare(&obj);
    let flows: Vec<&(String, MapType, u128, u64)> = rows
        .iter()
        .filter(|(_, ty, ..)| *ty == MapType::Hash)
        .collect();
    assert_eq!(flows.len(), 6);
    for (map, ty, estimate, kernel) in &rows {
        eprintln!("{map:>24} {ty:>14} estimate {estimate:>10} memlock {kernel:>10}");
        assert!(close(*estimate, *kernel), "{map}: {estimate} vs {kernel}");
    }
    let total_estimate: u128 = rows.iter().map(|r| r.2).sum();
    let total_kernel: u64 = rows.iter().map(|r| r.3).sum();
    eprintln!("total: estimate {total_estimate}, memlock {total_kernel}");
    assert!(close(total_estimate, total_kernel));
    assert!(
        total_kernel > 1 << 30,
        "six tables of 2^24 buckets: over 1 GiB"
    );
    // The agent works: a packet makes its flow.
    let entry = &obj.main_program().fd;
    assert_eq!(run(entry, &ipv4_packet(17)), 0, "TC_ACT_OK");
    let info = sys::info::map_fdinfo(&obj.map("aggregated_flows").unwrap().fd).unwrap();
    assert!(
        u128::from(info.memlock) > rows[1].2,
        "one element inserted: {} > {}",
        info.memlock,
        rows[1].2
    );
}

#[test]
fn a_huge_preallocated_map_is_still_refused_before_any_map_is_created() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    // Even a limit of 100 GB does not let 2^27 preallocated 4 KB values in.
    let opts = LoadOptions {
        max_map_memory: Some(100_000_000_000),
        ..fs.options()
    };
    let err = load_file(&fixture("huge_map"), &opts).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("map 'huge'") && text.contains("134217728 entries"),
        "{text}"
    );
    assert!(err.is_bad_input());
}

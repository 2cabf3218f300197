//! `bpf/dump.o` on kernel tracepoints instead of a tc program, for tests
//! on kernels that refuse BPF trampolines: dump_entry as a `tp_btf`
//! program on `net_dev_queue` (its first argument the `struct sk_buff *`,
//! as for fentry on a tc program) and dump_exit on `net_dev_xmit` (`skb`,
//! then the int result, as fexit's `skb, ret`). Everything but the
//! trampoline is what `tcbpf dump` runs. Dropping it detaches both.

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use tcbpf::abi::{AttachType, Insn};
use tcbpf::elf::{MapOrigin, ObjectSpec};
use tcbpf::load::{self, LoadOptions, LoadedObject, ObjectIdentity, TraceTarget};
use tcbpf::sys::{link, LinkFd, MapFd};

/// The committed tracing object.
pub const DUMP_O: &[u8] = include_bytes!("../../bpf/dump.o");

/// The id of typedef `name` in the kernel's BTF, as bpftool lists it
/// (`[ID] TYPEDEF 'name' type_id=…`).
pub fn vmlinux_typedef(name: &str) -> u32 {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .expect("bpftool");
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("] TYPEDEF '{name}' ");
    text.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no typedef {name} in vmlinux BTF"))
}

/// dump.o's programs on the egress tracepoints of device `ifindex` (of any
/// namespace: other tests' devices may share the number, so give a filter).
pub struct TracepointDump {
    /// dump_events, dump_stash, dump_counters.
    pub shared: Vec<(String, Arc<MapFd>)>,
    /// The two links (entry, exit).
    pub links: Vec<LinkFd>,
    /// The two loads (entry, exit).
    pub objects: Vec<LoadedObject>,
}

impl TracepointDump {
    /// Loads and attaches, with `struct dump_config` {target 0, ifindex,
    /// any direction, snaplen, filter_snap 256, the filter when given,
    /// only `verdict` kept when it is set}.
    pub fn attach(
        ifindex: u32,
        snaplen: u32,
        filter: Option<Vec<Insn>>,
        verdict: Option<i32>,
    ) -> TracepointDump {
        TracepointDump::attach_with_ring(ifindex, snaplen, filter, verdict, None)
    }

    /// As [`TracepointDump::attach`], with a ring buffer of `ring_bytes`.
    pub fn attach_with_ring(
        ifindex: u32,
        snaplen: u32,
        filter: Option<Vec<Insn>>,
        verdict: Option<i32>,
        ring_bytes: Option<u32>,
    ) -> TracepointDump {
        let object = DUMP_O.to_vec();
        let mut spec = ObjectSpec::parse("dump.o", &object).unwrap();
        if let Some(bytes) = ring_bytes {
            let ring = spec
                .maps
                .iter_mut()
                .find(|m| m.name == "dump_events")
                .unwrap();
            ring.max_entries = bytes;
        }
        for p in spec.programs.iter_mut() {
            match p.name.as_str() {
                "dump_entry" => {
                    p.section = "tp_btf/net_dev_queue".into();
                    if let Some(body) = &filter {
                        p.replace_last_function("dump_filter", body.clone())
                            .unwrap();
                    }
                }
                "dump_exit" => p.section = "tp_btf/net_dev_xmit".into(),
                _ => {}
            }
        }
        let bss = spec
            .maps
            .iter()
            .position(|m| m.origin == MapOrigin::GlobalData && m.name.ends_with(".bss"))
            .unwrap();
        let words: [u32; 8] = [
            0,
            ifindex,
            0,
            snaplen,
            snaplen.max(256),
            u32::from(filter.is_some()),
            u32::from(verdict.is_some()),
            verdict.unwrap_or(0) as u32,
        ];
        spec.maps[bss].data = Some(words.iter().flat_map(|w| w.to_ne_bytes()).collect());
        let identity = ObjectIdentity {
            path: "dump.o".into(),
            sha1_hex: String::new(),
            dev: 0,
            ino: 0,
        };
        let load_one = |program: &str, tp: &str, shared: Vec<(String, Arc<MapFd>)>| {
            load::load_spec(
                &spec,
                &identity,
                &LoadOptions {
                    program: Some(program.into()),
                    trace_target: Some(TraceTarget {
                        prog: None,
                        func_type_id: vmlinux_typedef(tp),
                    }),
                    shared_maps: shared,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{program}: {e}"))
        };
        let entry = load_one("dump_entry", "btf_trace_net_dev_queue", Vec::new());
        let shared: Vec<(String, Arc<MapFd>)> = ["dump_events", "dump_stash", "dump_counters"]
            .iter()
            .map(|n| {
                let m = entry.map(n).unwrap();
                (n.to_string(), Arc::new(m.fd.try_clone().unwrap()))
            })
            .collect();
        let exit = load_one("dump_exit", "btf_trace_net_dev_xmit", shared.clone());
        let links = [&entry, &exit]
            .iter()
            .map(|o| {
                link::create(&link::LinkCreate {
                    prog: o.main_program().fd.as_fd(),
                    target_ifindex: 0,
                    attach_type: AttachType::TraceRawTp as u32,
                    flags: 0,
                    relative: 0,
                    expected_revision: 0,
                })
                .unwrap()
            })
            .collect();
        TracepointDump {
            shared,
            links,
            objects: vec![entry, exit],
        }
    }

    /// The ring buffer.
    pub fn ring(&self) -> &MapFd {
        &self.shared[0].1
    }

    /// The counters map.
    pub fn counters(&self) -> &MapFd {
        &self.shared[2].1
    }

    /// `struct dump_counts` of target 0, summed over CPUs: seen, filtered,
    /// skipped, written, lost.
    pub fn counts(&self) -> [u64; 5] {
        let cpus = tcbpf::sys::possible_cpus().unwrap();
        let mut v = vec![0u8; 40 * cpus];
        tcbpf::sys::map::lookup(self.counters(), &0u32.to_ne_bytes(), &mut v, 0).unwrap();
        let mut out = [0u64; 5];
        for c in v.chunks_exact(40) {
            for (i, o) in out.iter_mut().enumerate() {
                *o += u64::from_ne_bytes(c[i * 8..i * 8 + 8].try_into().unwrap());
            }
        }
        out
    }
}

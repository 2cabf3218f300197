//! Shared fixtures for the tc tests: a network namespace and a bpffs mount
//! that clean themselves up (Drop guards), a veth pair between two
//! namespaces, hand-assembled classifiers, and a UDP sender/receiver that
//! run inside namespaces.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tcbpf::sys::prog::{self, Insn};
use tcbpf::sys::{map, MapFd, ProgFd};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `PREFIX-PID-N`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("tcbpf-t");
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// Runs `f` on a thread that entered this namespace (only the network
    /// namespace: pins stay visible).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                tcbpf::tc::netns::enter(&self.name).expect("enter netns");
                f()
            })
            .join()
            .expect("thread in netns panicked")
        })
    }

    /// `ip -n NS ARGS…`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces joined by a veth pair: `v0` (10.77.0.1) in `a`, `v1`
/// (10.77.0.2) in `b`.
pub struct VethPair {
    pub a: Netns,
    pub b: Netns,
}

pub const ADDR_A: &str = "10.77.0.1";
pub const ADDR_B: &str = "10.77.0.2";

impl VethPair {
    pub fn new() -> VethPair {
        let a = Netns::new();
        let b = Netns::new();
        a.ip(&[
            "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", &b.name,
        ]);
        a.ip(&["addr", "add", &format!("{ADDR_A}/24"), "dev", "v0"]);
        b.ip(&["addr", "add", &format!("{ADDR_B}/24"), "dev", "v1"]);
        a.ip(&["link", "set", "v0", "up"]);
        b.ip(&["link", "set", "v1", "up"]);
        VethPair { a, b }
    }

    /// Sends `count` UDP datagrams from `a` to `b`'s `port` and returns how
    /// many the receiver in `b` got (it waits up to a second for stragglers).
    pub fn send_udp(&self, port: u16, count: usize) -> usize {
        let receiver = self.b.run(|| {
            let s = UdpSocket::bind((ADDR_B, port)).expect("bind receiver");
            s.set_read_timeout(Some(Duration::from_millis(1000)))
                .unwrap();
            s
        });
        self.a.run(|| {
            let s = UdpSocket::bind((ADDR_A, 0)).expect("bind sender");
            let to: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
            for i in 0..count {
                s.send_to(format!("packet {i}").as_bytes(), to)
                    .expect("send");
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let mut got = 0;
        let mut buf = [0u8; 64];
        while receiver.recv_from(&mut buf).is_ok() {
            got += 1;
        }
        got
    }
}

/// A bpffs mounted on a fresh directory under /tmp, unmounted on drop.
pub struct Bpffs {
    pub dir: PathBuf,
}

impl Bpffs {
    pub fn new() -> Bpffs {
        let dir = std::env::temp_dir().join(unique("tcbpf-bpffs-"));
        std::fs::create_dir_all(&dir).unwrap();
        run("mount", &["-t", "bpf", "bpf", dir.to_str().unwrap()]);
        Bpffs { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const EXIT: u8 = 0x95;
const MOV64_IMM: u8 = 0xb7;
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;
const CALL: u8 = 0x85;
const JNE_IMM: u8 = 0x55;
const JEQ_IMM: u8 = 0x15;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const ST_W: u8 = 0x62;
const LD_IMM64: u8 = 0x18;
const ATOMIC_DW: u8 = 0xdb;
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_SKB_LOAD_BYTES: i32 = 26;

/// `TC_ACT_OK` / `TCX_PASS`.
pub const PASS: i32 = 0;
/// `TC_ACT_SHOT` / `TCX_DROP`.
pub const SHOT: i32 = 2;

fn load(insns: &[Insn], name: &str) -> ProgFd {
    prog::load(&prog::ProgLoad {
        prog_type: prog::prog_type::SCHED_CLS,
        insns,
        license: "GPL",
        name,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("load {name}: {e}\n{}", e.log))
    .fd
}

/// A classifier that returns `verdict` for every packet.
pub fn constant_prog(verdict: i32) -> ProgFd {
    load(
        &[insn(MOV64_IMM, 0, 0, 0, verdict), insn(EXIT, 0, 0, 0, 0)],
        "tc_const",
    )
}

/// A one-entry array map of u64 counters.
pub fn counter_map() -> MapFd {
    map::create(&map::MapCreate {
        map_type: map::MapType::Array as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        name: "tc_counter",
        ..Default::default()
    })
    .expect("create counter map")
}

/// The counter in `m`.
pub fn read_counter(m: &MapFd) -> u64 {
    let mut v = [0u8; 8];
    map::lookup(m, &0u32.to_ne_bytes(), &mut v, 0).expect("lookup counter");
    u64::from_ne_bytes(v)
}

/// A classifier that counts IPv4 UDP packets to `port` into `counter`
/// (atomically) and returns `verdict` for those; every other packet passes.
pub fn udp_counter_prog(counter: &MapFd, port: u16, verdict: i32) -> ProgFd {
    use std::os::fd::AsRawFd;
    let fd = counter.as_fd().as_raw_fd();
    let port_le = port.swap_bytes() as i32; // the two wire bytes read as a u16
    let insns = [
        insn(MOV64_REG, 6, 1, 0, 0),     // r6 = skb
        insn(LDX_W, 1, 6, 16, 0),        // r1 = skb->protocol (be16)
        insn(JNE_IMM, 1, 0, 29, 0x0008), // not IPv4 -> pass
        insn(MOV64_REG, 1, 6, 0, 0),     // r1 = skb
        insn(MOV64_IMM, 2, 0, 0, 23),    // offset of the IP protocol
        insn(MOV64_REG, 3, 10, 0, 0),    // r3 = fp
        insn(ADD64_IMM, 3, 0, 0, -8),    // r3 = fp - 8
        insn(MOV64_IMM, 4, 0, 0, 1),     // one byte
        insn(CALL, 0, 0, 0, HELPER_SKB_LOAD_BYTES),
        insn(JNE_IMM, 0, 0, 22, 0), // error -> pass
        insn(LDX_B, 1, 10, -8, 0),
        insn(JNE_IMM, 1, 0, 20, 17), // not UDP -> pass
        insn(MOV64_REG, 1, 6, 0, 0),
        insn(MOV64_IMM, 2, 0, 0, 36), // UDP destination port (IHL 5)
        insn(MOV64_REG, 3, 10, 0, 0),
        insn(ADD64_IMM, 3, 0, 0, -8),
        insn(MOV64_IMM, 4, 0, 0, 2),
        insn(CALL, 0, 0, 0, HELPER_SKB_LOAD_BYTES),
        insn(JNE_IMM, 0, 0, 13, 0),
        insn(LDX_H, 1, 10, -8, 0),
        insn(JNE_IMM, 1, 0, 11, port_le), // other port -> pass
        insn(ST_W, 10, 0, -4, 0),         // key 0 at fp-4
        insn(MOV64_REG, 2, 10, 0, 0),
        insn(ADD64_IMM, 2, 0, 0, -4),
        insn(LD_IMM64, 1, 1, 0, fd), // r1 = map (BPF_PSEUDO_MAP_FD)
        insn(0, 0, 0, 0, 0),
        insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP),
        insn(JEQ_IMM, 0, 0, 2, 0), // no value -> verdict
        insn(MOV64_IMM, 1, 0, 0, 1),
        insn(ATOMIC_DW, 0, 1, 0, 0), // lock *(u64 *)(r0) += r1
        insn(MOV64_IMM, 0, 0, 0, verdict),
        insn(EXIT, 0, 0, 0, 0),
        insn(MOV64_IMM, 0, 0, 0, PASS), // pass
        insn(EXIT, 0, 0, 0, 0),
    ];
    load(&insns, "tc_udp_count")
}

/// The path of a pin, as a str.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

//! Externs resolved by the loader as libbpf resolves them, checked on the
//! real kernel: each fixture (`bpf/ext_*.c`) is loaded by tcbpf and by
//! `bpftool prog load` (libbpf), attached to a veth in namespaces the test
//! creates, fed real UDP datagrams, and what the classifier computed is
//! read from its maps and compared with the kernel's own answers (config,
//! uname, kallsyms, vmlinux BTF) and with the libbpf-loaded copy.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use tcbpf::attach::cls_bpf::{self as filter, FilterSpec, Mode};
use tcbpf::elf::ObjectSpec;
use tcbpf::load::externs::{self, Resolved};
use tcbpf::load::{self, LoadError};
use tcbpf::sys::{self, info, MapFd, ProgFd};
use tcbpf::tc::{device, Protocol, Socket, TcHandle};
use tcbpf_testkit::*;

fn obj(name: &str) -> std::path::PathBuf {
    fixture(&format!("{name}.o"))
}

/// Attaches `prog` at v1's ingress (in `b`), sends `count` datagrams from
/// `a`, and checks they all arrived.
fn feed(pair: &VethPair, prog: &ProgFd, count: usize) {
    pair.b.run(|| {
        let sock = Socket::open().unwrap();
        let ifindex = device::ifindex(&sock, "v1").unwrap();
        let spec = FilterSpec {
            ifindex,
            parent: TcHandle::INGRESS,
            pref: 1,
            handle: 1,
            protocol: Protocol::ALL,
            chain: None,
            prog: prog.as_fd().into(),
            name: "ext.o:[classifier]".into(),
            skip_flags: 0,
            direct_action: true,
            classid: None,
            actions: Vec::new(),
        };
        filter::attach(&sock, &spec, Mode::Replace).unwrap();
    });
    assert_eq!(pair.send_udp(4300, count), count);
}

/// The map called `name` (or ending in `name`) that `prog` uses.
fn map_of(prog: &ProgFd, name: &str) -> MapFd {
    for id in info::prog_info(prog).unwrap().map_ids {
        let m = sys::obj::map_by_id(id, 0).unwrap();
        if info::map_info(&m).unwrap().name.ends_with(name) {
            return m;
        }
    }
    panic!("program has no map {name}");
}

fn u64_at(m: &MapFd, key: &[u8]) -> Option<u64> {
    let mut v = [0u8; 8];
    sys::map::lookup(m, key, &mut v, 0).ok()?;
    Some(u64::from_le_bytes(v))
}

fn array(m: &MapFd, n: u32) -> Vec<u64> {
    (0..n)
        .map(|k| u64_at(m, &k.to_le_bytes()).unwrap())
        .collect()
}

/// The fixture loaded by tcbpf (kept in the returned object).
fn tcbpf_load(fs: &Bpffs, name: &str) -> load::LoadedObject {
    let o = load::load_file(&obj(name), &fs.options())
        .unwrap_or_else(|e| panic!("tcbpf loads {name}: {e}"));
    // The extern declarations were sanitized as libbpf does: the kernel
    // took the object's BTF.
    assert!(o.btf.is_some(), "{name}: BTF refused: {:?}", o.notes);
    o
}

/// The fixture loaded by `bpftool prog load` (libbpf), pinned in `fs`.
fn bpftool_load(fs: &Bpffs, name: &str) -> ProgFd {
    let pin = fs.join(format!("bpftool_{name}"));
    let out = Command::new("bpftool")
        .args(["prog", "load", s(&obj(name)), s(&pin)])
        .output()
        .expect("bpftool");
    assert!(
        out.status.success(),
        "bpftool prog load {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sys::obj::get_pinned_prog(&pin).unwrap()
}

fn bpftool_fails(fs: &Bpffs, name: &str) -> String {
    let pin = fs.join(format!("bpftool_{name}"));
    let out = Command::new("bpftool")
        .args(["-d", "prog", "load", s(&obj(name)), s(&pin)])
        .output()
        .expect("bpftool");
    assert!(!out.status.success(), "bpftool loaded {name}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The kernel config, read independently of tcbpf (gzip).
fn config(name: &str) -> Option<String> {
    let out = Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

fn uname_version_code() -> u64 {
    let out = Command::new("uname").arg("-r").output().unwrap();
    let r = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = r
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    (nums[0] << 16) + (nums[1] << 8) + nums[2].min(255)
}

#[test]
fn kconfig_externs_hold_the_running_kernels_version_and_config() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ours = tcbpf_load(&fs, "ext_kconfig");
    feed(&pair, &ours.main_program().fd, 3);
    let got = array(&ours.map("out").unwrap().fd, 8);

    assert_eq!(got[0], uname_version_code(), "LINUX_KERNEL_VERSION");
    let tri = |v: Option<String>| match v.as_deref() {
        Some("y") => 1,
        Some("m") => 2,
        _ => 0,
    };
    assert_eq!(got[1], tri(config("CONFIG_BPF_SYSCALL")), "bool");
    assert_eq!(got[2], tri(config("CONFIG_NET_CLS_BPF")), "tristate");
    let hz: u64 = config("CONFIG_HZ").map_or(0, |v| v.parse().unwrap());
    assert!(hz > 0, "this kernel sets CONFIG_HZ");
    assert_eq!(got[3], hz, "int");
    let host = config("CONFIG_DEFAULT_HOSTNAME").unwrap();
    let mut want = [0u8; 8];
    let bytes = host.trim_matches('"').as_bytes();
    want[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    assert_eq!(got[4].to_le_bytes(), want, "string {host}");
    assert_eq!(got[5], 0, "weak absent bool is zero");
    assert_eq!(got[6], 0, "weak absent int is zero");
    assert!(got[7] > 0, "the classifier ran");

    // libbpf computes the same values into the same .kconfig layout.
    let theirs = bpftool_load(&fs, "ext_kconfig");
    feed(&pair, &theirs, 3);
    let libbpf = array(&map_of(&theirs, "out"), 7);
    assert_eq!(&got[..7], &libbpf[..]);
    let our_kconfig = &ours.map(".kconfig").unwrap().fd;
    let their_kconfig = map_of(&theirs, ".kconfig");
    let (a, b) = (
        info::map_info(our_kconfig).unwrap(),
        info::map_info(&their_kconfig).unwrap(),
    );
    assert_eq!(a.value_size, b.value_size, "same .kconfig layout size");
    assert_eq!(
        a.map_flags, b.map_flags,
        "read-only for programs, as libbpf"
    );
    let read = |m: &MapFd, n| {
        let mut v = vec![0u8; n as usize];
        sys::map::lookup(m, &0u32.to_le_bytes(), &mut v, 0).unwrap();
        v
    };
    assert_eq!(
        read(our_kconfig, a.value_size),
        read(&their_kconfig, b.value_size),
        "same .kconfig bytes"
    );
    assert!(sys::info::map_fdinfo(our_kconfig).unwrap().frozen);
    let err = sys::map::update(
        our_kconfig,
        &0u32.to_le_bytes(),
        &vec![0; a.value_size as usize],
        0,
    )
    .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM), "frozen: {err}");
}

#[test]
fn a_strong_kconfig_extern_the_kernel_lacks_is_an_error_naming_it() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let err = load::load_file(&obj("ext_kconfig_strong"), &fs.options()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LoadError::Invalid { .. }), "{text}");
    assert!(text.contains("CONFIG_TCBPF_NO_SUCH_STRONG"), "{text}");
    assert!(text.contains("not set in /proc/config.gz"), "{text}");
    assert!(err.is_bad_input());
    // libbpf refuses it too.
    assert!(bpftool_fails(&fs, "ext_kconfig_strong").contains("CONFIG_TCBPF_NO_SUCH_STRONG"));
    let left = pins_under(&fs.path);
    assert!(left.is_empty(), "nothing pinned: {left:?}");
}

/// Every pinned object under `dir`, at any depth. Directories and links
/// are not pins: iproute2's `tc`, run by another test on this machine
/// while /sys/fs/bpf is not a bpffs, adopts the first bpffs it finds in
/// /proc/mounts and makes its `tc`, `ip` and `xdp` entries there.
fn pins_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            found.extend(pins_under(&e.path()));
        } else if !kind.is_symlink() && !e.file_name().to_string_lossy().ends_with(".debug") {
            found.push(e.path());
        }
    }
    found
}

fn count_by_key(m: &MapFd, key: &[u8]) -> u64 {
    u64_at(m, key).unwrap_or(0)
}

#[test]
fn dynptr_slice_reads_the_ethertype_of_every_frame() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ours = tcbpf_load(&fs, "ext_dynptr");
    feed(&pair, &ours.main_program().fd, 7);
    let out = &ours.map("out").unwrap().fd;
    assert_eq!(
        count_by_key(out, &0x0800u32.to_le_bytes()),
        7,
        "IPv4 frames"
    );

    let theirs = bpftool_load(&fs, "ext_dynptr");
    feed(&pair, &theirs, 5);
    let m = map_of(&theirs, "out");
    assert_eq!(
        count_by_key(&m, &0x0800u32.to_le_bytes()),
        5,
        "libbpf's copy"
    );
}

#[test]
fn iter_num_loop_sums_one_to_ten_on_each_ipv4_frame() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ours = tcbpf_load(&fs, "ext_iter");
    // "packet N" (N < 10): 14 + 20 + 8 + 8 = 50 bytes; 55 + 50 % 7 = 56.
    feed(&pair, &ours.main_program().fd, 6);
    let out = &ours.map("out").unwrap().fd;
    assert_eq!(count_by_key(out, &56u64.to_le_bytes()), 6);
    let mut key = [0u8; 8];
    let mut keys = Vec::new();
    let mut prev: Option<[u8; 8]> = None;
    while sys::map::next_key(out, prev.as_ref().map(|k| &k[..]), &mut key).unwrap() {
        keys.push(u64::from_le_bytes(key));
        prev = Some(key);
    }
    assert_eq!(keys, vec![56], "no other sum");

    let theirs = bpftool_load(&fs, "ext_iter");
    feed(&pair, &theirs, 4);
    assert_eq!(
        count_by_key(&map_of(&theirs, "out"), &56u64.to_le_bytes()),
        4
    );
}

#[test]
fn a_weak_kfunc_the_kernel_lacks_does_not_exist_and_the_program_loads() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let spec = ObjectSpec::from_file(&obj("ext_weak_kfunc")).unwrap();
    let outcomes = externs::resolve(&spec);
    let by_name: Vec<(&str, bool)> = spec
        .externs
        .iter()
        .zip(&outcomes)
        .map(|(e, o)| (e.name.as_str(), o.is_ok()))
        .collect();
    assert_eq!(
        by_name,
        vec![
            ("bpf_dynptr_from_skb", true),
            ("tcbpf_no_such_kfunc", false)
        ]
    );
    let ours = tcbpf_load(&fs, "ext_weak_kfunc");
    feed(&pair, &ours.main_program().fd, 2);
    assert_eq!(array(&ours.map("out").unwrap().fd, 2), vec![0, 1]);

    let theirs = bpftool_load(&fs, "ext_weak_kfunc");
    feed(&pair, &theirs, 2);
    assert_eq!(array(&map_of(&theirs, "out"), 2), vec![0, 1]);
}

#[test]
fn a_strong_kfunc_the_kernel_lacks_is_a_missing_kernel_feature_naming_it() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let err = load::load_file(&obj("ext_strong_kfunc"), &fs.options()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("extern (kfunc) 'tcbpf_no_such_strong_kfunc'"),
        "{text}"
    );
    assert!(text.contains("no kfunc of that name"), "{text}");
    // The object is fine; this kernel lacks the kfunc: a system failure.
    assert!(!err.is_bad_input(), "{text}");
    assert_eq!(err.kind(), tcbpf::ErrorKind::System, "{text}");
    bpftool_fails(&fs, "ext_strong_kfunc");
}

#[test]
fn conntrack_kfuncs_look_up_each_datagram_like_libbpfs_copy() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ours = tcbpf_load(&fs, "ext_conntrack");
    feed(&pair, &ours.main_program().fd, 5);
    // Nothing is tracked in the namespace: every lookup fails with ENOENT.
    assert_eq!(array(&ours.map("out").unwrap().fd, 3), vec![0, 5, 0]);

    let theirs = bpftool_load(&fs, "ext_conntrack");
    feed(&pair, &theirs, 4);
    assert_eq!(array(&map_of(&theirs, "out"), 3), vec![0, 4, 0]);
}

#[test]
fn a_kfunc_declared_with_another_prototype_is_refused_naming_it() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let err = load::load_file(&obj("ext_kfunc_proto"), &fs.options()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("extern (kfunc) 'bpf_ct_release'"), "{text}");
    assert!(text.contains("incompatible with the declared"), "{text}");
    assert!(err.is_bad_input());
    assert!(bpftool_fails(&fs, "ext_kfunc_proto").contains("incompatible"));
}

fn kallsyms(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&name)).then(|| u64::from_str_radix(f[0], 16).unwrap())
        })
        .unwrap()
}

#[test]
fn an_untyped_ksym_is_its_kallsyms_address() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let want = kallsyms("tcp_v4_rcv");
    assert_ne!(want, 0, "run as root: kallsyms shows addresses");
    let ours = tcbpf_load(&fs, "ext_ksym");
    feed(&pair, &ours.main_program().fd, 2);
    let got = array(&ours.map("out").unwrap().fd, 2);
    assert_eq!(got[0], want);
    assert!(got[1] >= 2);

    let theirs = bpftool_load(&fs, "ext_ksym");
    feed(&pair, &theirs, 1);
    assert_eq!(array(&map_of(&theirs, "out"), 1), vec![want]);
}

/// The id bpftool gives `VAR 'name'` in vmlinux BTF.
fn vmlinux_var_id(name: &str) -> u32 {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("] VAR '{name}'");
    text.lines()
        .find(|l| l.contains(&needle))
        .and_then(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_typed_ksym_resolves_to_its_vmlinux_btf_id_and_the_kernel_decides_as_for_libbpf() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let spec = ObjectSpec::from_file(&obj("ext_ksym_typed")).unwrap();
    let outcomes = externs::resolve(&spec);
    assert_eq!(
        outcomes,
        vec![Ok(Resolved::BtfId {
            id: vmlinux_var_id("runqueues"),
            module: None
        })]
    );
    let kallsyms_all = config("CONFIG_KALLSYMS_ALL").as_deref() == Some("y");
    let result = load::load_file(&obj("ext_ksym_typed"), &fs.options());
    let pin = fs.join("bpftool_typed");
    let libbpf = Command::new("bpftool")
        .args(["prog", "load", s(&obj("ext_ksym_typed")), s(&pin)])
        .output()
        .unwrap();
    assert_eq!(result.is_ok(), libbpf.status.success());
    if kallsyms_all {
        let ours = result.unwrap();
        let pair = VethPair::new();
        feed(&pair, &ours.main_program().fd, 2);
        let v = array(&ours.map("out").unwrap().fd, 2);
        assert_eq!(v[0], v[1], "rq->cpu of this CPU's runqueue");
    } else {
        // Without CONFIG_KALLSYMS_ALL the kernel cannot find a variable's
        // address: the verifier refuses the program, for libbpf too.
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("failed to find the address for kernel symbol 'runqueues'"),
            "{text}"
        );
    }
}

#[test]
fn module_btf_kfuncs_resolve_when_a_module_has_btf() {
    let modules: Vec<String> = std::fs::read_dir("/sys/kernel/btf")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "vmlinux")
        .collect();
    if modules.is_empty() {
        eprintln!(
            "SKIP module_btf_kfuncs_resolve_when_a_module_has_btf: /sys/kernel/btf has only \
             vmlinux (this kernel has no loadable module with BTF), so no kfunc lives in module BTF"
        );
        return;
    }
    // A module's kfuncs are listed in its BTF as FUNCs: find one through
    // bpftool and resolve it the way the loader does.
    for m in modules {
        let out = Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                &format!("/sys/kernel/btf/{m}"),
                "-B",
                "/sys/kernel/btf/vmlinux",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| l.contains("] FUNC '")) {
            eprintln!("module {m} has BTF functions: {line}");
            assert!(Path::new(&format!("/sys/kernel/btf/{m}")).exists());
            return;
        }
    }
}

//! tc's words as tc users type them, each checked against the real `tc`
//! (iproute2 6.1) on the same device and with real traffic over a veth pair
//! between two namespaces: `m:PATH`, `program NAME`, the long and short
//! forms (`object-pinned`/`pinned`/`fd`, `object-file`/`obj`,
//! `section`/`sec`), `exec bpf graft … pinned PATH`. Run as root; every test
//! makes its own namespaces and bpffs.

use std::path::Path;
use std::process::Command;
use tcbpf::sys;
use tcbpf_testkit::*;

const TCBPF: &str = env!("CARGO_BIN_EXE_tcbpf");
const PORT: u16 = 7311;

/// `tcbpf` with the words of `line` and `TC_BPF_MNT` at the test's bpffs.
fn tcbpf(line: &str, fs: &Bpffs) -> Command {
    tcbpf_testkit::tcbpf(TCBPF, line.split_whitespace(), Some(&fs.path))
}

/// The real tc with the words of `line` and the same `TC_BPF_MNT`.
fn real_tc(line: &str, fs: &Bpffs) -> Command {
    let mut cmd = Command::new("tc");
    cmd.args(line.split_whitespace())
        .env("TC_BPF_MNT", &fs.path);
    cmd
}

fn chain_o() -> String {
    s(&fixture("chain.o")).to_string()
}

/// The u64 at `key` of the map `name` of program `prog_id`.
fn prog_map_u64(prog_id: u32, name: &str, key: u32) -> u64 {
    let p = sys::obj::prog_by_id(prog_id).unwrap();
    for id in sys::info::prog_info(&p).unwrap().map_ids {
        let m = sys::obj::map_by_id(id, 0).unwrap();
        if sys::info::map_info(&m).unwrap().name == name {
            let mut v = [0u8; 8];
            sys::map::lookup(&m, &key.to_ne_bytes(), &mut v, 0).unwrap();
            return u64::from_ne_bytes(v);
        }
    }
    panic!("program {prog_id} has no map {name}")
}

/// The program ids of the filters `tcbpf -j filter show` lists, by pref.
fn prog_ids(net: &VethPair, fs: &Bpffs) -> Vec<(u64, u32)> {
    let out = ok(tcbpf(
        &format!("-j -n {} filter show dev v1 ingress", net.b.name),
        fs,
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let id = e["options"]["prog"]["id"].as_u64()?;
            Some((e["pref"].as_u64().unwrap(), id as u32))
        })
        .collect()
}

/// `filter show` of v1's ingress by tcbpf and by tc, text and JSON.
fn shows(net: &VethPair, fs: &Bpffs) -> [(String, String); 2] {
    let n = &net.b.name;
    let line = format!("-n {n} filter show dev v1 ingress");
    let jline = format!("-j -n {n} filter show dev v1 ingress");
    [
        (ok(tcbpf(&line, fs)), ok(real_tc(&line, fs))),
        (ok(tcbpf(&jline, fs)), ok(real_tc(&jline, fs))),
    ]
}

#[test]
fn pinned_m_path_and_fd_attach_the_pinned_program_as_tc_does() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let n = &net.b.name;
    // drop_udp of chain.o pinned at <bpffs>/tc/dropper.
    ok(tcbpf(
        &format!(
            "obj load {} sec tc program drop_udp bpffs {} pin {}",
            chain_o(),
            fs.as_str(),
            fs.arg("tc/dropper")
        ),
        &fs,
    ));
    ok(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 1 bpf da pinned m:dropper"),
        &fs,
    ));
    ok(real_tc(
        &format!("-n {n} filter add dev v1 ingress pref 2 bpf da object-pinned m:dropper"),
        &fs,
    ));
    // The same program, named as tc names a pin, shown the same by both.
    let [(text, tc_text), (json, tc_json)] = shows(&net, &fs);
    assert_eq!(text, tc_text);
    assert_eq!(json, tc_json);
    assert!(
        text.contains("pref 1 bpf chain 0 handle 0x1 dropper:[*fsobj] direct-action"),
        "{text}"
    );
    let ids = prog_ids(&net, &fs);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].1, ids[1].1, "both filters run the pinned program");

    // Real traffic: pref 1 drops every UDP datagram and counts it.
    assert_eq!(net.send_udp(PORT, 20), 0);
    assert_eq!(prog_map_u64(ids[0].1, "hits", 9), 20);

    // `fd` is tc's third name for a pinned program; an m: path that names
    // nothing says which file it looked for.
    ok(tcbpf(
        &format!("-n {n} filter del dev v1 ingress pref 1"),
        &fs,
    ));
    ok(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 1 bpf da fd m:dropper"),
        &fs,
    ));
    let [(text, tc_text), _] = shows(&net, &fs);
    assert_eq!(text, tc_text);
    let (code, err) = fails(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 3 bpf da pinned m:nothing/here"),
        &fs,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{}/tc/nothing/here", fs.as_str())),
        "{err}"
    );
}

#[test]
fn program_name_picks_one_function_of_a_section_as_tc_does() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let n = &net.b.name;
    let obj = chain_o();
    ok(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 1 bpf da object-file {obj} section tc program drop_udp"),
        &fs,
    ));
    ok(real_tc(
        &format!(
            "-n {n} filter add dev v1 ingress pref 2 bpf da obj {obj} sec tc program drop_udp"
        ),
        &fs,
    ));
    // Same program from both loaders: same name and tag, same filter text
    // but for the program id.
    let ids = prog_ids(&net, &fs);
    let info = |id: u32| sys::info::prog_info(sys::obj::prog_by_id(id).unwrap()).unwrap();
    let (ours, theirs) = (info(ids[0].1), info(ids[1].1));
    assert_eq!(ours.name, "drop_udp");
    assert_eq!(ours.name, theirs.name);
    assert_eq!(ours.tag_hex(), theirs.tag_hex());
    let [(text, tc_text), (json, tc_json)] = shows(&net, &fs);
    assert_eq!(text, tc_text);
    assert_eq!(json, tc_json);
    assert!(
        text.contains("handle 0x1 chain.o:[tc] direct-action not_in_hw id"),
        "{text}"
    );
    assert_eq!(net.send_udp(PORT, 15), 0, "drop_udp drops every datagram");
    assert_eq!(prog_map_u64(ids[0].1, "hits", 9), 15);
    assert_eq!(
        prog_map_u64(ids[1].1, "hits", 9),
        0,
        "pref 2 never saw them"
    );

    // Another function of the same section: tc3 counts, marks and lets go.
    ok(tcbpf(
        &format!("-n {n} filter del dev v1 ingress pref 2"),
        &fs,
    ));
    ok(tcbpf(
        &format!("-n {n} filter replace dev v1 ingress pref 1 handle 1 bpf da obj {obj} sec tc program tc3"),
        &fs,
    ));
    let ids = prog_ids(&net, &fs);
    assert_eq!(info(ids[0].1).name, "tc3");
    assert_eq!(net.send_udp(PORT, 12), 12);
    assert_eq!(prog_map_u64(ids[0].1, "hits", 3), 12);
    assert_eq!(prog_map_u64(ids[0].1, "order", 0), 3);

    // A function that is not in the section is a clear error, nothing attached.
    let (code, err) = fails(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 5 bpf da obj {obj} sec tc program nope"),
        &fs,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("program 'nope' in section 'tc'"), "{err}");
    assert_eq!(prog_ids(&net, &fs).len(), 1);
}

/// graft.o's classifier pinned in `fs`, its program array at
/// tc/globals/jmp_graft; the verdict of a run on a minimal frame.
fn graft_classifier(fs: &Bpffs) -> impl Fn() -> u32 + '_ {
    ok(tcbpf(
        &format!(
            "obj load {} bpffs {} pin {}",
            s(&fixture("graft.o")),
            fs.as_str(),
            fs.arg("cls")
        ),
        fs,
    ));
    move || {
        let prog = sys::obj::get_pinned_prog(&fs.join("cls")).unwrap();
        sys::prog::test_run(&prog, &[0u8; 64]).unwrap().retval
    }
}

#[test]
fn graft_takes_m_paths_and_a_pinned_program() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let verdict = graft_classifier(&fs);
    assert_eq!(verdict(), 2, "the tail call 1/0 is in place after load");
    let graft_o = fixture("graft.o");
    ok(tcbpf(
        &format!(
            "exec bpf graft m:globals/jmp_graft key 0 object-file {} section alt",
            s(&graft_o)
        ),
        &fs,
    ));
    assert_eq!(verdict(), 5, "section alt placed through the m: path");

    // A program pinned beforehand, grafted by m: path with `pinned`.
    ok(tcbpf(
        &format!(
            "obj load {} sec 1/0 bpffs {} pin {}",
            s(&graft_o),
            fs.as_str(),
            fs.arg("tc/one_zero")
        ),
        &fs,
    ));
    ok(tcbpf(
        "exec bpf graft m:globals/jmp_graft key 0 pinned m:one_zero",
        &fs,
    ));
    assert_eq!(verdict(), 2, "the pinned 1/0 program is back at key 0");

    let (code, err) = fails(tcbpf(
        "exec bpf graft m:globals/jmp_graft pinned m:one_zero",
        &fs,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give 'key KEY'"), "{err}");
    let (code, err) = fails(tcbpf(
        &format!(
            "exec bpf graft m:globals/jmp_graft key 0 pinned m:one_zero obj {}",
            s(&graft_o)
        ),
        &fs,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("one program"), "{err}");
    let (code, err) = fails(tcbpf(
        "exec bpf graft m:globals/none key 0 pinned m:one_zero",
        &fs,
    ));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}",
            Path::new(fs.as_str()).join("tc/globals/none").display()
        )),
        "{err}"
    );
}

/// Classic BPF (as `tcpdump -ddd 'udp dst port 7000'` would give it for
/// Ethernet): IPv4, UDP, not a later fragment, destination port 7000 →
/// return 2 (TC_ACT_SHOT with `da`); anything else → -1 (TC_ACT_UNSPEC: go on).
const DROP_UDP_7000: &str = "11,40 0 0 12,21 0 8 2048,48 0 0 23,21 0 6 17,40 0 0 20,69 4 0 8191,177 0 0 14,72 0 0 16,21 0 1 7000,6 0 0 2,6 0 0 4294967295";

fn args_cmd(bin: &str, args: &[&str], fs: &Bpffs) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("TC_BPF_UDS")
        .env("TC_BPF_MNT", &fs.path);
    cmd
}

#[test]
fn classic_bytecode_drops_one_udp_port_exactly_as_tc_loading_it() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let dir = TempDir::new("classic");
    let n = net.b.name.as_str();
    // The same program as tcpdump -ddd writes it: one part per line.
    let file = dir.join("drop7000.bpf");
    std::fs::write(&file, DROP_UDP_7000.replace(',', "\n") + "\n").unwrap();
    let traffic = || (net.send_udp(7000, 20), net.send_udp(7001, 20));

    ok(args_cmd(
        TCBPF,
        &[
            "-n",
            n,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "1",
            "bpf",
            "bytecode",
            DROP_UDP_7000,
            "da",
        ],
        &fs,
    ));
    let ours = traffic();
    assert_eq!(ours, (0, 20), "port 7000 dropped, 7001 passed");
    ok(tcbpf(
        &format!("-n {n} filter del dev v1 ingress pref 1"),
        &fs,
    ));
    ok(args_cmd(
        "tc",
        &[
            "-n",
            n,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "1",
            "bpf",
            "bytecode",
            DROP_UDP_7000,
            "da",
        ],
        &fs,
    ));
    assert_eq!(traffic(), ours, "tc's filter counts the same");
    assert_eq!(traffic(), ours);

    // Both side by side (ours from the file, with classid and skip_hw):
    // the kernel holds the same program, shown the same by both tools.
    ok(args_cmd(
        TCBPF,
        &[
            "-n",
            n,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "2",
            "bpf",
            "bytecode-file",
            s(&file),
            "classid",
            "1:2",
            "skip_hw",
        ],
        &fs,
    ));
    ok(args_cmd(
        "tc",
        &[
            "-n",
            n,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "3",
            "bpf",
            "bytecode-file",
            s(&file),
            "classid",
            "1:2",
            "skip_hw",
        ],
        &fs,
    ));
    let [(text, tc_text), (json, tc_json)] = shows(&net, &fs);
    assert_eq!(text, tc_text);
    assert_eq!(json, tc_json);
    assert!(
        text.contains(&format!("pref 2 bpf chain 0 handle 0x1 flowid 1:2 skip_hw not_in_hw bytecode '{DROP_UDP_7000}'\n")),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[1]["options"]["bytecode"]["length"], 11);
    assert_eq!(v[1]["options"]["bytecode"]["insns"][8]["k"], 7000);

    // skip_sw asks for offload a veth cannot do: both refuse it.
    let skip_sw = |bin: &str| {
        output(args_cmd(
            bin,
            &[
                "-n",
                n,
                "filter",
                "add",
                "dev",
                "v1",
                "ingress",
                "pref",
                "4",
                "bpf",
                "bytecode",
                DROP_UDP_7000,
                "da",
                "skip_sw",
            ],
            &fs,
        ))
    };
    let (ours, theirs) = (skip_sw(TCBPF), skip_sw("tc"));
    assert_ne!(theirs.code, 0);
    assert_eq!(ours.code, 4, "{}", ours.stderr);
    assert!(ours.stderr.contains("EOPNOTSUPP"), "{}", ours.stderr);

    // Bad bytecode: a usage error naming the fault, nothing attached.
    for (bad, says) in [
        ("3,6 0 0 0", "says 3 instruction(s) but holds 1"),
        ("1,6 0 0", "instruction 0 '6 0 0'"),
        ("x", "not the instruction count"),
    ] {
        let r = output(args_cmd(
            TCBPF,
            &[
                "-n", n, "filter", "add", "dev", "v1", "ingress", "pref", "5", "bpf", "bytecode",
                bad, "da",
            ],
            &fs,
        ));
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{bad}: {}", r.stderr);
    }
    let r = output(args_cmd(
        TCBPF,
        &[
            "-n",
            n,
            "filter",
            "add",
            "dev",
            "v1",
            "ingress",
            "pref",
            "5",
            "bpf",
            "bytecode-file",
            "/nonexistent/x.bpf",
        ],
        &fs,
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("bytecode-file '/nonexistent/x.bpf'"),
        "{}",
        r.stderr
    );
    let [(text, _), _] = shows(&net, &fs);
    assert_eq!(text.matches("handle 0x1").count(), 3, "{text}");
}

#[test]
fn show_d_prints_what_tc_d_prints() {
    tcbpf_testkit::require_root!();
    let net = VethPair::new();
    let fs = Bpffs::new();
    let n = &net.b.name;
    let obj = chain_o();
    ok(tcbpf(
        &format!("-n {n} filter add dev v1 ingress pref 1 bpf da obj {obj} sec tc program tc1"),
        &fs,
    ));
    ok(real_tc(
        &format!("-n {n} filter add dev v1 ingress pref 2 bpf da obj {obj} sec tc program tc2"),
        &fs,
    ));
    for line in [
        format!("-d -n {n} filter show dev v1 ingress"),
        format!("-d -j -n {n} filter show dev v1 ingress"),
    ] {
        let (ours, theirs) = (ok(tcbpf(&line, &fs)), ok(real_tc(&line, &fs)));
        assert_eq!(ours, theirs);
        assert!(ours.contains("load_time"), "{ours}");
        assert!(ours.contains("btf_id"), "{ours}");
    }
}

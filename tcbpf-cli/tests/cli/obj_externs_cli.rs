//! `tcbpf obj show` lists externs (kind, name, weak or strong, resolved or
//! not) in text and JSON; `obj load` reports a kernel that hides symbol
//! addresses as a permission error (exit 3), before creating anything.

use serde_json::Value;
use std::process::Command;
use tcbpf_testkit::{fixture, output, run_bin, s, Bpffs};

fn tcbpf(args: &[&str]) -> (i32, String, String) {
    run_bin(env!("CARGO_BIN_EXE_tcbpf"), args)
}

#[test]
fn show_lists_externs_with_kind_strength_and_resolution() {
    let file = fixture("ext_weak_kfunc.o");
    let (code, out, err) = tcbpf(&["obj", "show", s(&file)]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().skip_while(|l| *l != "externs:").collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("  kfunc bpf_dynptr_from_skb weak resolved vmlinux btf id "),
        "{out}"
    );
    assert!(
        lines[2].starts_with("  kfunc tcbpf_no_such_kfunc weak unresolved: no kfunc"),
        "{out}"
    );
}

#[test]
fn show_json_lists_kconfig_externs_in_libbpf_order() {
    let file = fixture("ext_kconfig.o");
    let (code, out, err) = tcbpf(&["-j", "obj", "show", s(&file)]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let externs = v["externs"].as_array().unwrap();
    let names: Vec<&str> = externs
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    // Alignment descending, then size, then name (libbpf's cmp_externs).
    assert_eq!(
        names,
        [
            "CONFIG_HZ",
            "CONFIG_NET_CLS_BPF",
            "CONFIG_TCBPF_NO_SUCH_INT",
            "LINUX_KERNEL_VERSION",
            "CONFIG_BPF_SYSCALL",
            "CONFIG_TCBPF_NO_SUCH_OPTION",
            "CONFIG_DEFAULT_HOSTNAME",
        ]
    );
    assert!(externs.iter().all(|e| e["kind"] == "kconfig"));
    let absent = &externs[2];
    assert_eq!(absent["weak"], true);
    assert_eq!(absent["resolved"], false);
    assert!(absent["reason"].as_str().unwrap().contains("not set"));
    assert_eq!(externs[3]["resolved"], true);
    let kconfig = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == ".kconfig")
        .expect("a .kconfig map");
    assert_eq!(kconfig["bytes_value"], 4 * 4 + 1 + 1 + 16);
    assert_eq!(kconfig["frozen"], 1);
}

fn as_nobody(args: &[&str]) -> tcbpf_testkit::Run {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_tcbpf"))
        .args(args);
    output(cmd)
}

#[test]
fn hidden_kallsyms_addresses_are_a_permission_error() {
    tcbpf_testkit::require_root!();
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap();
    if paranoid.trim().parse::<i32>().unwrap() <= 1 {
        eprintln!("SKIP: perf_event_paranoid <= 1 shows kallsyms addresses to every user");
        return;
    }
    let file = fixture("ext_ksym.o");
    let shown = as_nobody(&["obj", "show", s(&file)]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains(
            "ksym-addr tcp_v4_rcv strong unresolved: /proc/kallsyms hides kernel addresses"
        ),
        "{}",
        shown.stdout
    );
    let fs = Bpffs::new();
    let pin = fs.arg("p");
    let loaded = as_nobody(&["obj", "load", s(&file), "bpffs", fs.as_str(), "pin", &pin]);
    assert_eq!(loaded.code, 3, "{}", loaded.stderr);
    assert!(
        loaded.stderr.contains("extern (ksym-addr) 'tcp_v4_rcv'")
            && loaded.stderr.contains("hides kernel addresses")
            && loaded.stderr.contains("EPERM"),
        "{}",
        loaded.stderr
    );
}

#[test]
fn load_of_a_strong_kfunc_the_kernel_lacks_exits_4_as_a_missing_kernel_feature() {
    tcbpf_testkit::require_root!();
    let file = fixture("ext_strong_kfunc.o");
    let fs = Bpffs::new();
    let pin = fs.arg("p");
    let (code, _, err) = tcbpf(&["obj", "load", s(&file), "bpffs", fs.as_str(), "pin", &pin]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("extern (kfunc) 'tcbpf_no_such_strong_kfunc'")
            && err.contains("no kfunc of that name in the kernel's BTF"),
        "{err}"
    );
    assert!(!std::path::Path::new(&pin).exists(), "nothing is pinned");
}

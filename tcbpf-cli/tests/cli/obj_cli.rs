//! `tcbpf obj show` and `tcbpf obj load`, run as the binary.

use serde_json::Value;
use std::path::Path;
use tcbpf::sys;
use tcbpf_testkit::{fixture, run_bin, Bpffs};

fn tcbpf(args: &[&str]) -> (i32, String, String) {
    run_bin(env!("CARGO_BIN_EXE_tcbpf"), args)
}

#[test]
fn show_json_lists_programs_and_maps() {
    let file = fixture("legacy.o");
    let (code, out, err) = tcbpf(&["-j", "obj", "show", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["license"], "GPL");
    assert_eq!(v["legacy_map_size"], 36);
    assert_eq!(v["programs"][0]["name"], "cls_main");
    assert_eq!(v["programs"][0]["section"], "classifier");
    assert_eq!(v["programs"][0]["insns"], 80);
    let maps = v["maps"].as_array().unwrap();
    assert_eq!(maps.len(), 5);
    assert_eq!(maps[1]["name"], "obj_pinned");
    assert_eq!(maps[1]["id"], 2);
    assert_eq!(maps[1]["pinning"], "object");
    assert_eq!(maps[1]["type"], "array");
    assert_eq!(maps[3]["pinning"], "custom 42");
}

#[test]
fn show_text_names_subprograms_and_tail_call_slots() {
    let (code, out, _) = tcbpf(&["obj", "show", fixture("subprog.o").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("calls sec classifier insns 21 calls add_one,same_section,times_three"),
        "{out}"
    );
    let (code, out, _) = tcbpf(&["obj", "sh", fixture("tailcall.o").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("loop sec 1/2 insns 22 tail_call map_id 1 key 2"),
        "{out}"
    );
    assert!(
        out.contains("jmp_table id 1 legacy prog_array key 4 value 4 max 8"),
        "{out}"
    );
}

#[test]
fn show_errors_have_exit_codes() {
    let (code, _, err) = tcbpf(&["obj", "show", "/nonexistent/x.o"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = tcbpf(&["obj", "show", fixture("legacy.c").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("legacy.c: not an ELF file"), "{err}");
    let (code, _, err) = tcbpf(&["obj", "show", fixture("legacy_65maps.o").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("section 'maps': 65 maps: more than fit"),
        "{err}"
    );
}

#[test]
fn load_pins_a_program_that_runs() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = format!("{}/cls", fs.as_str());
    let file = fixture("legacy.o");
    let (code, out, err) = tcbpf(&[
        "-j",
        "obj",
        "load",
        file.to_str().unwrap(),
        "type",
        "cls",
        "sec",
        "classifier",
        "bpffs",
        fs.as_str(),
        "pin",
        &pin,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "legacy.o:[classifier]");
    assert_eq!(v["program"]["name"], "cls_main");
    let prog = sys::obj::get_pinned_prog(Path::new(&pin)).unwrap();
    assert_eq!(
        sys::info::prog_info(&prog).unwrap().id,
        v["program"]["id"].as_u64().unwrap() as u32
    );
    let mut packet = vec![0u8; 64];
    packet[12..14].copy_from_slice(&[0x08, 0x00]);
    packet[14] = 0x45;
    packet[23] = 6;
    assert_eq!(sys::prog::test_run(&prog, &packet).unwrap().retval, 2);
    // The pinned global map is the one the pinned program counts into.
    let glob = sys::obj::get_pinned_map(&fs.join("tc/globals/glob_pinned"), 0).unwrap();
    let mut value = [0u8; 8];
    sys::map::lookup(&glob, &0u32.to_ne_bytes(), &mut value, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(value), 1);
}

#[test]
fn verbose_load_prints_the_verifier_log() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = format!("{}/v", fs.as_str());
    let file = fixture("subprog.o");
    let (code, out, err) = tcbpf(&[
        "-v",
        "obj",
        "load",
        file.to_str().unwrap(),
        "bpffs",
        fs.as_str(),
        "pin",
        &pin,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("subprog.o:[classifier] prog id "), "{out}");
    assert!(
        err.contains("verifier log of 'calls' (section classifier)"),
        "{err}"
    );
    assert!(err.contains("processed"), "{err}");
}

#[test]
fn load_errors_have_exit_codes() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let file = fixture("legacy.o");
    let pin = format!("{}/p", fs.as_str());
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        file.to_str().unwrap(),
        "sec",
        "nope",
        "bpffs",
        fs.as_str(),
        "pin",
        &pin,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no section 'nope'"), "{err}");
    let (code, _, err) = tcbpf(&["obj", "load", file.to_str().unwrap(), "bpffs", fs.as_str()]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        file.to_str().unwrap(),
        "type",
        "kprobe",
        "pin",
        &pin,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown program type 'kprobe'"), "{err}");
    let (code, _, err) = tcbpf(&[
        "obj",
        "load",
        fixture("reject.o").to_str().unwrap(),
        "bpffs",
        fs.as_str(),
        "pin",
        &pin,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("section 'classifier'") && err.contains("invalid access to packet"),
        "{err}"
    );
    assert!(!Path::new(&pin).exists());
}

#[test]
fn help_describes_show_and_load() {
    let (code, out, _) = tcbpf(&["obj", "help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("tcbpf obj show FILE") && out.contains("pin PATH"),
        "{out}"
    );
}

#[test]
fn load_warns_about_each_tail_call_section_it_leaves_out_without_verbose() {
    tcbpf_testkit::require_root!();
    let fs = Bpffs::new();
    let pin = fs.arg("p");
    let file = fixture("tailcall_hex.o");
    let (code, out, err) = tcbpf(&[
        "-j",
        "obj",
        "load",
        file.to_str().unwrap(),
        "bpffs",
        fs.as_str(),
        "pin",
        &pin,
    ]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tcbpf: warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{err}");
    for section in ["'7/0'", "'0x/1'", "'08/1'"] {
        assert!(
            warnings.iter().any(|w| w.contains(section)),
            "{section}: {err}"
        );
    }
    let v: Value = serde_json::from_str(&out).unwrap();
    let sections: Vec<&str> = v["tail_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["section"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["0xabccba/0", "012/0x1", "+0XABCCBA/02"]);
}

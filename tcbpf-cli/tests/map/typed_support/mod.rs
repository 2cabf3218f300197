//! Shared by the typed-map CLI tests: the typed_maps fixture loaded into
//! a private bpffs, and `tcbpf` runs that reach its maps by descriptor
//! (`@counters` in the words stands for `fd N` of the map `counters`).
#![allow(dead_code)]

use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use tcbpf::load::{load_file, LoadedObject};
use tcbpf::sys::{self, MapFd};
use tcbpf_testkit::{Bpffs, Run};

/// The loaded fixture; its maps live as long as this.
pub struct Fixture {
    pub obj: LoadedObject,
    _fs: Bpffs,
}

impl Fixture {
    pub fn load() -> Fixture {
        let fs = Bpffs::new();
        let obj = load_file(&tcbpf_testkit::fixture("typed_maps.o"), &fs.options())
            .expect("load typed_maps.o");
        Fixture { obj, _fs: fs }
    }

    pub fn fd(&self, name: &str) -> &MapFd {
        &self
            .obj
            .map(name)
            .unwrap_or_else(|| panic!("no map {name}"))
            .fd
    }

    /// The words with `@NAME` replaced by `fd N`, and the fds to pass.
    fn words(&self, args: &str) -> (Vec<String>, Vec<RawFd>) {
        let mut fds = Vec::new();
        let mut words = Vec::new();
        for w in args.split_whitespace() {
            match w.strip_prefix('@') {
                Some(name) => {
                    let fd = self.fd(name).as_raw_fd();
                    fds.push(fd);
                    words.push("fd".to_string());
                    words.push(fd.to_string());
                }
                None => words.push(w.to_string()),
            }
        }
        (words, fds)
    }

    /// A `tcbpf` command for `args` (`@NAME` for maps), inheriting the fds.
    pub fn cmd(&self, args: &str) -> Command {
        let (words, fds) = self.words(args);
        tcbpf(&fds, &words)
    }

    pub fn run(&self, args: &str) -> Run {
        self.cmd(args).output().unwrap().into()
    }

    pub fn ok(&self, args: &str) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "tcbpf {args}: {}", r.stderr);
        r.stdout
    }

    /// `ok` parsed as JSON.
    pub fn json(&self, args: &str) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args}: {e}: {out}"))
    }

    /// The typed entries of `-j map dump ARGS` of a map with BTF: each
    /// entry's `formatted` (the dump is in bpftool's shape).
    pub fn dump_typed(&self, args: &str) -> serde_json::Value {
        let dump = self.json(&format!("-j map dump {args}"));
        let entries = dump
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {dump}"));
        entries
            .iter()
            .map(|e| {
                e.get("formatted")
                    .cloned()
                    .unwrap_or_else(|| panic!("no formatted: {e}"))
            })
            .collect()
    }

    /// Exit code and stderr of a run that must fail.
    pub fn fails(&self, args: &str) -> (i32, String) {
        let r = self.run(args);
        assert_ne!(r.code, 0, "tcbpf {args} succeeded: {}", r.stdout);
        (r.code, r.stderr)
    }

    /// Raw value bytes at `key` through the sys layer, `None` when absent.
    pub fn raw(&self, map: &str, key: &[u8]) -> Option<Vec<u8>> {
        let fd = self.fd(map);
        let info = sys::info::map_info(fd).unwrap();
        let sizes = sys::map::ElemSizes::of(fd).unwrap();
        let _ = info;
        let mut v = vec![0u8; sizes.value()];
        match sys::map::lookup(fd, key, &mut v, 0) {
            Ok(()) => Some(v),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("lookup {map}: {e}"),
        }
    }

    pub fn put(&self, map: &str, key: &[u8], value: &[u8]) {
        sys::map::update(self.fd(map), key, value, 0).unwrap();
    }
}

/// A `tcbpf` command that inherits `fds` (FD_CLOEXEC cleared in the child).
pub fn tcbpf(fds: &[RawFd], args: &[String]) -> Command {
    let mut cmd = tcbpf_testkit::tcbpf(env!("CARGO_BIN_EXE_tcbpf"), args, None);
    tcbpf_testkit::inherit_fds(&mut cmd, fds);
    cmd
}

/// Runs `cmd` with `input` on its standard input: exit code, stdout, stderr.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> (i32, String, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Little-endian concatenation of u64s.
pub fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

pub fn k32(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

//! Program commands: load (with verifier log), and test runs on packets.

use super::fd::owned_from_ret;
use super::{bpf, cmd, obj_name, ptr, Error, ProgFd, Result};
use crate::abi::Insn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// What BPF_PROG_LOAD is asked to load.
#[derive(Debug, Clone, Default)]
pub struct ProgLoad<'a> {
    /// Kernel program type.
    pub prog_type: u32,
    /// Expected attach type (0 for tc programs).
    pub expected_attach_type: u32,
    /// Instructions, relocated.
    pub insns: &'a [Insn],
    /// License string ("GPL" to use GPL-only helpers).
    pub license: &'a str,
    /// Name (truncated to 15 bytes).
    pub name: &'a str,
    /// BTF for func and line info.
    pub btf: Option<BorrowedFd<'a>>,
    /// `struct bpf_func_info` records (insn_off, type_id), when `btf` is set.
    pub func_info: &'a [[u32; 2]],
    /// `struct bpf_line_info` records, when `btf` is set.
    pub line_info: &'a [[u32; 4]],
    /// Verifier log level: 0 none, 1 on failure detail, 2 every instruction.
    pub log_level: u32,
    /// `BPF_F_*` program flags.
    pub prog_flags: u32,
    /// Descriptors kfunc calls refer to by index (`insn.off`): module BTF.
    pub fd_array: &'a [i32],
    /// Tracing programs: the program they attach to (`attach_prog_fd`).
    pub attach_prog: Option<BorrowedFd<'a>>,
    /// Tracing programs: the function they attach to, a type id in the
    /// attach program's BTF (or the kernel's, without `attach_prog`).
    pub attach_btf_id: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    log_true_size: u32,
}
// log_true_size (6.4) by hand.
abi_layout!(ProgLoadAttr, 144; prog_type @ 0, insn_cnt @ 4, insns @ 8, license @ 16, log_level @ 24, log_size @ 28, log_buf @ 32, kern_version @ 40, prog_flags @ 44, prog_name @ 48, prog_ifindex @ 64, expected_attach_type @ 68, prog_btf_fd @ 72, func_info_rec_size @ 76, func_info @ 80, func_info_cnt @ 88, line_info_rec_size @ 92, line_info @ 96, line_info_cnt @ 104, attach_btf_id @ 108, attach_prog_fd @ 112, core_relo_cnt @ 116, fd_array @ 120, core_relos @ 128, core_relo_rec_size @ 136, log_true_size @ 140);

/// A failed BPF_PROG_LOAD with the verifier's log.
#[derive(Debug)]
pub struct ProgLoadError {
    /// The syscall error.
    pub error: Error,
    /// The verifier log (may be empty when logging was off and the load
    /// failed before the verifier).
    pub log: String,
}

/// A loaded program and the verifier log, when one was asked for.
#[derive(Debug)]
pub struct Loaded {
    /// The program.
    pub fd: ProgFd,
    /// The verifier log (empty at log level 0).
    pub log: String,
}

const LOG_SIZE: usize = 16 * 1024 * 1024;

/// BPF_PROG_LOAD. On failure the load is retried with a log (level 1 at
/// least) so the error carries the verifier's reasons.
pub fn load(spec: &ProgLoad<'_>) -> std::result::Result<Loaded, ProgLoadError> {
    match load_with_log(spec, spec.log_level) {
        Err(e) if spec.log_level == 0 && e.log.is_empty() => load_with_log(spec, 1),
        other => other,
    }
}

fn load_with_log(
    spec: &ProgLoad<'_>,
    log_level: u32,
) -> std::result::Result<Loaded, ProgLoadError> {
    let license = std::ffi::CString::new(spec.license).unwrap_or_default();
    let mut log = if log_level > 0 {
        vec![0u8; LOG_SIZE]
    } else {
        Vec::new()
    };
    let mut attr = ProgLoadAttr {
        prog_type: spec.prog_type,
        insn_cnt: spec.insns.len() as u32,
        insns: ptr(spec.insns.as_ptr()),
        license: ptr(license.as_ptr()),
        log_level,
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            ptr(log.as_mut_ptr())
        },
        prog_flags: spec.prog_flags,
        prog_name: obj_name(spec.name),
        expected_attach_type: spec.expected_attach_type,
        ..Default::default()
    };
    if !spec.fd_array.is_empty() {
        attr.fd_array = ptr(spec.fd_array.as_ptr());
    }
    if let Some(target) = spec.attach_prog {
        attr.attach_prog_fd = target.as_raw_fd() as u32;
    }
    attr.attach_btf_id = spec.attach_btf_id;
    if let Some(btf) = spec.btf {
        attr.prog_btf_fd = btf.as_raw_fd() as u32;
        if !spec.func_info.is_empty() {
            attr.func_info_rec_size = 8;
            attr.func_info = ptr(spec.func_info.as_ptr());
            attr.func_info_cnt = spec.func_info.len() as u32;
        }
        if !spec.line_info.is_empty() {
            attr.line_info_rec_size = 16;
            attr.line_info = ptr(spec.line_info.as_ptr());
            attr.line_info_cnt = spec.line_info.len() as u32;
        }
    }
    // SAFETY: every pointer in attr refers to a buffer alive for the call,
    // with the counts and sizes set beside it.
    let ret = unsafe { bpf(cmd::PROG_LOAD, &mut attr) };
    let log = log_text(&log);
    match ret {
        Ok(fd) => Ok(Loaded {
            fd: ProgFd::from_kernel(owned_from_ret(fd)),
            log,
        }),
        Err(e) => Err(ProgLoadError {
            error: Error::new("BPF_PROG_LOAD", e).on(format!("program '{}'", spec.name)),
            log,
        }),
    }
}

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}
abi_layout!(TestRunAttr, 80; prog_fd @ 0, retval @ 4, data_size_in @ 8, data_size_out @ 12, data_in @ 16, data_out @ 24, repeat @ 32, duration @ 36, ctx_size_in @ 40, ctx_size_out @ 44, ctx_in @ 48, ctx_out @ 56, flags @ 64, cpu @ 68, batch_size @ 72);

/// The result of one BPF_PROG_TEST_RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (the tc verdict for classifiers in `da` mode).
    pub retval: u32,
    /// The packet as the program left it.
    pub data_out: Vec<u8>,
    /// Average run time in nanoseconds.
    pub duration_ns: u32,
}

/// BPF_PROG_TEST_RUN: runs the program once on `packet` (an Ethernet frame
/// for tc programs).
pub fn test_run(prog: impl AsFd, packet: &[u8]) -> Result<TestRun> {
    let prog = prog.as_fd();
    let mut out = vec![0u8; packet.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: packet.len() as u32,
        data_size_out: out.len() as u32,
        data_in: ptr(packet.as_ptr()),
        data_out: ptr(out.as_mut_ptr()),
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: data_in/data_out point at buffers of the sizes given.
    unsafe { bpf(cmd::PROG_TEST_RUN, &mut attr) }.map_err(|e| {
        Error::new("BPF_PROG_TEST_RUN", e).on(format!("prog fd {}", prog.as_raw_fd()))
    })?;
    out.truncate((attr.data_size_out as usize).min(out.len()));
    Ok(TestRun {
        retval: attr.retval,
        data_out: out,
        duration_ns: attr.duration,
    })
}

/// BPF_PROG_TEST_RUN of a `BPF_PROG_TYPE_SYSCALL` program: runs it once on
/// `ctx`, which the kernel copies in and, after the run, back out (so the
/// program can answer through it). Returns the program's return value.
pub fn test_run_syscall(prog: impl AsFd, ctx: &mut [u8]) -> Result<u32> {
    let prog = prog.as_fd();
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        ctx_size_in: ctx.len() as u32,
        ctx_in: ptr(ctx.as_mut_ptr()),
        ..Default::default()
    };
    // SAFETY: ctx_in points at ctx.len() bytes, which the kernel reads and
    // writes back in place.
    unsafe { bpf(cmd::PROG_TEST_RUN, &mut attr) }.map_err(|e| {
        Error::new("BPF_PROG_TEST_RUN", e).on(format!("prog fd {}", prog.as_raw_fd()))
    })?;
    Ok(attr.retval)
}

/// `BPF_STATS_RUN_TIME` (`enum bpf_stats_type`).
const STATS_RUN_TIME: u32 = 0;

#[repr(C)]
#[derive(Default)]
struct EnableStatsAttr {
    stats_type: u32,
}
abi_layout!(EnableStatsAttr, 4; stats_type @ 0);

/// Run-time statistics of every program (run count and time in
/// `bpf_prog_info`), kept on while this guard lives: the kernel counts
/// while any process holds such a descriptor.
#[derive(Debug)]
pub struct StatsGuard {
    _fd: std::os::fd::OwnedFd,
}

/// BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): turns program run-time statistics
/// on until the returned guard is dropped. Needs CAP_SYS_ADMIN.
pub fn enable_stats() -> Result<StatsGuard> {
    let mut attr = EnableStatsAttr {
        stats_type: STATS_RUN_TIME,
    };
    // SAFETY: EnableStatsAttr holds no pointers.
    unsafe { bpf(cmd::ENABLE_STATS, &mut attr) }
        .map(|fd| StatsGuard {
            _fd: owned_from_ret(fd),
        })
        .map_err(|e| Error::new("BPF_ENABLE_STATS", e).on("BPF_STATS_RUN_TIME"))
}

/// The last line of a kernel verifier log that is not blank.
pub(crate) fn last_log_line(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| !l.trim().is_empty())
}

impl std::fmt::Display for ProgLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for ProgLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl ProgLoadError {
    /// The error and the verifier log's last line (its verdict), as one
    /// line: `BPF_PROG_LOAD …: Invalid argument (EINVAL): R1 type=… expected=…`.
    pub fn with_last_line(&self) -> String {
        match last_log_line(&self.log) {
            Some(l) => format!("{self}: {l}"),
            None => self.to_string(),
        }
    }

    /// The class of failure: no privilege is EPERM, or EACCES before the
    /// verifier wrote anything (permission); EACCES after it spoke is the
    /// verifier refusing the program, which is not a refusal of access (a
    /// system failure here; a loader whose program came from the user says
    /// bad input, as `load::LoadError::Verifier` does); else the errno's.
    pub fn kind(&self) -> crate::ErrorKind {
        match self.error.errno() {
            Some(libc::EACCES) if !self.log.trim().is_empty() => crate::ErrorKind::System,
            _ => self.error.kind(),
        }
    }
}

impl From<ProgLoadError> for io::Error {
    fn from(e: ProgLoadError) -> io::Error {
        io::Error::other(e.to_string())
    }
}

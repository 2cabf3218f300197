//! `exec bpf debug`: the kernel's trace pipe, where `bpf_trace_printk`
//! output lands. Finds a mounted tracefs (or debugfs' tracing directory),
//! mounts tracefs at `/sys/kernel/tracing` when none is, and streams
//! `trace_pipe`. It reads; it never changes tracing settings.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Where tracefs is mounted when it is absent.
pub const TRACEFS_DIR: &str = "/sys/kernel/tracing";

/// The tracing directory from a `/proc/mounts` text: a tracefs mount, or
/// `tracing/` under a debugfs mount.
pub fn tracing_dir_in(mounts: &str) -> Option<PathBuf> {
    let mut debugfs = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_src), Some(dir), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        match fs {
            "tracefs" => return Some(PathBuf::from(dir)),
            "debugfs" if debugfs.is_none() => debugfs = Some(Path::new(dir).join("tracing")),
            _ => {}
        }
    }
    debugfs.filter(|d| d.join("trace_pipe").exists())
}

/// The path of `trace_pipe`, mounting tracefs at [`TRACEFS_DIR`] first
/// when no tracing directory is mounted.
pub fn trace_pipe() -> io::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    if let Some(dir) = tracing_dir_in(&mounts) {
        return Ok(dir.join("trace_pipe"));
    }
    // mount(8) would only print "must be superuser" on our stderr.
    if !has_cap_sys_admin(&std::fs::read_to_string("/proc/self/status")?) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("no trace pipe: tracefs is not mounted, and mounting it at {TRACEFS_DIR} needs CAP_SYS_ADMIN"),
        ));
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "tracefs", TRACEFS_DIR])
        .status()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run mount(8) for tracefs: {}",
                    crate::sys::strip_os(&e)
                ),
            )
        })?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "no trace pipe: tracefs is not mounted and 'mount -t tracefs tracefs {TRACEFS_DIR}' failed ({status})"
        )));
    }
    Ok(Path::new(TRACEFS_DIR).join("trace_pipe"))
}

/// True when the effective capabilities in a `/proc/PID/status` text hold
/// CAP_SYS_ADMIN (bit 21), which mounting tracefs needs.
fn has_cap_sys_admin(status: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Copies the trace pipe to `out` until it ends or `out` closes (a closed
/// `out` is a normal end).
pub fn stream_trace_pipe(pipe: &Path, out: &mut impl Write) -> io::Result<()> {
    let mut file = std::fs::File::open(pipe).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}: {}", pipe.display(), crate::sys::strip_os(&e)),
        )
    })?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match out.write_all(&buf[..n]).and_then(|_| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_sys_admin_is_read_from_the_effective_set() {
        assert!(has_cap_sys_admin("Name:\tx\nCapEff:\t000001ffffffffff\n"));
        assert!(!has_cap_sys_admin("CapEff:\t0000000000000000\n"));
        assert!(!has_cap_sys_admin("CapEff:\t0000000000100000\n"));
        assert!(has_cap_sys_admin("CapEff:\t0000000000200000\n"));
        assert!(!has_cap_sys_admin("no such field"));
    }

    #[test]
    fn tracefs_mount_is_found_before_debugfs() {
        let m = "sysfs /sys sysfs rw 0 0\ndebugfs /sys/kernel/debug debugfs rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\n";
        assert_eq!(
            tracing_dir_in(m),
            Some(PathBuf::from("/sys/kernel/tracing"))
        );
        assert_eq!(tracing_dir_in("sysfs /sys sysfs rw 0 0\n"), None);
    }
}

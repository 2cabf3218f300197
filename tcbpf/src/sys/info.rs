//! BPF_OBJ_GET_INFO_BY_FD for maps, programs and BTF objects.

use super::{bpf, c_name, cmd, ptr, Error, Result};
use crate::abi::MapType;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}
abi_layout!(InfoAttr, 16; bpf_fd @ 0, info_len @ 4, info @ 8);

/// Fills `info` (a `#[repr(C)]` kernel info struct, zeroed) for `fd`.
///
/// # Safety
///
/// `T` must be a prefix of the kernel's info struct for the kind of `fd`,
/// with any pointer fields in it either zero or valid for their lengths.
unsafe fn get_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> std::io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<T>() as u32,
        info: ptr(info as *mut T),
    };
    // SAFETY: info is valid for info_len bytes; the caller vouches for its pointers.
    unsafe { bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr) }.map(|_| ())
}

#[repr(C)]
#[derive(Default)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
    ifindex: u32,
    btf_vmlinux_value_type_id: u32,
    netns_dev: u64,
    netns_ino: u64,
    btf_id: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_id: u32,
    map_extra: u64,
}
// btf_vmlinux_id (6.13, formerly padding) by hand.
abi_layout!(RawMapInfo, 88; map_type @ 0, id @ 4, key_size @ 8, value_size @ 12, max_entries @ 16, map_flags @ 20, name @ 24, ifindex @ 40, btf_vmlinux_value_type_id @ 44, netns_dev @ 48, netns_ino @ 56, btf_id @ 64, btf_key_type_id @ 68, btf_value_type_id @ 72, btf_vmlinux_id @ 76, map_extra @ 80);

/// What the kernel says about a map (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Kernel map type number; see [`MapInfo::kind`].
    pub map_type: u32,
    /// Map id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub map_flags: u32,
    /// Kernel name (at most 15 bytes).
    pub name: String,
    /// BTF object id, 0 when none.
    pub btf_id: u32,
    /// BTF key type id.
    pub btf_key_type_id: u32,
    /// BTF value type id.
    pub btf_value_type_id: u32,
    /// Type-specific extra.
    pub map_extra: u64,
}

impl MapInfo {
    /// The map type, if tcbpf knows the number.
    pub fn kind(&self) -> Option<MapType> {
        MapType::from_u32(self.map_type)
    }

    /// The type's name, or `type N` for types tcbpf does not know.
    pub fn type_name(&self) -> String {
        match self.kind() {
            Some(t) => t.name().to_string(),
            None => format!("type {}", self.map_type),
        }
    }
}

/// Map info of `fd`. The fd should be a map (see `MapFd`); on a program fd
/// the kernel would fill a program's info instead.
pub fn map_info(fd: impl AsFd) -> Result<MapInfo> {
    let fd = fd.as_fd();
    let mut raw = RawMapInfo::default();
    // SAFETY: RawMapInfo is a prefix of struct bpf_map_info and has no pointers.
    unsafe { get_info(fd, &mut raw) }.map_err(|e| {
        Error::new("BPF_OBJ_GET_INFO_BY_FD", e).on(format!("map fd {}", fd.as_raw_fd()))
    })?;
    Ok(MapInfo {
        map_type: raw.map_type,
        id: raw.id,
        key_size: raw.key_size,
        value_size: raw.value_size,
        max_entries: raw.max_entries,
        map_flags: raw.map_flags,
        name: c_name(&raw.name),
        btf_id: raw.btf_id,
        btf_key_type_id: raw.btf_key_type_id,
        btf_value_type_id: raw.btf_value_type_id,
        map_extra: raw.map_extra,
    })
}

#[repr(C)]
#[derive(Default)]
struct RawProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
    ifindex: u32,
    gpl_compatible: u32,
    netns_dev: u64,
    netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    run_time_ns: u64,
    run_cnt: u64,
}
// gpl_compatible is the bit-field word after ifindex (by hand).
abi_layout!(RawProgInfo, 208; prog_type @ 0, id @ 4, tag @ 8, jited_prog_len @ 16, xlated_prog_len @ 20, jited_prog_insns @ 24, xlated_prog_insns @ 32, load_time @ 40, created_by_uid @ 48, nr_map_ids @ 52, map_ids @ 56, name @ 64, ifindex @ 80, gpl_compatible @ 84, netns_dev @ 88, netns_ino @ 96, nr_jited_ksyms @ 104, nr_jited_func_lens @ 108, jited_ksyms @ 112, jited_func_lens @ 120, btf_id @ 128, func_info_rec_size @ 132, func_info @ 136, nr_func_info @ 144, nr_line_info @ 148, line_info @ 152, jited_line_info @ 160, nr_jited_line_info @ 168, line_info_rec_size @ 172, jited_line_info_rec_size @ 176, nr_prog_tags @ 180, prog_tags @ 184, run_time_ns @ 192, run_cnt @ 200);

/// What the kernel says about a program (`struct bpf_prog_info`, in part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// Kernel program type number.
    pub prog_type: u32,
    /// Program id.
    pub id: u32,
    /// The program's tag (a hash of its instructions), as tc prints it.
    pub tag: [u8; 8],
    /// Kernel name.
    pub name: String,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
    /// Whether the JIT compiled it.
    pub jited: bool,
    /// Size of the verifier's translated instructions, in bytes.
    pub bytes_xlated: u32,
    /// Size of the JIT's machine code, in bytes (0 when not JIT-compiled).
    pub bytes_jited: u32,
    /// Whether its license is GPL-compatible.
    pub gpl_compatible: bool,
    /// BTF object id, 0 when none.
    pub btf_id: u32,
    /// The BTF type id of the program's own function (its first
    /// `bpf_func_info` record) in that BTF; 0 without BTF func info. A
    /// tracing program attaches to it (`attach_btf_id`).
    pub main_func_type_id: u32,
    /// When it was loaded, in nanoseconds since boot.
    pub load_time: u64,
    /// The uid that loaded it.
    pub created_by_uid: u32,
    /// Nanoseconds spent running, counted while run-time statistics are
    /// enabled ([`super::prog::enable_stats`] or `kernel.bpf_stats_enabled`).
    pub run_time_ns: u64,
    /// Runs counted while run-time statistics are enabled.
    pub run_cnt: u64,
}

impl ProgInfo {
    /// The tag as 16 hex digits.
    pub fn tag_hex(&self) -> String {
        self.tag.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Program info of `fd`, with its map ids.
pub fn prog_info(fd: impl AsFd) -> Result<ProgInfo> {
    let fd = fd.as_fd();
    let err = |e| Error::new("BPF_OBJ_GET_INFO_BY_FD", e).on(format!("prog fd {}", fd.as_raw_fd()));
    let mut raw = RawProgInfo::default();
    // SAFETY: RawProgInfo is a prefix of struct bpf_prog_info; its pointers are zero.
    unsafe { get_info(fd, &mut raw) }.map_err(err)?;
    let mut map_ids = vec![0u32; raw.nr_map_ids as usize];
    if !map_ids.is_empty() {
        let count = map_ids.len() as u32;
        raw = RawProgInfo {
            nr_map_ids: count,
            map_ids: ptr(map_ids.as_mut_ptr()),
            ..Default::default()
        };
        // SAFETY: map_ids points at `count` u32s, alive for the call.
        unsafe { get_info(fd, &mut raw) }.map_err(err)?;
        map_ids.truncate(raw.nr_map_ids.min(count) as usize);
    }
    let mut main_func_type_id = 0;
    if raw.nr_func_info > 0 && raw.btf_id != 0 {
        // The first record is the program's own function (insn_off 0).
        let mut first = [0u32; 2];
        let mut fi = RawProgInfo {
            nr_func_info: 1,
            func_info_rec_size: 8,
            func_info: ptr(first.as_mut_ptr()),
            ..Default::default()
        };
        // SAFETY: func_info points at one 8-byte record, alive for the call.
        unsafe { get_info(fd, &mut fi) }.map_err(err)?;
        main_func_type_id = first[1];
    }
    Ok(ProgInfo {
        prog_type: raw.prog_type,
        id: raw.id,
        tag: raw.tag,
        name: c_name(&raw.name),
        map_ids,
        jited: raw.jited_prog_len > 0,
        bytes_xlated: raw.xlated_prog_len,
        bytes_jited: raw.jited_prog_len,
        gpl_compatible: raw.gpl_compatible & 1 != 0,
        btf_id: raw.btf_id,
        main_func_type_id,
        load_time: raw.load_time,
        created_by_uid: raw.created_by_uid,
        run_time_ns: raw.run_time_ns,
        run_cnt: raw.run_cnt,
    })
}

#[repr(C)]
#[derive(Default)]
struct RawBtfInfo {
    btf: u64,
    btf_size: u32,
    id: u32,
    name: u64,
    name_len: u32,
    kernel_btf: u32,
}
abi_layout!(RawBtfInfo, 32; btf @ 0, btf_size @ 8, id @ 12, name @ 16, name_len @ 24, kernel_btf @ 28);

/// What the kernel says about a BTF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfInfo {
    /// BTF object id.
    pub id: u32,
    /// Size of the raw BTF in bytes.
    pub size: u32,
    /// Name (module name for kernel BTF; empty for loaded programs' BTF).
    pub name: String,
    /// True for vmlinux and module BTF.
    pub kernel: bool,
}

/// BTF info of `fd` (vmlinux, module, or loaded BTF).
pub fn btf_info(fd: impl AsFd) -> Result<BtfInfo> {
    let fd = fd.as_fd();
    let mut name = [0u8; 64];
    let mut raw = RawBtfInfo {
        name: ptr(name.as_mut_ptr()),
        name_len: name.len() as u32,
        ..Default::default()
    };
    // SAFETY: name points at 64 writable bytes; btf is zero.
    unsafe { get_info(fd, &mut raw) }.map_err(|e| {
        Error::new("BPF_OBJ_GET_INFO_BY_FD", e).on(format!("btf fd {}", fd.as_raw_fd()))
    })?;
    Ok(BtfInfo {
        id: raw.id,
        size: raw.btf_size,
        name: c_name(&name),
        kernel: raw.kernel_btf != 0,
    })
}

/// The raw BTF bytes of a loaded BTF object.
pub fn btf_data(fd: impl AsFd) -> Result<Vec<u8>> {
    let fd = fd.as_fd();
    let size = btf_info(fd)?.size;
    let mut data = vec![0u8; size as usize];
    let mut raw = RawBtfInfo {
        btf: ptr(data.as_mut_ptr()),
        btf_size: size,
        ..Default::default()
    };
    // SAFETY: btf points at `size` writable bytes.
    unsafe { get_info(fd, &mut raw) }.map_err(|e| {
        Error::new("BPF_OBJ_GET_INFO_BY_FD", e).on(format!("btf fd {}", fd.as_raw_fd()))
    })?;
    data.truncate(raw.btf_size.min(size) as usize);
    Ok(data)
}

/// What `/proc/self/fdinfo` says about a map descriptor that
/// `bpf_map_info` does not: whether it is frozen, whether this descriptor
/// may write, and the memory it charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapFdInfo {
    /// `BPF_MAP_FREEZE` was called: user space may no longer write it.
    pub frozen: bool,
    /// The descriptor was opened for writing (not `BPF_F_RDONLY`): its
    /// `flags:` access mode is `O_WRONLY` or `O_RDWR`.
    pub writable: bool,
    /// Bytes of memory the map charges (`memlock`).
    pub memlock: u64,
}

/// Reads the frozen flag and memlock of a map from `/proc/self/fdinfo`.
pub fn map_fdinfo(fd: impl AsFd) -> Result<MapFdInfo> {
    let raw = fd.as_fd().as_raw_fd();
    let path = format!("/proc/self/fdinfo/{raw}");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::new("read fdinfo", e).on(path))?;
    Ok(parse_map_fdinfo(&text))
}

/// The memory a program charges (`memlock:` of its `/proc/self/fdinfo`),
/// bpftool's `bytes_memlock`; None when the kernel does not say.
pub fn prog_memlock(fd: impl AsFd) -> Result<Option<u64>> {
    let raw = fd.as_fd().as_raw_fd();
    let path = format!("/proc/self/fdinfo/{raw}");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::new("read fdinfo", e).on(path))?;
    Ok(fdinfo_field(&text, "memlock").and_then(|v| v.parse().ok()))
}

/// The value of `name:` in fdinfo text.
fn fdinfo_field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim())
    })
}

/// A process holding a descriptor of a bpf object (bpftool's `pids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub comm: String,
}

/// Every process but this one holding a program descriptor, by program
/// id: each process once per program, in pid order. Read from `/proc`
/// (each `anon_inode:bpf-prog` descriptor's `prog_id:`); processes and
/// descriptors that go away meanwhile, or that this process may not read,
/// are skipped.
pub fn prog_holders() -> std::collections::BTreeMap<u32, Vec<Holder>> {
    let mut out: std::collections::BTreeMap<u32, Vec<Holder>> = Default::default();
    let me = std::process::id();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut pids: Vec<u32> = proc_dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&p| p != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let is_prog =
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog");
            if !is_prog {
                continue;
            }
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let Some(id) = std::fs::read_to_string(info)
                .ok()
                .and_then(|t| fdinfo_field(&t, "prog_id")?.parse::<u32>().ok())
            else {
                continue;
            };
            let holders = out.entry(id).or_default();
            if holders.iter().any(|h| h.pid == pid) {
                continue;
            }
            let comm = comm.get_or_insert_with(|| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim_end_matches('\n').to_string())
                    .unwrap_or_default()
            });
            holders.push(Holder {
                pid,
                comm: comm.clone(),
            });
        }
    }
    out
}

/// Picks `frozen:`, `memlock:` and the access mode of `flags:` (octal) out
/// of a map's fdinfo text.
fn parse_map_fdinfo(text: &str) -> MapFdInfo {
    let mut out = MapFdInfo::default();
    for line in text.lines() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match field {
            "frozen" => out.frozen = value == "1",
            "flags" => {
                let mode = u32::from_str_radix(value, 8).unwrap_or(0) & libc::O_ACCMODE as u32;
                out.writable = mode == libc::O_WRONLY as u32 || mode == libc::O_RDWR as u32;
            }
            "memlock" => out.memlock = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_text_gives_frozen_and_memlock() {
        let text =
            "pos:\t0\nflags:\t02000002\nmap_type:\t1\nmemlock:\t1312\nmap_id:\t5\nfrozen:\t1\n";
        assert_eq!(
            parse_map_fdinfo(text),
            MapFdInfo {
                frozen: true,
                writable: true,
                memlock: 1312
            }
        );
        assert!(!parse_map_fdinfo("flags:\t02000000\n").writable);
        assert_eq!(parse_map_fdinfo("frozen:\t0\n"), MapFdInfo::default());
    }
}

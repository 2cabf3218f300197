//! Program types, attach types, instructions and the section table: the
//! kernel's numbers as enums, and which ELF section names which program type
//! (as cilium/ebpf's `elf_sections.go`). Pure data; no syscalls.

use std::fmt;

/// Kernel program types (`enum bpf_prog_type`); `Netfilter` (6.4) by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum ProgType {
    Unspec = 0,
    SocketFilter = 1,
    Kprobe = 2,
    SchedCls = 3,
    SchedAct = 4,
    Tracepoint = 5,
    Xdp = 6,
    PerfEvent = 7,
    CgroupSkb = 8,
    CgroupSock = 9,
    LwtIn = 10,
    LwtOut = 11,
    LwtXmit = 12,
    SockOps = 13,
    SkSkb = 14,
    CgroupDevice = 15,
    SkMsg = 16,
    RawTracepoint = 17,
    CgroupSockAddr = 18,
    LwtSeg6local = 19,
    LircMode2 = 20,
    SkReuseport = 21,
    FlowDissector = 22,
    CgroupSysctl = 23,
    RawTracepointWritable = 24,
    CgroupSockopt = 25,
    Tracing = 26,
    StructOps = 27,
    Ext = 28,
    Lsm = 29,
    SkLookup = 30,
    Syscall = 31,
    Netfilter = 32,
}

/// Kernel attach types (`enum bpf_attach_type`); `StructOps`, `Netfilter`,
/// `TcxIngress` and `TcxEgress` (6.4–6.6) by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum AttachType {
    CgroupInetIngress = 0,
    CgroupInetEgress = 1,
    CgroupInetSockCreate = 2,
    CgroupSockOps = 3,
    SkSkbStreamParser = 4,
    SkSkbStreamVerdict = 5,
    CgroupDevice = 6,
    SkMsgVerdict = 7,
    CgroupInet4Bind = 8,
    CgroupInet6Bind = 9,
    CgroupInet4Connect = 10,
    CgroupInet6Connect = 11,
    CgroupInet4PostBind = 12,
    CgroupInet6PostBind = 13,
    CgroupUdp4Sendmsg = 14,
    CgroupUdp6Sendmsg = 15,
    LircMode2 = 16,
    FlowDissector = 17,
    CgroupSysctl = 18,
    CgroupUdp4Recvmsg = 19,
    CgroupUdp6Recvmsg = 20,
    CgroupGetsockopt = 21,
    CgroupSetsockopt = 22,
    TraceRawTp = 23,
    TraceFentry = 24,
    TraceFexit = 25,
    ModifyReturn = 26,
    LsmMac = 27,
    TraceIter = 28,
    CgroupInet4Getpeername = 29,
    CgroupInet6Getpeername = 30,
    CgroupInet4Getsockname = 31,
    CgroupInet6Getsockname = 32,
    XdpDevmap = 33,
    CgroupInetSockRelease = 34,
    XdpCpumap = 35,
    SkLookup = 36,
    Xdp = 37,
    SkSkbVerdict = 38,
    SkReuseportSelect = 39,
    SkReuseportSelectOrMigrate = 40,
    PerfEvent = 41,
    TraceKprobeMulti = 42,
    LsmCgroup = 43,
    StructOps = 44,
    Netfilter = 45,
    TcxIngress = 46,
    TcxEgress = 47,
}

const PROG_TYPES: [ProgType; 33] = [
    ProgType::Unspec,
    ProgType::SocketFilter,
    ProgType::Kprobe,
    ProgType::SchedCls,
    ProgType::SchedAct,
    ProgType::Tracepoint,
    ProgType::Xdp,
    ProgType::PerfEvent,
    ProgType::CgroupSkb,
    ProgType::CgroupSock,
    ProgType::LwtIn,
    ProgType::LwtOut,
    ProgType::LwtXmit,
    ProgType::SockOps,
    ProgType::SkSkb,
    ProgType::CgroupDevice,
    ProgType::SkMsg,
    ProgType::RawTracepoint,
    ProgType::CgroupSockAddr,
    ProgType::LwtSeg6local,
    ProgType::LircMode2,
    ProgType::SkReuseport,
    ProgType::FlowDissector,
    ProgType::CgroupSysctl,
    ProgType::RawTracepointWritable,
    ProgType::CgroupSockopt,
    ProgType::Tracing,
    ProgType::StructOps,
    ProgType::Ext,
    ProgType::Lsm,
    ProgType::SkLookup,
    ProgType::Syscall,
    ProgType::Netfilter,
];

const ATTACH_TYPES: [AttachType; 48] = [
    AttachType::CgroupInetIngress,
    AttachType::CgroupInetEgress,
    AttachType::CgroupInetSockCreate,
    AttachType::CgroupSockOps,
    AttachType::SkSkbStreamParser,
    AttachType::SkSkbStreamVerdict,
    AttachType::CgroupDevice,
    AttachType::SkMsgVerdict,
    AttachType::CgroupInet4Bind,
    AttachType::CgroupInet6Bind,
    AttachType::CgroupInet4Connect,
    AttachType::CgroupInet6Connect,
    AttachType::CgroupInet4PostBind,
    AttachType::CgroupInet6PostBind,
    AttachType::CgroupUdp4Sendmsg,
    AttachType::CgroupUdp6Sendmsg,
    AttachType::LircMode2,
    AttachType::FlowDissector,
    AttachType::CgroupSysctl,
    AttachType::CgroupUdp4Recvmsg,
    AttachType::CgroupUdp6Recvmsg,
    AttachType::CgroupGetsockopt,
    AttachType::CgroupSetsockopt,
    AttachType::TraceRawTp,
    AttachType::TraceFentry,
    AttachType::TraceFexit,
    AttachType::ModifyReturn,
    AttachType::LsmMac,
    AttachType::TraceIter,
    AttachType::CgroupInet4Getpeername,
    AttachType::CgroupInet6Getpeername,
    AttachType::CgroupInet4Getsockname,
    AttachType::CgroupInet6Getsockname,
    AttachType::XdpDevmap,
    AttachType::CgroupInetSockRelease,
    AttachType::XdpCpumap,
    AttachType::SkLookup,
    AttachType::Xdp,
    AttachType::SkSkbVerdict,
    AttachType::SkReuseportSelect,
    AttachType::SkReuseportSelectOrMigrate,
    AttachType::PerfEvent,
    AttachType::TraceKprobeMulti,
    AttachType::LsmCgroup,
    AttachType::StructOps,
    AttachType::Netfilter,
    AttachType::TcxIngress,
    AttachType::TcxEgress,
];

impl ProgType {
    /// The name bpftool (libbpf) prints for the type: `sched_cls`, `xdp`…
    pub fn name(self) -> &'static str {
        use ProgType::*;
        match self {
            Unspec => "unspec",
            SocketFilter => "socket_filter",
            Kprobe => "kprobe",
            SchedCls => "sched_cls",
            SchedAct => "sched_act",
            Tracepoint => "tracepoint",
            Xdp => "xdp",
            PerfEvent => "perf_event",
            CgroupSkb => "cgroup_skb",
            CgroupSock => "cgroup_sock",
            LwtIn => "lwt_in",
            LwtOut => "lwt_out",
            LwtXmit => "lwt_xmit",
            SockOps => "sock_ops",
            SkSkb => "sk_skb",
            CgroupDevice => "cgroup_device",
            SkMsg => "sk_msg",
            RawTracepoint => "raw_tracepoint",
            CgroupSockAddr => "cgroup_sock_addr",
            LwtSeg6local => "lwt_seg6local",
            LircMode2 => "lirc_mode2",
            SkReuseport => "sk_reuseport",
            FlowDissector => "flow_dissector",
            CgroupSysctl => "cgroup_sysctl",
            RawTracepointWritable => "raw_tracepoint_writable",
            CgroupSockopt => "cgroup_sockopt",
            Tracing => "tracing",
            StructOps => "struct_ops",
            Ext => "ext",
            Lsm => "lsm",
            SkLookup => "sk_lookup",
            Syscall => "syscall",
            Netfilter => "netfilter",
        }
    }

    /// The type with kernel number `n`, if tcbpf knows it.
    pub fn from_u32(n: u32) -> Option<ProgType> {
        PROG_TYPES.get(n as usize).copied()
    }

    /// The kernel's number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

impl AttachType {
    /// The attach type with kernel number `n`, if tcbpf knows it.
    pub fn from_u32(n: u32) -> Option<AttachType> {
        ATTACH_TYPES.get(n as usize).copied()
    }

    /// The kernel's number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// One row of the section table: an ELF section name and what it loads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgSection {
    /// The section name (the program tc loads when none is named).
    pub section: &'static str,
    /// The word tc's `type` takes for it (`cls`, `act`).
    pub word: &'static str,
    /// The kernel program type.
    pub prog_type: ProgType,
    /// The expected attach type, for types that need one at load.
    pub attach: Option<AttachType>,
}

/// The program types tcbpf loads from objects, one row each: adding a
/// program type is adding a row (and its variant to `load::ProgKind`, which
/// indexes this table).
pub const PROG_SECTIONS: &[ProgSection] = &[
    ProgSection {
        section: "classifier",
        word: "cls",
        prog_type: ProgType::SchedCls,
        attach: None,
    },
    ProgSection {
        section: "action",
        word: "act",
        prog_type: ProgType::SchedAct,
        attach: None,
    },
    ProgSection {
        section: "xdp",
        word: "xdp",
        prog_type: ProgType::Xdp,
        attach: None,
    },
];

/// The tracing sections tcbpf loads against a target (`dump`'s
/// fentry/fexit programs on a tc program; `tp_btf` on a tracepoint of the
/// kernel's BTF): not tc program kinds, so not in [`PROG_SECTIONS`]; they
/// load only with a trace target (`load::LoadOptions::trace_target`).
pub const TRACE_SECTIONS: &[ProgSection] = &[
    ProgSection {
        section: "fentry",
        word: "fentry",
        prog_type: ProgType::Tracing,
        attach: Some(AttachType::TraceFentry),
    },
    ProgSection {
        section: "fexit",
        word: "fexit",
        prog_type: ProgType::Tracing,
        attach: Some(AttachType::TraceFexit),
    },
    ProgSection {
        section: "tp_btf",
        word: "tp_btf",
        prog_type: ProgType::Tracing,
        attach: Some(AttachType::TraceRawTp),
    },
];

/// The tracing row for ELF section `name` (`fentry`, `fentry/…`).
pub fn trace_section_by_name(name: &str) -> Option<&'static ProgSection> {
    TRACE_SECTIONS.iter().find(|s| {
        name == s.section
            || name
                .strip_prefix(s.section)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The row whose `type` word is `word`.
pub fn section_by_word(word: &str) -> Option<&'static ProgSection> {
    PROG_SECTIONS.iter().find(|s| s.word == word)
}

/// The row for ELF section `name`: an exact match, or `name` starting with
/// the row's section and `/` (`classifier/ingress`).
pub fn section_by_name(name: &str) -> Option<&'static ProgSection> {
    PROG_SECTIONS.iter().find(|s| {
        name == s.section
            || name
                .strip_prefix(s.section)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

impl fmt::Display for ProgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_in_kernel_order() {
        for (i, t) in PROG_TYPES.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
        for (i, t) in ATTACH_TYPES.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
        assert_eq!(ProgType::SchedCls as u32, 3);
        assert_eq!(ProgType::Syscall as u32, 31);
        assert_eq!(AttachType::TcxIngress as u32, 46);
        assert_eq!(AttachType::from_u32(47), Some(AttachType::TcxEgress));
    }

    #[test]
    fn sections_map_words_and_names_to_types() {
        assert_eq!(
            section_by_word("act").unwrap().prog_type,
            ProgType::SchedAct
        );
        assert_eq!(section_by_name("classifier/x").unwrap().word, "cls");
        assert!(section_by_name("classifierx").is_none());
        assert_eq!(
            trace_section_by_name("fexit/tc").unwrap().attach,
            Some(AttachType::TraceFexit)
        );
        assert!(trace_section_by_name("fentryx").is_none());
        assert!(section_by_name("fentry/tc").is_none());
        let xdp = section_by_name("xdp/pass").unwrap();
        assert_eq!((xdp.word, xdp.prog_type), ("xdp", ProgType::Xdp));
        assert_eq!(ProgType::Xdp.name(), "xdp");
        assert_eq!(ProgType::SchedCls.name(), "sched_cls");
    }
}

/// The program type an object's main program loads as: tc's `type cls` /
/// `type act`, or XDP (`tcbpf link set … xdp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgKind {
    /// `BPF_PROG_TYPE_SCHED_CLS`, default section `classifier`.
    #[default]
    Cls,
    /// `BPF_PROG_TYPE_SCHED_ACT`, default section `action`.
    Act,
    /// `BPF_PROG_TYPE_XDP`, default section `xdp` (`tcbpf link set … xdp`).
    Xdp,
}

impl ProgKind {
    /// Its row in the section table (`abi::PROG_SECTIONS`), which holds the
    /// type word, the kernel program type and the default section.
    pub fn section(self) -> &'static ProgSection {
        &PROG_SECTIONS[self as usize]
    }

    /// The kernel program type.
    pub fn prog_type(self) -> u32 {
        self.section().prog_type as u32
    }

    /// The section tc loads when none is named.
    pub fn default_section(self) -> &'static str {
        self.section().section
    }

    /// The kind tc's `type` word names (`cls`, `act`).
    pub fn from_word(word: &str) -> Option<ProgKind> {
        ProgKind::ALL.into_iter().find(|k| k.section().word == word)
    }

    /// Every kind, in section-table order.
    pub const ALL: [ProgKind; 3] = [ProgKind::Cls, ProgKind::Act, ProgKind::Xdp];
}

// A kind without its row (or a row without its kind) does not compile.
const _: () = assert!(ProgKind::ALL.len() == PROG_SECTIONS.len());

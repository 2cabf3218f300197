//! Extern resolution against the running kernel, as libbpf resolves
//! externs, before any other relocation:
//! - `.kconfig`: `LINUX_*` values libbpf computes, `CONFIG_*` from the
//!   kernel's config (see `kconfig`); the bytes fill the `.kconfig` map;
//! - kfuncs: a FUNC of that name in vmlinux BTF, then in module BTF
//!   (`/sys/kernel/btf/<module>`), its prototype compatible with the
//!   local one (CO-RE's `types_are_compat`);
//! - typed `__ksym` variables: a VAR of that name, type compatible;
//! - untyped `__ksym` variables: the address in `/proc/kallsyms`.
//!
//! A weak extern left unresolved is zero (a kfunc "does not exist": its
//! calls are poisoned as libbpf poisons them, its address is 0); a strong
//! one is an error naming it. `resolve` only reads files, so `obj show`
//! can report the same outcome without loading.

use super::kconfig::{self, KernelConfig};
use super::LoadError;
use crate::abi::Insn;
use crate::btf::core::types_are_compat;
use crate::btf::{BtfKind, Kind, TargetBtf, TypeView};
use crate::elf::{ExternKind, ExternSpec, ObjectSpec, ProgramSpec};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::Arc;

/// `BPF_PSEUDO_BTF_ID`.
const PSEUDO_BTF_ID: u8 = 3;
/// `BPF_PSEUDO_KFUNC_CALL`.
const PSEUDO_KFUNC_CALL: u8 = 2;
/// libbpf's `POISON_CALL_KFUNC_BASE`: a call the verifier refuses if reached.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// What an extern resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A `.kconfig` value: its bytes.
    Kconfig(Vec<u8>),
    /// A kfunc or typed kernel variable: its BTF id in vmlinux (`module`
    /// `None`) or in a module's BTF.
    BtfId {
        /// The kernel BTF id.
        id: u32,
        /// The module whose BTF defines it.
        module: Option<String>,
    },
    /// An untyped kernel symbol: its address.
    Address(u64),
}

impl std::fmt::Display for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolved::Kconfig(b) => {
                write!(f, "value ")?;
                for x in b {
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Resolved::BtfId { id, module: None } => write!(f, "vmlinux btf id {id}"),
            Resolved::BtfId {
                id,
                module: Some(m),
            } => write!(f, "module {m} btf id {id}"),
            Resolved::Address(a) => write!(f, "address {a:#x}"),
        }
    }
}

/// Why an extern did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// What is missing or wrong.
    pub reason: String,
    /// The kernel hides what was needed (kallsyms addresses).
    pub permission: bool,
    /// The running kernel has no symbol of that name (a kfunc or kernel
    /// variable it lacks): a missing kernel feature, not a bad object.
    pub absent: bool,
}

/// The outcome for one extern, in `ObjectSpec::externs` order.
pub type Outcome = Result<Resolved, Unresolved>;

fn missing(reason: impl Into<String>) -> Unresolved {
    Unresolved {
        reason: reason.into(),
        permission: false,
        absent: false,
    }
}

/// The kernel has nothing of that name.
fn absent(reason: impl Into<String>) -> Unresolved {
    Unresolved {
        absent: true,
        ..missing(reason)
    }
}

/// Resolves every extern of `spec` against the running kernel. Reads
/// files only; never fails as a whole.
pub fn resolve(spec: &ObjectSpec) -> Vec<Outcome> {
    if spec.externs.is_empty() {
        return Vec::new();
    }
    let release = kconfig::kernel_release();
    let needs_config = spec
        .externs
        .iter()
        .any(|e| matches!(e.kind, ExternKind::Kconfig { .. }) && e.name.starts_with("CONFIG_"));
    let config = match (&release, needs_config) {
        (Ok(r), true) => Some(KernelConfig::read(r)),
        (Err(e), true) => Some(Err(e.clone())),
        _ => None,
    };
    let kernel = KernelBtfs::open(spec);
    let kallsyms = spec
        .externs
        .iter()
        .any(|e| matches!(e.kind, ExternKind::Ksym { ty: 0 }))
        .then(|| std::fs::read_to_string("/proc/kallsyms").map_err(|e| e.to_string()));
    spec.externs
        .iter()
        .map(|e| match e.kind {
            ExternKind::Kconfig { ty, size, .. } => {
                if let Some(v) = kconfig::virtual_value(&e.name, release.as_deref().unwrap_or(""))
                {
                    let v = v.map_err(missing)?;
                    return kconfig::encode(
                        crate::elf::KconfigType::Int { signed: false },
                        size,
                        &v.to_string(),
                    )
                    .map(Resolved::Kconfig)
                    .map_err(missing);
                }
                if !e.name.starts_with("CONFIG_") {
                    return Err(missing(
                        "unrecognized .kconfig extern (only CONFIG_* and LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER)",
                    ));
                }
                let config = match &config {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return Err(missing(e.clone())),
                    None => return Err(missing("no kernel config")),
                };
                match config.values.get(&e.name) {
                    Some(v) => kconfig::encode(ty, size, v)
                        .map(Resolved::Kconfig)
                        .map_err(|r| missing(format!("{} in {}", r, config.source))),
                    None => Err(missing(format!("not set in {}", config.source))),
                }
            }
            ExternKind::Kfunc { proto } => kernel.as_ref().map_err(|e| missing(e.clone()))?.find(
                spec,
                e,
                BtfKind::Func,
                proto,
            ),
            ExternKind::Ksym { ty: 0 } => match &kallsyms {
                Some(Ok(text)) => kallsyms_address(text, &e.name),
                Some(Err(err)) => Err(missing(format!("/proc/kallsyms: {err}"))),
                None => Err(missing("no /proc/kallsyms")),
            },
            ExternKind::Ksym { ty } => kernel.as_ref().map_err(|e| missing(e.clone()))?.find(
                spec,
                e,
                BtfKind::Var,
                ty,
            ),
        })
        .collect()
}

/// The address of `name` in kallsyms text; addresses shown as zero mean
/// the kernel hides them from this process.
fn kallsyms_address(text: &str, name: &str) -> Outcome {
    let mut found: Option<u64> = None;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(addr), Some(_), Some(sym)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if sym != name {
            continue;
        }
        let addr = u64::from_str_radix(addr, 16).unwrap_or(0);
        match found {
            Some(a) if a != addr => {
                return Err(missing(format!(
                    "ambiguous in /proc/kallsyms ({a:#x} and {addr:#x})"
                )))
            }
            _ => found = Some(addr),
        }
    }
    match found {
        Some(0) => Err(Unresolved {
            reason: "/proc/kallsyms hides kernel addresses from this process (kernel.kptr_restrict, or no CAP_SYSLOG)".into(),
            permission: true,
            absent: false,
        }),
        Some(a) => Ok(Resolved::Address(a)),
        None => Err(absent("not in /proc/kallsyms")),
    }
}

/// vmlinux BTF, and module BTFs read only when a name is not in vmlinux.
struct KernelBtfs {
    vmlinux: Arc<TargetBtf>,
    modules: std::cell::OnceCell<Vec<(String, TargetBtf)>>,
}

impl KernelBtfs {
    fn open(spec: &ObjectSpec) -> Result<KernelBtfs, String> {
        let path = PathBuf::from(super::core::KERNEL_BTF_DIR).join("vmlinux");
        let vmlinux = super::core::read_btf(&spec.file, &path, None).map_err(|e| e.to_string())?;
        Ok(KernelBtfs {
            vmlinux: Arc::new(vmlinux),
            modules: std::cell::OnceCell::new(),
        })
    }

    fn modules(&self) -> &[(String, TargetBtf)] {
        self.modules.get_or_init(|| {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(super::core::KERNEL_BTF_DIR)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            entries
                .into_iter()
                .filter(|p| !p.ends_with("vmlinux"))
                .filter_map(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    let btf = super::core::read_btf("", &p, Some(self.vmlinux.clone())).ok()?;
                    Some((name, btf))
                })
                .collect()
        })
    }

    /// The kernel FUNC or VAR named like `e`, compatible with local type `local`.
    fn find(&self, spec: &ObjectSpec, e: &ExternSpec, kind: BtfKind, local: u32) -> Outcome {
        let what = if kind == BtfKind::Func {
            "kfunc"
        } else {
            "kernel variable"
        };
        let Some(btf) = &spec.btf else {
            return Err(missing("the object has no BTF"));
        };
        // kfuncs are looked up by their essential name (`bpf_f___v2` is
        // `bpf_f`), as libbpf does.
        let names = [if kind == BtfKind::Func {
            crate::btf::essential_name(&e.name)
        } else {
            e.name.as_str()
        }];
        let mut places: Vec<(Option<&str>, &TargetBtf)> = vec![(None, &self.vmlinux)];
        let mut hit = self.vmlinux.find_named(&names, kind);
        if hit.is_empty() {
            for (m, b) in self.modules() {
                hit = b.find_named(&names, kind);
                if !hit.is_empty() {
                    places = vec![(Some(m.as_str()), b)];
                    break;
                }
            }
        }
        let Some((_, id)) = hit.first() else {
            return Err(absent(format!(
                "no {what} of that name in the kernel's BTF (vmlinux or modules)"
            )));
        };
        let (module, target) = places[0];
        let targ_type = match target.ty(*id).map(|t| t.kind.clone()) {
            Ok(Kind::Func(f)) => f.proto,
            Ok(Kind::Var(v)) => match target.skip_mods_and_typedefs(v.ty) {
                Ok(t) => t,
                Err(err) => return Err(missing(err.to_string())),
            },
            _ => return Err(missing("kernel BTF entry of the wrong kind")),
        };
        match types_are_compat(btf, local, target, targ_type) {
            Ok(true) => Ok(Resolved::BtfId {
                id: *id,
                module: module.map(str::to_string),
            }),
            Ok(false) => Err(missing(format!(
                "the kernel's {} [{targ_type}] (of [{id}]) is incompatible with the declared {}",
                if kind == BtfKind::Func {
                    "prototype"
                } else {
                    "type"
                },
                btf.describe(local)
            ))),
            Err(err) => Err(missing(err.to_string())),
        }
    }
}

/// Checks that every strong extern resolved: the first that did not is
/// an error naming it (a permission error when the kernel hides it).
pub(crate) fn check(spec: &ObjectSpec, outcomes: &[Outcome]) -> Result<(), LoadError> {
    for (e, o) in spec.externs.iter().zip(outcomes) {
        let Err(u) = o else { continue };
        if e.weak && !u.permission {
            continue;
        }
        if u.permission {
            return Err(LoadError::Sys {
                file: spec.file.clone(),
                what: format!("extern ({}) '{}' ({})", e.kind.name(), e.name, u.reason),
                source: crate::sys::Error::new(
                    "reading /proc/kallsyms",
                    std::io::Error::from_raw_os_error(libc::EPERM),
                ),
            });
        }
        let what = format!("extern ({}) '{}'", e.kind.name(), e.name);
        let reason = format!(
            "not resolved: {} (declare it __weak to load without it)",
            u.reason
        );
        return Err(if u.absent {
            LoadError::Unsupported {
                file: spec.file.clone(),
                what,
                reason,
            }
        } else {
            LoadError::Invalid {
                file: spec.file.clone(),
                what,
                reason,
            }
        });
    }
    Ok(())
}

/// The contents of the `.kconfig` map: every resolved value at its offset,
/// zeros elsewhere.
pub(crate) fn kconfig_data(spec: &ObjectSpec, outcomes: &[Outcome], size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    for (e, o) in spec.externs.iter().zip(outcomes) {
        if let (ExternKind::Kconfig { offset, .. }, Ok(Resolved::Kconfig(bytes))) = (e.kind, o) {
            let off = offset as usize;
            if let Some(dst) = data.get_mut(off..off + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
    }
    data
}

/// The module BTF objects a load refers to, opened by name.
#[derive(Debug, Default)]
pub(crate) struct ModuleBtfs {
    fds: Vec<(String, crate::sys::BtfFd)>,
}

impl ModuleBtfs {
    /// Opens the kernel BTF object of every module some outcome names.
    pub(crate) fn open(spec: &ObjectSpec, outcomes: &[Outcome]) -> Result<ModuleBtfs, LoadError> {
        let mut wanted: Vec<&str> = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(Resolved::BtfId {
                    module: Some(m), ..
                }) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = ModuleBtfs::default();
        if wanted.is_empty() {
            return Ok(out);
        }
        let sys_err = |what: String, source| LoadError::Sys {
            file: spec.file.clone(),
            what,
            source,
        };
        let mut id = 0;
        while let Some(next) =
            crate::sys::obj::next_btf_id(id).map_err(|e| sys_err("kernel BTF".into(), e))?
        {
            id = next;
            let Ok(fd) = crate::sys::obj::btf_by_id(id) else {
                continue;
            };
            let Ok(info) = crate::sys::info::btf_info(&fd) else {
                continue;
            };
            if info.kernel && wanted.contains(&info.name.as_str()) {
                out.fds.push((info.name, fd));
            }
        }
        if let Some(m) = wanted
            .iter()
            .find(|m| !out.fds.iter().any(|(n, _)| n == *m))
        {
            return Err(LoadError::Invalid {
                file: spec.file.clone(),
                what: format!("module BTF '{m}'"),
                reason: "the kernel has no BTF object for this module (unloaded meanwhile?)".into(),
            });
        }
        Ok(out)
    }

    fn fd_of(&self, module: &str) -> Option<i32> {
        self.fds
            .iter()
            .find(|(n, _)| n == module)
            .map(|(_, fd)| fd.as_fd().as_raw_fd())
    }
}

/// Writes the resolved externs into `insns` (a copy of `p.insns`) and
/// returns the program's `fd_array` (module BTF descriptors that kfunc
/// calls name by index; slot 0 stays unused, as `off` 0 means vmlinux).
pub(crate) fn patch(
    p: &ProgramSpec,
    insns: &mut [Insn],
    outcomes: &[Outcome],
    modules: &ModuleBtfs,
) -> Vec<i32> {
    let mut fd_array: Vec<i32> = Vec::new();
    for r in &p.extern_refs {
        let outcome = outcomes.get(r.ext).and_then(|o| o.as_ref().ok());
        let module_fd = match outcome {
            Some(Resolved::BtfId {
                module: Some(m), ..
            }) => modules.fd_of(m),
            _ => None,
        };
        let insn = &mut insns[r.insn];
        match (r.call, outcome) {
            (true, Some(Resolved::BtfId { id, .. })) => {
                insn.set_src(PSEUDO_KFUNC_CALL);
                insn.imm = *id as i32;
                insn.off = match module_fd {
                    Some(fd) => {
                        if fd_array.is_empty() {
                            fd_array.push(-1);
                        }
                        let idx = match fd_array.iter().position(|&f| f == fd) {
                            Some(i) => i,
                            None => {
                                fd_array.push(fd);
                                fd_array.len() - 1
                            }
                        };
                        idx as i16
                    }
                    None => 0,
                };
            }
            (true, _) => {
                // libbpf's poison_kfunc_call: refused by the verifier only
                // if reached (bpf_ksym_exists() guards it).
                *insn = Insn {
                    code: insn.code,
                    regs: 0,
                    off: 0,
                    imm: POISON_CALL_KFUNC_BASE + r.ext as i32,
                };
            }
            (false, Some(Resolved::BtfId { id, .. })) => {
                insn.set_src(PSEUDO_BTF_ID);
                insn.imm = *id as i32;
                insns[r.insn + 1].imm = module_fd.unwrap_or(0);
            }
            (false, Some(Resolved::Address(a))) => {
                insn.set_src(0);
                insn.imm = *a as u32 as i32;
                insns[r.insn + 1].imm = (*a >> 32) as u32 as i32;
            }
            (false, _) => {
                insn.set_src(0);
                insn.imm = 0;
                insns[r.insn + 1].imm = 0;
            }
        }
    }
    fd_array
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::ExternRef;

    fn prog(refs: Vec<ExternRef>, n: usize) -> ProgramSpec {
        ProgramSpec {
            name: "p".into(),
            section: "classifier".into(),
            insns: vec![Insn::default(); n],
            map_refs: Vec::new(),
            extern_refs: refs,
            tail_call: None,
            layout: Vec::new(),
            func_info: Vec::new(),
            line_info: Vec::new(),
        }
    }

    #[test]
    fn patch_writes_kfunc_calls_addresses_and_poisons_missing_calls() {
        let r = |insn, ext, call| ExternRef { insn, ext, call };
        let p = prog(
            vec![r(0, 0, true), r(1, 1, true), r(2, 1, false), r(4, 2, false)],
            6,
        );
        let mut insns = p.insns.clone();
        insns[0] = Insn {
            code: 0x85,
            regs: 0x10,
            off: 0,
            imm: -1,
        };
        insns[1] = insns[0];
        insns[2].code = 0x18;
        insns[4].code = 0x18;
        let outcomes = vec![
            Ok(Resolved::BtfId {
                id: 42,
                module: None,
            }),
            Err(missing("absent")),
            Ok(Resolved::Address(0xffff_ffff_8100_0010)),
        ];
        let fd_array = patch(&p, &mut insns, &outcomes, &ModuleBtfs::default());
        assert!(fd_array.is_empty(), "vmlinux kfuncs need no fd_array");
        assert_eq!((insns[0].src(), insns[0].imm, insns[0].off), (2, 42, 0));
        assert_eq!(
            (insns[1].src(), insns[1].imm),
            (0, POISON_CALL_KFUNC_BASE + 1)
        );
        assert_eq!((insns[2].src(), insns[2].imm, insns[3].imm), (0, 0, 0));
        assert_eq!(insns[4].imm as u32, 0x8100_0010);
        assert_eq!(insns[5].imm as u32, 0xffff_ffff);
    }

    #[test]
    fn kallsyms_gives_the_address_or_says_it_is_hidden() {
        let text = "ffffffff81000000 T _stext\nffffffff820945b0 T tcp_v4_rcv\nffffffffc0001000 t f [mod]\n";
        assert_eq!(
            kallsyms_address(text, "tcp_v4_rcv"),
            Ok(Resolved::Address(0xffff_ffff_8209_45b0))
        );
        let nope = kallsyms_address(text, "nope").unwrap_err();
        assert!(!nope.permission && nope.absent);
        let hidden = "0000000000000000 T tcp_v4_rcv\n";
        assert!(
            kallsyms_address(hidden, "tcp_v4_rcv")
                .unwrap_err()
                .permission
        );
        let twice = "0000000000000010 T f\n0000000000000020 t f\n";
        assert!(kallsyms_address(twice, "f")
            .unwrap_err()
            .reason
            .contains("ambiguous"));
    }
}

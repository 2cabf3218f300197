//! The running kernel's configuration and version, as `.kconfig` externs
//! read them: `CONFIG_*` from `/proc/config.gz` (gzip, read with flate2)
//! or `/boot/config-$(uname -r)`, and `LINUX_KERNEL_VERSION` from the
//! release. The value encodings are libbpf's (`set_kcfg_value_*`), in
//! pure functions; only `KernelConfig::read` and `kernel_release` touch
//! files.

use crate::elf::KconfigType;
use std::collections::HashMap;
use std::io::Read;

/// Where the kernel exposes its configuration when built with IKCONFIG_PROC.
pub const PROC_CONFIG: &str = "/proc/config.gz";

/// `CONFIG_NAME` → raw value (`y`, `m`, `250`, `"(none)"`), from a config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// The values set (`# CONFIG_X is not set` lines are absent).
    pub values: HashMap<String, String>,
    /// The file it came from.
    pub source: String,
}

impl KernelConfig {
    /// Reads `/proc/config.gz`, else `/boot/config-RELEASE`.
    pub fn read(release: &str) -> Result<KernelConfig, String> {
        let gz_err = match std::fs::File::open(PROC_CONFIG) {
            Ok(f) => {
                let mut text = String::new();
                match flate2::read::GzDecoder::new(f).read_to_string(&mut text) {
                    Ok(_) => return Ok(KernelConfig::parse(&text, PROC_CONFIG)),
                    Err(e) => format!("{PROC_CONFIG}: {e}"),
                }
            }
            Err(e) => format!("{PROC_CONFIG}: {e}"),
        };
        let boot = format!("/boot/config-{release}");
        match std::fs::read_to_string(&boot) {
            Ok(text) => Ok(KernelConfig::parse(&text, &boot)),
            Err(e) => Err(format!("no kernel config: {gz_err}; {boot}: {e}")),
        }
    }

    /// Parses config text: `CONFIG_X=value` lines, everything else ignored.
    pub fn parse(text: &str, source: &str) -> KernelConfig {
        let values = text
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_end().to_string()))
            .collect();
        KernelConfig {
            values,
            source: source.to_string(),
        }
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("/proc/sys/kernel/osrelease: {e}"))
}

/// `KERNEL_VERSION(a, b, c)` of a release like `6.18.44-foo`, the patch
/// level capped at 255 as libbpf caps it.
pub fn kernel_version_code(release: &str) -> Option<u32> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    let patch: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major << 16) + (minor.min(255) << 8) + patch.min(255))
}

/// The bytes of `value` (a config value as written in the file) for an
/// extern of type `ty` and `size` bytes, as libbpf encodes it; an error
/// says why the value does not fit the declared type.
pub fn encode(ty: KconfigType, size: u32, value: &str) -> Result<Vec<u8>, String> {
    let size = size as usize;
    match value.as_bytes().first() {
        Some(&c @ (b'y' | b'm' | b'n')) if value.len() == 1 => match ty {
            KconfigType::Bool if c == b'm' => {
                Err("value 'm' for a bool (declare it enum libbpf_tristate)".into())
            }
            KconfigType::Bool => Ok(vec![u8::from(c == b'y')]),
            KconfigType::Tristate => {
                let v: u32 = match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                Ok(v.to_le_bytes().to_vec())
            }
            KconfigType::Char => Ok(vec![c]),
            _ => Err(format!(
                "value '{}' implies a bool, tristate or char type",
                c as char
            )),
        },
        Some(b'"') => {
            if ty != KconfigType::CharArray {
                return Err(format!("string value {value} for a non-string type"));
            }
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("badly quoted string value {value}"))?;
            let mut out = vec![0u8; size];
            let n = inner.len().min(size.saturating_sub(1));
            out[..n].copy_from_slice(&inner.as_bytes()[..n]);
            Ok(out)
        }
        _ => {
            let (signed, is_char) = match ty {
                KconfigType::Int { signed } => (signed, false),
                KconfigType::Char => (false, true),
                _ => return Err(format!("value '{value}' is a number, the type is not")),
            };
            let num = parse_u64(value).ok_or_else(|| format!("bad number '{value}'"))?;
            let bits = size as u32 * 8;
            let fits = if signed && !is_char {
                let v = num as i64;
                bits == 64 || (v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1)))
            } else {
                bits == 64 || num < (1u64 << bits)
            };
            if !fits {
                return Err(format!("value {value} does not fit in {size} byte(s)"));
            }
            Ok(num.to_le_bytes()[..size].to_vec())
        }
    }
}

/// `strtoull(s, NULL, 0)` over the whole string: decimal, `0x` hex, `0` octal,
/// and a leading `-` as C's two's-complement wrap.
fn parse_u64(s: &str) -> Option<u64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The values of `LINUX_*` externs libbpf fills itself; `None` for an
/// unknown one.
pub fn virtual_value(name: &str, release: &str) -> Option<Result<u64, String>> {
    match name {
        "LINUX_KERNEL_VERSION" => Some(
            kernel_version_code(release)
                .map(u64::from)
                .ok_or_else(|| format!("cannot read a version in release '{release}'")),
        ),
        // Both hold on every kernel tcbpf runs on (6.x, x86_64 / arm64).
        "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER" => Some(Ok(1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_code_is_libbpfs() {
        assert_eq!(kernel_version_code("6.18.44-fc-v857"), Some(397_868));
        assert_eq!(
            kernel_version_code("5.4.300"),
            Some((5 << 16) + (4 << 8) + 255)
        );
        assert_eq!(kernel_version_code("6.1"), Some((6 << 16) + (1 << 8)));
        assert_eq!(kernel_version_code("x"), None);
    }

    #[test]
    fn values_encode_as_libbpf_encodes_them() {
        assert_eq!(encode(KconfigType::Bool, 1, "y").unwrap(), [1]);
        assert_eq!(encode(KconfigType::Bool, 1, "n").unwrap(), [0]);
        assert!(encode(KconfigType::Bool, 1, "m").is_err());
        assert_eq!(encode(KconfigType::Tristate, 4, "m").unwrap(), [2, 0, 0, 0]);
        assert_eq!(encode(KconfigType::Tristate, 4, "y").unwrap(), [1, 0, 0, 0]);
        assert_eq!(encode(KconfigType::Char, 1, "m").unwrap(), [b'm']);
        let int = KconfigType::Int { signed: true };
        assert_eq!(encode(int, 4, "250").unwrap(), 250u32.to_le_bytes());
        assert_eq!(encode(int, 2, "0x10").unwrap(), [16, 0]);
        assert_eq!(encode(int, 4, "-1").unwrap(), [0xff; 4]);
        assert!(encode(int, 2, "70000").is_err());
        assert!(encode(int, 4, "y").is_err());
        assert_eq!(
            encode(KconfigType::CharArray, 4, "\"(none)\"").unwrap(),
            *b"(no\0"
        );
        assert!(encode(KconfigType::CharArray, 4, "12").is_err());
    }

    #[test]
    fn config_text_keeps_set_values_only() {
        let c = KernelConfig::parse("# CONFIG_A is not set\nCONFIG_B=y\nCONFIG_S=\"x y\"\n", "t");
        assert_eq!(c.values.len(), 2);
        assert_eq!(c.values["CONFIG_B"], "y");
        assert_eq!(c.values["CONFIG_S"], "\"x y\"");
    }
}

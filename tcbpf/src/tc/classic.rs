//! Classic BPF for cls_bpf (`bytecode "N,c t f k,…"` and `bytecode-file
//! FILE`): the text tc, `bpf_asm` and `tcpdump -ddd` write, parsed into
//! `struct sock_filter` instructions, and back; the bytes of
//! `TCA_BPF_OPS`. Pure: no files, no syscalls (the CLI reads the file).

use std::fmt;

/// The most instructions a classic program may have (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Bytes of one `struct sock_filter`.
pub const INSN_LEN: usize = 8;

/// One `struct sock_filter`: opcode, jump offsets if true and if false, and
/// the constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassicInsn {
    /// `code`.
    pub code: u16,
    /// `jt`.
    pub jt: u8,
    /// `jf`.
    pub jf: u8,
    /// `k`.
    pub k: u32,
}

/// Why a bytecode text is not a classic program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytecodeError(pub String);

impl fmt::Display for BytecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BytecodeError {}

impl BytecodeError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

/// Parses `N,c t f k,c t f k,…` (as `bytecode` takes it). A file's text
/// (`bytecode-file`) may put each part on its own line instead, as
/// `tcpdump -ddd` writes it: newlines count as commas. The count `N` must
/// match the instructions that follow, 1 to 4096 of them.
pub fn parse_bytecode(text: &str) -> Result<Vec<ClassicInsn>, BytecodeError> {
    let err = |m: String| BytecodeError(m);
    let parts: Vec<&str> = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let Some((count, insns)) = parts.split_first() else {
        return Err(err("empty bytecode: expected 'N,c t f k,…'".into()));
    };
    let count: usize = count.parse().map_err(|_| {
        err(format!(
            "bytecode starts with '{count}', not the instruction count N"
        ))
    })?;
    if count == 0 || count > MAX_INSNS {
        return Err(err(format!(
            "bytecode count {count} is not between 1 and {MAX_INSNS}"
        )));
    }
    if insns.len() != count {
        return Err(err(format!(
            "bytecode says {count} instruction(s) but holds {}",
            insns.len()
        )));
    }
    insns
        .iter()
        .enumerate()
        .map(|(i, part)| parse_insn(part).ok_or_else(|| {
            err(format!(
                "bytecode instruction {i} '{part}' is not 'code jt jf k' (numbers: code < 65536, jt and jf < 256, k < 2^32)"
            ))
        }))
        .collect()
}

fn parse_insn(part: &str) -> Option<ClassicInsn> {
    let words: Vec<&str> = part.split_whitespace().collect();
    let [code, jt, jf, k] = words[..] else {
        return None;
    };
    Some(ClassicInsn {
        code: code.parse().ok()?,
        jt: jt.parse().ok()?,
        jf: jf.parse().ok()?,
        k: k.parse().ok()?,
    })
}

/// The program as tc prints it: `N,c t f k,…`.
pub fn format_bytecode(insns: &[ClassicInsn]) -> String {
    let mut s = insns.len().to_string();
    for i in insns {
        s += &format!(",{} {} {} {}", i.code, i.jt, i.jf, i.k);
    }
    s
}

/// The program as `TCA_BPF_OPS` carries it: `struct sock_filter[]`, native
/// byte order.
pub fn to_bytes(insns: &[ClassicInsn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * INSN_LEN);
    for i in insns {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// `TCA_BPF_OPS` back into instructions (a trailing partial one is ignored).
pub fn from_bytes(bytes: &[u8]) -> Vec<ClassicInsn> {
    bytes
        .chunks_exact(INSN_LEN)
        .map(|c| ClassicInsn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DROP_UDP_7000: &str = "11,40 0 0 12,21 0 8 2048,48 0 0 23,21 0 6 17,40 0 0 20,69 4 0 8191,177 0 0 14,72 0 0 16,21 0 1 7000,6 0 0 2,6 0 0 4294967295";

    #[test]
    fn tc_text_parses_and_prints_back_the_same() {
        let insns = parse_bytecode(DROP_UDP_7000).unwrap();
        assert_eq!(insns.len(), 11);
        assert_eq!(
            insns[5],
            ClassicInsn {
                code: 69,
                jt: 4,
                jf: 0,
                k: 8191
            }
        );
        assert_eq!(insns[10].k, u32::MAX);
        assert_eq!(format_bytecode(&insns), DROP_UDP_7000);
        assert_eq!(from_bytes(&to_bytes(&insns)), insns);
    }

    #[test]
    fn tcpdump_ddd_lines_read_as_commas() {
        let file = "2\n40 0 0 12\n6 0 0 0\n";
        assert_eq!(
            parse_bytecode(file).unwrap(),
            parse_bytecode("2,40 0 0 12,6 0 0 0").unwrap()
        );
    }

    #[test]
    fn sock_filter_bytes_are_code_jt_jf_k() {
        let b = to_bytes(&[ClassicInsn {
            code: 0x28,
            jt: 1,
            jf: 2,
            k: 12,
        }]);
        assert_eq!(b, [0x28, 0, 1, 2, 12, 0, 0, 0]);
    }

    #[test]
    fn bad_bytecode_says_what_is_wrong() {
        let msg = |t: &str| parse_bytecode(t).unwrap_err().0;
        assert!(msg("").contains("empty"));
        assert!(msg("x,6 0 0 0").contains("'x'"));
        assert!(msg("0").contains("between 1 and 4096"));
        assert!(msg("3,6 0 0 0").contains("says 3 instruction(s) but holds 1"));
        assert!(msg("1,6 0 0 0,6 0 0 1").contains("holds 2"));
        assert!(msg("1,6 0 0").contains("instruction 0 '6 0 0'"));
        assert!(msg("1,6 0 256 0").contains("jt and jf < 256"));
        assert!(msg("1,65536 0 0 0").contains("is not 'code jt jf k'"));
    }
}

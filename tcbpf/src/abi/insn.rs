//! One eBPF instruction as the kernel takes it. Pure data; no syscalls.

/// One eBPF instruction as the kernel takes it (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register in the low nibble, source in the high nibble.
    pub regs: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}
// `regs` is the dst_reg:4/src_reg:4 bit-field byte.
abi_layout!(Insn, 8; code @ 0, regs @ 1, off @ 2, imm @ 4);

impl Insn {
    /// Destination register.
    pub fn dst(self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register.
    pub fn src(self) -> u8 {
        self.regs >> 4
    }

    /// Sets the source register (e.g. `BPF_PSEUDO_MAP_FD`).
    pub fn set_src(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | (src << 4);
    }

    /// Decodes little-endian instruction bytes; a trailing partial
    /// instruction is an error.
    pub fn from_bytes(bytes: &[u8]) -> Option<Vec<Insn>> {
        if bytes.len() % 8 != 0 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| Insn {
                    code: c[0],
                    regs: c[1],
                    off: i16::from_le_bytes([c[2], c[3]]),
                    imm: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        )
    }
}

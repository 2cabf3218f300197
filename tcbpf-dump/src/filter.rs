//! `filter 'EXPR'`: a pcap filter expression compiled by libpcap (for
//! Ethernet frames, optimised, as tcpdump compiles it) into classic BPF,
//! then translated into the eBPF body of the tracing program's filter
//! (`tcbpf::trace::classic`). libpcap is linked into this binary only.

use crate::args::Fail;
use tcbpf::abi::Insn;
use tcbpf::tc::classic;
use tcbpf::trace::classic::translate;

/// The eBPF filter for `expr`.
pub fn compile(expr: &str) -> Result<Vec<Insn>, Fail> {
    let dead = pcap::Capture::dead_with_precision(pcap::Linktype::ETHERNET, pcap::Precision::Nano)
        .map_err(|e| Fail::other(format!("libpcap: {e}")))?;
    let prog = dead
        .compile(expr, true)
        .map_err(|e| Fail::usage(format!("filter '{expr}': {e}")))?;
    // libpcap prints each instruction as "code jt jf k": tc's bytecode text.
    let insns = prog.get_instructions();
    let mut text = format!("{},", insns.len());
    for (i, insn) in insns.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&insn.to_string());
    }
    let classic = classic::parse_bytecode(&text)
        .map_err(|e| Fail::other(format!("filter '{expr}': libpcap's program: {}", e.0)))?;
    translate(&classic).map_err(|e| Fail::usage(format!("filter '{expr}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpdump_expressions_compile_and_bad_ones_are_usage_errors() {
        assert!(compile("udp port 4242").unwrap().len() > 14);
        assert!(compile("").is_ok());
        let e = compile("udp prot 4242").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("udp prot 4242"), "{}", e.message);
    }
}

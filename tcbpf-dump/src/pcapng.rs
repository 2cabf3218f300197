//! A pcapng writer (the format Wireshark and tshark read): one section
//! header, one interface description block per device and direction
//! (Ethernet, nanosecond stamps), and per packet an enhanced packet block
//! whose comment (and a custom string option) says what the traced
//! program did. Pure: writes bytes to any `Write`, knows nothing of BPF.

use std::io::{self, Write};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
/// A custom option holding UTF-8, copied when the packet is (pcapng 4.3).
const OPT_CUSTOM_STR: u16 = 2988;
/// The Private Enterprise Number in the custom option: 32473, set aside
/// for documentation and examples (RFC 5612); tcbpf has none of its own.
pub const CUSTOM_PEN: u32 = 32473;
const LINKTYPE_ETHERNET: u16 = 1;

/// Writes a pcapng stream.
pub struct Writer<W: Write> {
    out: W,
    interfaces: Vec<String>,
}

fn option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_ne_bytes());
    buf.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    buf.extend_from_slice(value);
    pad(buf);
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

impl<W: Write> Writer<W> {
    /// Starts the stream: the section header block.
    pub fn new(mut out: W) -> io::Result<Writer<W>> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_ne_bytes());
        body.extend_from_slice(&1u16.to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes());
        body.extend_from_slice(&(-1i64).to_ne_bytes());
        option(&mut body, SHB_USERAPPL, b"tcbpf dump");
        option(&mut body, OPT_END, &[]);
        write_block(&mut out, SHB, &body)?;
        Ok(Writer {
            out,
            interfaces: Vec::new(),
        })
    }

    /// The interface id of `name` (`va ingress`), writing its description
    /// block the first time.
    pub fn interface(&mut self, name: &str, snaplen: u32) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|n| n == name) {
            return Ok(i as u32);
        }
        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes());
        body.extend_from_slice(&snaplen.to_ne_bytes());
        option(&mut body, IF_NAME, name.as_bytes());
        option(&mut body, IF_TSRESOL, &[9]);
        option(&mut body, OPT_END, &[]);
        write_block(&mut self.out, IDB, &body)?;
        self.interfaces.push(name.to_string());
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// One packet: its captured bytes, original length, time in
    /// nanoseconds since the epoch, and the comment saying what happened.
    pub fn packet(
        &mut self,
        interface: u32,
        time_ns: u64,
        data: &[u8],
        len: u32,
        comment: &str,
    ) -> io::Result<()> {
        let mut body = Vec::with_capacity(32 + data.len() + comment.len() * 2);
        body.extend_from_slice(&interface.to_ne_bytes());
        body.extend_from_slice(&((time_ns >> 32) as u32).to_ne_bytes());
        body.extend_from_slice(&(time_ns as u32).to_ne_bytes());
        body.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        body.extend_from_slice(&len.max(data.len() as u32).to_ne_bytes());
        body.extend_from_slice(data);
        pad(&mut body);
        option(&mut body, OPT_COMMENT, comment.as_bytes());
        let mut custom = CUSTOM_PEN.to_ne_bytes().to_vec();
        custom.extend_from_slice(comment.as_bytes());
        option(&mut body, OPT_CUSTOM_STR, &custom);
        option(&mut body, OPT_END, &[]);
        write_block(&mut self.out, EPB, &body)
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn write_block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    let mut block = Vec::with_capacity(total as usize);
    block.extend_from_slice(&kind.to_ne_bytes());
    block.extend_from_slice(&total.to_ne_bytes());
    block.extend_from_slice(body);
    block.extend_from_slice(&total.to_ne_bytes());
    out.write_all(&block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_framed_and_padded() {
        let mut w = Writer::new(Vec::new()).unwrap();
        assert_eq!(w.interface("v1 ingress", 128).unwrap(), 0);
        assert_eq!(w.interface("v1 ingress", 128).unwrap(), 0);
        assert_eq!(w.interface("v1 egress", 128).unwrap(), 1);
        w.packet(1, 1_000_000_001, &[1, 2, 3], 60, "verdict=TC_ACT_OK")
            .unwrap();
        let bytes = w.out;
        // Walk the blocks by their lengths: each starts and ends with it.
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < bytes.len() {
            let kind = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap());
            let len = u32::from_ne_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let tail = u32::from_ne_bytes(bytes[off + len - 4..off + len].try_into().unwrap());
            assert_eq!(tail as usize, len);
            kinds.push(kind);
            off += len;
        }
        assert_eq!(kinds, vec![SHB, IDB, IDB, EPB]);
    }

    /// The real tshark (scripts/setup.sh installs it) reads what we write:
    /// every packet, its interface, time and comment.
    #[test]
    fn tshark_reads_packets_interfaces_and_comments() {
        let path = std::env::temp_dir().join(format!("tcbpf-pcapng-{}.pcapng", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut w = Writer::new(std::io::BufWriter::new(file)).unwrap();
        let frame = {
            let mut f = vec![0xaa; 12];
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1, 0x14, 0xe9, 0x10, 0x92, 0, 8, 0, 0]);
            f
        };
        for i in 0..6u64 {
            let name = if i % 2 == 0 {
                "v1 ingress"
            } else {
                "v1 egress"
            };
            let iface = w.interface(name, 128).unwrap();
            let comment = format!("prog=7 name=p{i} verdict=TC_ACT_SHOT mark=0x0->0x2a");
            w.packet(iface, 1_700_000_000_000_000_000 + i, &frame, 60, &comment)
                .unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let out = std::process::Command::new("tshark")
            .args(["-r"])
            .arg(&path)
            .args([
                "-T",
                "fields",
                "-e",
                "frame.interface_name",
                "-e",
                "frame.comment",
                "-e",
                "udp.dstport",
                "-e",
                "frame.len",
            ])
            .output()
            .expect("tshark (scripts/setup.sh installs it)");
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(
            lines[1],
            "v1 egress\tprog=7 name=p1 verdict=TC_ACT_SHOT mark=0x0->0x2a\t4242\t60"
        );
    }
}

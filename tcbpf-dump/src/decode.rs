//! One line per packet in tcpdump's words (`IP 10.0.0.2.5353 >
//! 10.0.0.1.4242: UDP, length 100`) from the first bytes of an Ethernet
//! frame: IPv4, IPv6, UDP, TCP, ICMP, ICMPv6 and ARP, the rest by
//! ethertype. Pure; a short capture says so instead of guessing.

use std::net::{Ipv4Addr, Ipv6Addr};

fn be16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(o)?, *b.get(o + 1)?]))
}

/// The summary of frame `data` (captured bytes) of `len` bytes.
pub fn summary(data: &[u8], len: u32) -> String {
    let Some(ethertype) = be16(data, 12) else {
        return format!("[|ether] length {len}");
    };
    let l3 = &data[14..];
    match ethertype {
        0x0800 => ipv4(l3).unwrap_or_else(|| format!("IP [|ip] length {len}")),
        0x86dd => ipv6(l3).unwrap_or_else(|| format!("IP6 [|ip6] length {len}")),
        0x0806 => arp(l3).unwrap_or_else(|| format!("ARP [|arp] length {len}")),
        t => format!("ethertype {t:#06x}, length {len}"),
    }
}

fn ipv4(b: &[u8]) -> Option<String> {
    let ihl = usize::from(b.first()? & 0x0f) * 4;
    let total = usize::from(be16(b, 2)?);
    let proto = *b.get(9)?;
    let src = Ipv4Addr::new(*b.get(12)?, b[13], b[14], b[15]);
    let dst = Ipv4Addr::new(*b.get(16)?, b[17], b[18], b[19]);
    let payload = total.saturating_sub(ihl);
    Some(format!(
        "IP {}",
        l4(
            proto,
            &src.to_string(),
            &dst.to_string(),
            b.get(ihl..)?,
            payload
        )
    ))
}

fn ipv6(b: &[u8]) -> Option<String> {
    let payload = usize::from(be16(b, 4)?);
    let next = *b.get(6)?;
    let src: [u8; 16] = b.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = b.get(24..40)?.try_into().ok()?;
    let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
    Some(format!(
        "IP6 {}",
        l4(next, &s.to_string(), &d.to_string(), b.get(40..)?, payload)
    ))
}

fn l4(proto: u8, src: &str, dst: &str, b: &[u8], payload: usize) -> String {
    let ports = || Some((be16(b, 0)?, be16(b, 2)?));
    match (proto, ports()) {
        (17, Some((sp, dp))) => format!(
            "{src}.{sp} > {dst}.{dp}: UDP, length {}",
            payload.saturating_sub(8)
        ),
        (6, Some((sp, dp))) => {
            let flags = b.get(13).copied().unwrap_or(0);
            let off = usize::from(b.get(12).copied().unwrap_or(0x50) >> 4) * 4;
            let mut f = String::new();
            for (bit, c) in [
                (0x02, 'S'),
                (0x01, 'F'),
                (0x04, 'R'),
                (0x08, 'P'),
                (0x10, '.'),
            ] {
                if flags & bit != 0 {
                    f.push(c);
                }
            }
            format!(
                "{src}.{sp} > {dst}.{dp}: Flags [{f}], length {}",
                payload.saturating_sub(off)
            )
        }
        (1, _) | (58, _) => {
            let kind = match (proto, b.first()) {
                (1, Some(8)) => "echo request".to_string(),
                (1, Some(0)) => "echo reply".to_string(),
                (58, Some(128)) => "echo request".to_string(),
                (58, Some(129)) => "echo reply".to_string(),
                (_, Some(t)) => format!("type {t}"),
                (_, None) => "[|icmp]".to_string(),
            };
            let name = if proto == 1 { "ICMP" } else { "ICMP6" };
            match (be16(b, 4), be16(b, 6)) {
                (Some(id), Some(seq)) if kind.starts_with("echo") => {
                    format!("{src} > {dst}: {name} {kind}, id {id}, seq {seq}, length {payload}")
                }
                _ => format!("{src} > {dst}: {name} {kind}, length {payload}"),
            }
        }
        (p, _) => format!("{src} > {dst}: ip-proto-{p} {payload}"),
    }
}

fn arp(b: &[u8]) -> Option<String> {
    let op = be16(b, 6)?;
    let sender = Ipv4Addr::new(*b.get(14)?, b[15], b[16], b[17]);
    let target = Ipv4Addr::new(*b.get(24)?, b[25], b[26], b[27]);
    Some(match op {
        1 => format!("ARP, Request who-has {target} tell {sender}, length 28"),
        2 => format!("ARP, Reply {sender} is-at, length 28"),
        o => format!("ARP, op {o}, length 28"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let ip = [
            0x45, 0, 0, 128, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x14, 0xe9, 0x10, 0x92, 0, 108, 0, 0]);
        f
    }

    #[test]
    fn udp_over_ipv4_reads_as_tcpdump_writes_it() {
        assert_eq!(
            summary(&udp4(), 142),
            "IP 10.0.0.2.5353 > 10.0.0.1.4242: UDP, length 100"
        );
    }

    #[test]
    fn short_captures_say_so() {
        assert_eq!(summary(&[0; 5], 60), "[|ether] length 60");
        assert_eq!(summary(&udp4()[..20], 142), "IP [|ip] length 142");
    }
}

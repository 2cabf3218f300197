//! Link-layer protocols (ethertypes) by the names tc uses: `all`, `ip`,
//! `ipv6`, `802.1Q`… Names print as tc 6.1 prints them; unknown numbers
//! print as `[N]` (decimal), as tc does.

use std::fmt;

/// An ethertype in host order (`ETH_P_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(pub u16);

/// tc's names for ethertypes, in the spelling `tc filter show` prints.
const NAMES: &[(u16, &str)] = &[
    (0x0001, "802_3"),
    (0x0002, "ax25"),
    (0x0003, "all"),
    (0x0004, "802_2"),
    (0x0005, "snap"),
    (0x0006, "ddcmp"),
    (0x0007, "wan_ppp"),
    (0x0008, "ppp_mp"),
    (0x0009, "localtalk"),
    (0x000c, "can"),
    (0x0010, "ppptalk"),
    (0x0011, "tr_802_2"),
    (0x0015, "mobitex"),
    (0x0016, "control"),
    (0x0017, "irda"),
    (0x0018, "econet"),
    (0x0060, "loop"),
    (0x0200, "pup"),
    (0x0201, "pupat"),
    (0x0800, "ip"),
    (0x0805, "x25"),
    (0x0806, "arp"),
    (0x08ff, "bpq"),
    (0x0a00, "ieeepup"),
    (0x0a01, "ieeepupat"),
    (0x6000, "dec"),
    (0x6001, "dna_dl"),
    (0x6002, "dna_rc"),
    (0x6003, "dna_rt"),
    (0x6004, "lat"),
    (0x6005, "diag"),
    (0x6006, "cust"),
    (0x6007, "sca"),
    (0x6558, "teb"),
    (0x8035, "rarp"),
    (0x809b, "atalk"),
    (0x80f3, "aarp"),
    (0x8100, "802.1Q"),
    (0x8137, "ipx"),
    (0x86dd, "ipv6"),
    (0x8847, "mpls_uc"),
    (0x8848, "mpls_mc"),
    (0x884c, "atmmpoa"),
    (0x8863, "ppp_disc"),
    (0x8864, "ppp_ses"),
    (0x8884, "atmfate"),
    (0x88a2, "aoe"),
    (0x88a8, "802.1ad"),
    (0x88ca, "tipc"),
    (0x88cc, "LLDP"),
];

impl Protocol {
    /// `ETH_P_ALL`: every protocol (tc's default).
    pub const ALL: Protocol = Protocol(0x0003);
    /// `ETH_P_IP`.
    pub const IP: Protocol = Protocol(0x0800);
    /// `ETH_P_IPV6`.
    pub const IPV6: Protocol = Protocol(0x86dd);
    /// `ETH_P_8021Q`.
    pub const VLAN: Protocol = Protocol(0x8100);

    /// Parses a name (any case; `ipv4` is `ip`) or a number (decimal or
    /// `0x` hex), as `tc … protocol P` does.
    pub fn parse(text: &str) -> Option<Protocol> {
        if text.eq_ignore_ascii_case("ipv4") {
            return Some(Self::IP);
        }
        if let Some(&(id, _)) = NAMES.iter().find(|(_, n)| n.eq_ignore_ascii_case(text)) {
            return Some(Protocol(id));
        }
        let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => u16::from_str_radix(hex, 16).ok()?,
            None => text.parse::<u16>().ok()?,
        };
        Some(Protocol(value))
    }

    /// The protocol as `tcm_info`'s low half wants it: network byte order.
    pub fn to_be(self) -> u16 {
        self.0.to_be()
    }

    /// From `tcm_info`'s low half (network byte order).
    pub fn from_be(raw: u16) -> Protocol {
        Protocol(u16::from_be(raw))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.iter().find(|(id, _)| *id == self.0) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "[{}]", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip_as_tc_prints_them() {
        assert_eq!(Protocol::parse("all"), Some(Protocol::ALL));
        assert_eq!(Protocol::parse("IP"), Some(Protocol::IP));
        assert_eq!(Protocol::parse("ipv4"), Some(Protocol::IP));
        assert_eq!(Protocol::parse("802.1q"), Some(Protocol::VLAN));
        assert_eq!(Protocol::parse("0x86dd"), Some(Protocol::IPV6));
        assert_eq!(
            Protocol::parse("4660").map(|p| p.to_string()),
            Some("[4660]".into())
        );
        assert_eq!(Protocol::parse("nope"), None);
        assert_eq!(Protocol::parse("70000"), None);
        assert_eq!(Protocol::VLAN.to_string(), "802.1Q");
        assert_eq!(Protocol(0x88cc).to_string(), "LLDP");
        assert_eq!(Protocol::from_be(Protocol::IP.to_be()), Protocol::IP);
    }
}

//! tc handles and parents written `MAJ:MIN` in hex (`1:2`, `ffff:fff2`),
//! and the clsact hook points.

use std::fmt;

/// A 32-bit tc handle: a qdisc/class id or a filter's parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcHandle(pub u32);

impl TcHandle {
    /// `TC_H_ROOT`.
    pub const ROOT: TcHandle = TcHandle(0xffff_ffff);
    /// `TC_H_CLSACT` (same as `TC_H_INGRESS`): the clsact qdisc's parent.
    pub const CLSACT: TcHandle = TcHandle(0xffff_fff1);
    /// The clsact qdisc's own handle, `ffff:`.
    pub const CLSACT_QDISC: TcHandle = TcHandle(0xffff_0000);
    /// The clsact ingress hook, `ffff:fff2`.
    pub const INGRESS: TcHandle = TcHandle(0xffff_fff2);
    /// The clsact egress hook, `ffff:fff3`.
    pub const EGRESS: TcHandle = TcHandle(0xffff_fff3);

    /// `TC_H_MAKE(major << 16, minor)`.
    pub fn new(major: u16, minor: u16) -> Self {
        TcHandle(((major as u32) << 16) | minor as u32)
    }

    /// The major half.
    pub fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The minor half.
    pub fn minor(self) -> u16 {
        self.0 as u16
    }

    /// True for the clsact ingress and egress hooks.
    pub fn is_clsact_hook(self) -> bool {
        self == Self::INGRESS || self == Self::EGRESS
    }

    /// Parses `MAJ:MIN`, `MAJ:` or `:MIN` (hex halves of at most 4 digits),
    /// `root` and `none`, as tc does.
    pub fn parse(text: &str) -> Option<TcHandle> {
        match text {
            "root" => return Some(Self::ROOT),
            "none" => return Some(TcHandle(0)),
            _ => {}
        }
        let (maj, min) = text.split_once(':')?;
        let half = |s: &str| -> Option<u16> {
            if s.is_empty() {
                Some(0)
            } else if s.len() <= 4 {
                u16::from_str_radix(s, 16).ok()
            } else {
                None
            }
        };
        Some(TcHandle::new(half(maj)?, half(min)?))
    }
}

impl fmt::Display for TcHandle {
    /// As tc prints class ids: `root`, `none`, `:MIN`, `MAJ:` or `MAJ:MIN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ROOT => f.write_str("root"),
            TcHandle(0) => f.write_str("none"),
            h if h.major() == 0 => write!(f, ":{:x}", h.minor()),
            h if h.minor() == 0 => write!(f, "{:x}:", h.major()),
            h => write!(f, "{:x}:{:x}", h.major(), h.minor()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_tc() {
        assert_eq!(TcHandle::parse("ffff:fff2"), Some(TcHandle::INGRESS));
        assert_eq!(TcHandle::parse("1:2"), Some(TcHandle(0x0001_0002)));
        assert_eq!(TcHandle::parse("1:"), Some(TcHandle(0x0001_0000)));
        assert_eq!(TcHandle::parse("10000:1"), None);
        assert_eq!(TcHandle::parse("12"), None);
        assert_eq!(TcHandle::parse("x:1"), None);
        assert_eq!(TcHandle(0x0001_0002).to_string(), "1:2");
        assert_eq!(TcHandle(0x0001_0000).to_string(), "1:");
        assert_eq!(TcHandle::EGRESS.to_string(), "ffff:fff3");
        assert!(TcHandle::EGRESS.is_clsact_hook());
        assert!(!TcHandle::CLSACT.is_clsact_hook());
    }
}

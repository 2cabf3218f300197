//! The records `dump.c` writes to its ring buffer (`struct dump_event`:
//! a 56-byte header and the captured bytes), parsed, and the names of tc
//! verdicts. Pure: bytes in, values out.

use super::classic::EVENT_DATA_OFF;

/// One packet as a traced program saw it, and what it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the program started.
    pub ktime_ns: u64,
    /// Index of the traced program (`Tracer::targets`).
    pub target: u32,
    /// The packet's length (`skb->len`).
    pub len: u32,
    /// The device (`skb->dev->ifindex`).
    pub ifindex: u32,
    /// True at the ingress hook (`skb->tc_at_ingress`).
    pub ingress: bool,
    /// `skb->mark` before and after the program.
    pub mark: (u32, u32),
    /// `skb->priority` before and after the program.
    pub priority: (u32, u32),
    /// The program's return value.
    pub verdict: i32,
    /// Where `bpf_redirect*()` sent the packet (0: not redirected).
    pub redirect_ifindex: u32,
    /// The first bytes of the packet, from its Ethernet header.
    pub data: &'a [u8],
}

impl<'a> Event<'a> {
    /// Parses one ring buffer record; `None` for a record too short for
    /// its header or its stated capture length.
    pub fn parse(rec: &'a [u8]) -> Option<Event<'a>> {
        let head = EVENT_DATA_OFF as usize;
        if rec.len() < head {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
        let caplen = u32_at(16) as usize;
        let data = rec.get(head..head.checked_add(caplen)?)?;
        Some(Event {
            ktime_ns: u64::from_ne_bytes(rec[0..8].try_into().ok()?),
            target: u32_at(8),
            len: u32_at(12),
            ifindex: u32_at(20),
            ingress: u32_at(24) != 0,
            mark: (u32_at(28), u32_at(40)),
            priority: (u32_at(32), u32_at(44)),
            verdict: u32_at(36) as i32,
            redirect_ifindex: u32_at(48),
            data,
        })
    }
}

/// The tc action names (`TC_ACT_*`), by value, -1 first.
const VERDICTS: [&str; 10] = [
    "TC_ACT_UNSPEC",
    "TC_ACT_OK",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_SHOT",
    "TC_ACT_PIPE",
    "TC_ACT_STOLEN",
    "TC_ACT_QUEUED",
    "TC_ACT_REPEAT",
    "TC_ACT_REDIRECT",
    "TC_ACT_TRAP",
];

/// The name of tc verdict `v` (`TC_ACT_SHOT`), or the number.
pub fn verdict_name(v: i32) -> String {
    usize::try_from(v + 1)
        .ok()
        .and_then(|i| VERDICTS.get(i))
        .map_or_else(|| v.to_string(), |s| s.to_string())
}

/// The verdict a word names: `TC_ACT_SHOT`, `shot`, `drop`, `ok`, `pass`,
/// `redirect`, `unspec`/`next` (any case), or a number.
pub fn verdict_by_name(word: &str) -> Option<i32> {
    let w = word.to_ascii_uppercase();
    let w = w.strip_prefix("TC_ACT_").unwrap_or(&w);
    let alias = match w {
        "DROP" => "SHOT",
        "PASS" => "OK",
        "NEXT" => "UNSPEC",
        other => other,
    };
    if let Some(i) = VERDICTS
        .iter()
        .position(|n| n.strip_prefix("TC_ACT_") == Some(alias))
    {
        return Some(i as i32 - 1);
    }
    word.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_captured_bytes() {
        let mut rec = vec![0u8; 56];
        rec[0..8].copy_from_slice(&7u64.to_ne_bytes());
        rec[8..12].copy_from_slice(&2u32.to_ne_bytes());
        rec[12..16].copy_from_slice(&100u32.to_ne_bytes());
        rec[16..20].copy_from_slice(&3u32.to_ne_bytes());
        rec[24..28].copy_from_slice(&1u32.to_ne_bytes());
        rec[36..40].copy_from_slice(&2i32.to_ne_bytes());
        rec[40..44].copy_from_slice(&42u32.to_ne_bytes());
        rec.extend_from_slice(&[1, 2, 3]);
        let e = Event::parse(&rec).unwrap();
        assert_eq!((e.ktime_ns, e.target, e.len), (7, 2, 100));
        assert!(e.ingress);
        assert_eq!(e.mark, (0, 42));
        assert_eq!(e.verdict, 2);
        assert_eq!(e.data, &[1, 2, 3]);
        // A capture length past the record is refused.
        assert!(Event::parse(&rec[..58]).is_none());
        assert!(Event::parse(&rec[..10]).is_none());
    }

    #[test]
    fn verdict_names_both_ways() {
        assert_eq!(verdict_name(2), "TC_ACT_SHOT");
        assert_eq!(verdict_name(-1), "TC_ACT_UNSPEC");
        assert_eq!(verdict_name(99), "99");
        assert_eq!(verdict_by_name("drop"), Some(2));
        assert_eq!(verdict_by_name("TC_ACT_REDIRECT"), Some(7));
        assert_eq!(verdict_by_name("next"), Some(-1));
        assert_eq!(verdict_by_name("5"), Some(5));
        assert_eq!(verdict_by_name("nope"), None);
    }
}

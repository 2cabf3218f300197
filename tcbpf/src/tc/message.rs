//! The netlink message codec for the few rtnetlink messages tcbpf sends:
//! building a request (header, family header, attributes, nested
//! attributes) and walking the attributes of a reply.
//!
//! Pure byte work: no sockets here. Layouts follow `linux/netlink.h` and
//! `linux/rtnetlink.h` (`struct nlmsghdr`, `struct rtattr`, 4-byte alignment).

/// `NLMSG_ERROR`: an ack (error 0) or an error with its extended ack.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;

/// Request flags (`NLM_F_*`).
pub mod flags {
    /// `NLM_F_REQUEST`.
    pub const REQUEST: u16 = 0x1;
    /// `NLM_F_MULTI`: part of a multipart reply.
    pub const MULTI: u16 = 0x2;
    /// `NLM_F_ACK`.
    pub const ACK: u16 = 0x4;
    /// `NLM_F_DUMP` (`ROOT | MATCH`).
    pub const DUMP: u16 = 0x300;
    /// `NLM_F_REPLACE`.
    pub const REPLACE: u16 = 0x100;
    /// `NLM_F_EXCL`.
    pub const EXCL: u16 = 0x200;
    /// `NLM_F_CREATE`.
    pub const CREATE: u16 = 0x400;
    /// `NLM_F_ACK_TLVS` on an error message: extended ack attributes follow.
    pub const ACK_TLVS: u16 = 0x200;
    /// `NLM_F_CAPPED` on an error message: the request's payload was left out.
    pub const CAPPED: u16 = 0x100;
}

/// Length of `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;

/// `NLMSG_ALIGN`/`RTA_ALIGN`: rounds up to 4 bytes.
pub fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A request being built: the netlink header, the family header and the
/// attributes, with the lengths patched in as nested attributes close.
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Request {
    /// A request of `msg_type` with `flags` (`NLM_F_REQUEST` is added) and the
    /// family header bytes (`struct tcmsg`, `struct ifinfomsg`…).
    pub fn new(msg_type: u16, flags: u16, family_header: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&(flags | self::flags::REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by the socket
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.extend_from_slice(family_header);
        buf.resize(align(buf.len()), 0);
        Request {
            buf,
            open: Vec::new(),
        }
    }

    /// Appends an attribute of `kind` holding `payload`.
    pub fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// Appends a native-endian u32 attribute.
    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes)
    }

    /// Opens a nested attribute of `kind`; close it with [`Request::end_nested`].
    pub fn begin_nested(&mut self, kind: u16) -> &mut Self {
        self.open.push(self.buf.len());
        self.attr(kind, &[])
    }

    /// Closes the innermost open nested attribute, fixing its length.
    pub fn end_nested(&mut self) -> &mut Self {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The message bytes with `seq` and the total length filled in.
    pub fn finish(&self, seq: u32) -> Vec<u8> {
        let mut out = self.buf.clone();
        let len = out.len() as u32;
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[8..12].copy_from_slice(&seq.to_ne_bytes());
        out
    }

    /// Adds `NLM_F_*` flags to the header.
    pub fn set_flags(&mut self, more: u16) {
        let now = u16::from_ne_bytes([self.buf[6], self.buf[7]]);
        self.buf[6..8].copy_from_slice(&(now | more).to_ne_bytes());
    }

    /// The message type.
    pub fn msg_type(&self) -> u16 {
        u16::from_ne_bytes([self.buf[4], self.buf[5]])
    }
}

/// One message of a reply: its header fields and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `nlmsg_type`.
    pub msg_type: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// The bytes after the netlink header.
    pub payload: Vec<u8>,
}

/// Splits a datagram into messages; a truncated message ends the walk.
pub fn split_messages(mut buf: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while buf.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < HEADER_LEN || len > buf.len() {
            break;
        }
        out.push(Message {
            msg_type: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: buf[HEADER_LEN..len].to_vec(),
        });
        buf = &buf[align(len).min(buf.len())..];
    }
    out
}

/// One attribute: its kind (flags masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The attribute type, without `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`.
    pub kind: u16,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The payload as a native-endian u32, if it is at least 4 bytes.
    pub fn u32(&self) -> Option<u32> {
        let b = self.payload.get(..4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The payload as a NUL-terminated string.
    pub fn string(&self) -> String {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.payload.len());
        String::from_utf8_lossy(&self.payload[..end]).into_owned()
    }

    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs(self.payload)
    }
}

/// An iterator over a run of attributes; stops at the first malformed one.
#[derive(Debug, Clone)]
pub struct Attrs<'a>(pub &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        let payload = &b[4..len];
        self.0 = &b[align(len).min(b.len())..];
        Some(Attr { kind, payload })
    }
}

impl<'a> Attrs<'a> {
    /// The first attribute of `kind`.
    pub fn get(self, kind: u16) -> Option<Attr<'a>> {
        let mut it = self;
        it.find(|a: &Attr<'a>| a.kind == kind)
    }
}

/// `struct tcmsg`: the family header of qdisc and filter messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcMsg {
    /// `tcm_ifindex`.
    pub ifindex: u32,
    /// `tcm_handle`.
    pub handle: u32,
    /// `tcm_parent`.
    pub parent: u32,
    /// `tcm_info`: for filters `(pref << 16) | htons(protocol)`.
    pub info: u32,
}

/// Length of `struct tcmsg`.
pub const TCMSG_LEN: usize = 20;

impl TcMsg {
    /// The header bytes (family `AF_UNSPEC`).
    pub fn to_bytes(self) -> [u8; TCMSG_LEN] {
        let mut b = [0u8; TCMSG_LEN];
        b[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
        b[8..12].copy_from_slice(&self.handle.to_ne_bytes());
        b[12..16].copy_from_slice(&self.parent.to_ne_bytes());
        b[16..20].copy_from_slice(&self.info.to_ne_bytes());
        b
    }

    /// Reads the header at the start of a message payload; the attributes
    /// follow at [`TCMSG_LEN`].
    pub fn parse(payload: &[u8]) -> Option<TcMsg> {
        let b = payload.get(..TCMSG_LEN)?;
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(TcMsg {
            ifindex: word(4),
            handle: word(8),
            parent: word(12),
            info: word(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_patches_lengths_of_message_and_nested_attributes() {
        let mut r = Request::new(44, flags::CREATE, &[0u8; 20]);
        r.attr_str(1, "bpf");
        r.begin_nested(2)
            .attr_u32(6, 7)
            .attr_str(7, "x.o:[s]")
            .end_nested();
        let bytes = r.finish(9);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(
            u16::from_ne_bytes([bytes[6], bytes[7]]),
            flags::CREATE | flags::REQUEST
        );
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 9);
        let attrs: Vec<Attr> = Attrs(&bytes[HEADER_LEN + 20..]).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].string(), "bpf");
        let inner: Vec<Attr> = attrs[1].nested().collect();
        assert_eq!(inner[0].u32(), Some(7));
        assert_eq!(inner[1].string(), "x.o:[s]");
        // 4 (nested header) + 8 (u32 attr) + 12 (4 + "x.o:[s]\0" = 12)
        assert_eq!(attrs[1].payload.len(), 8 + 12);
    }

    #[test]
    fn split_messages_stops_at_truncated_message() {
        let r = Request::new(3, 0, &[1, 2, 3, 4]);
        let mut two = r.finish(1);
        two.extend(r.finish(2));
        two.extend_from_slice(&[0xff; 10]);
        let msgs = split_messages(&two);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1].seq, 2);
        assert_eq!(msgs[0].payload, vec![1, 2, 3, 4]);
    }

    #[test]
    fn attrs_stop_at_malformed_length() {
        let bytes = [8u8, 0, 1, 0, 1, 0, 0, 0, 200, 0, 2, 0];
        let kinds: Vec<u16> = Attrs(&bytes).map(|a| a.kind).collect();
        assert_eq!(kinds, vec![1]);
    }

    #[test]
    fn tcmsg_round_trips() {
        let t = TcMsg {
            ifindex: 3,
            handle: 1,
            parent: 0xffff_fff2,
            info: (5 << 16) | 0x0008,
        };
        assert_eq!(TcMsg::parse(&t.to_bytes()), Some(t));
        assert_eq!(TcMsg::parse(&[0; 19]), None);
    }
}

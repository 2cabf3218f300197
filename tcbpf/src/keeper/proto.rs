//! The keeper's request/reply protocol as bytes and back (see the module
//! doc of [`crate::keeper`] for the layout). Pure: no sockets, no
//! descriptors; every size is bounded and every malformed message is an
//! error naming what was wrong. The text of `list`/`status` replies is
//! [`super::listing`] (re-exported here).

pub use super::listing::{
    decode_listing, encode_listing, ClientLine, Listing, MapInfoLine, SetInfo,
};
use std::fmt;

/// First four bytes of every request and reply.
pub const MAGIC: [u8; 4] = *b"TCBK";
/// Protocol version.
pub const VERSION: u8 = 1;
/// Bytes of the request header.
pub const REQUEST_HEADER_LEN: usize = 8;
/// Bytes of the reply header.
pub const REPLY_HEADER_LEN: usize = 8;
/// The largest request the keeper reads; a longer one is refused.
pub const MAX_REQUEST_LEN: usize = 4096;
/// Map names one request may name at most.
pub const MAX_MAP_NAMES: usize = 64;
/// Bytes of one name (set or map) at most.
pub const MAX_NAME_LEN: usize = 255;
/// Bytes of text one list/status reply message carries at most.
pub const MAX_TEXT_CHUNK: usize = 16 * 1024;
/// The largest reply message: a text chunk (a map chunk is smaller).
pub const MAX_REPLY_LEN: usize = REPLY_HEADER_LEN + MAX_TEXT_CHUNK;
/// Reply flag: the maps are read-only descriptors.
pub const FLAG_READ_ONLY: u8 = 1;
/// Reply flag: more text follows in the next message.
pub const FLAG_MORE: u8 = 2;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The sets and maps the client may see.
    List = 1,
    /// A set (or some of its maps) as descriptors.
    Get = 2,
    /// The list plus counters and recent clients.
    Status = 3,
}

/// The access a `get` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// As much as the policy allows (read-write when allowed).
    #[default]
    Best = 0,
    /// Read-only descriptors, even when more is allowed.
    ReadOnly = 1,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// What it asks for (`None` never travels: decode refuses it).
    pub op: Option<Op>,
    /// The access asked for.
    pub access: Access,
    /// The set; empty for "the only set, or the one holding the maps".
    pub set: String,
    /// Map names (kernel name, or as `BPF_MAP_<NAME>` spells it); empty
    /// for every map of the set.
    pub maps: Vec<String>,
}

impl Request {
    /// A request for `op` on `set` (may be empty) and `maps`.
    pub fn new(op: Op, set: &str, maps: &[String], access: Access) -> Request {
        Request {
            op: Some(op),
            access,
            set: set.to_string(),
            maps: maps.to_vec(),
        }
    }
}

/// Reply status, the first thing a client checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The request was served.
    Ok = 0,
    /// No such set or map.
    NotFound = 1,
    /// The request is malformed or too large.
    BadRequest = 2,
    /// The policy does not allow it.
    Denied = 3,
    /// The keeper failed (a system call).
    Failure = 4,
}

impl Status {
    fn from_u8(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadRequest,
            3 => Status::Denied,
            4 => Status::Failure,
            _ => return None,
        })
    }
}

/// A decoded reply header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The outcome.
    pub status: Status,
    /// `FLAG_*` bits.
    pub flags: u8,
}

/// Why bytes are not a valid request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtoError {}

impl ProtoError {
    /// The class of failure: bad input (what was given is wrong).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::BadInput
    }
}

fn bad(msg: impl Into<String>) -> ProtoError {
    ProtoError(msg.into())
}

fn check_name(what: &str, name: &str) -> Result<(), ProtoError> {
    if name.len() > MAX_NAME_LEN {
        return Err(bad(format!(
            "{what} is {} bytes, more than {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name.bytes().any(|b| b == 0 || b == b'\t' || b == b'\n') {
        return Err(bad(format!("{what} holds a NUL, tab or newline byte")));
    }
    Ok(())
}

/// The bytes of `req`; fails when a name or the count is out of bounds.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, ProtoError> {
    let op = req.op.ok_or_else(|| bad("request has no operation"))?;
    if req.maps.len() > MAX_MAP_NAMES {
        return Err(bad(format!(
            "{} map names in one request, more than {MAX_MAP_NAMES}",
            req.maps.len()
        )));
    }
    check_name("set name", &req.set)?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, op as u8, req.access as u8, req.maps.len() as u8]);
    out.extend_from_slice(req.set.as_bytes());
    out.push(0);
    for m in &req.maps {
        check_name("map name", m)?;
        if m.is_empty() {
            return Err(bad("empty map name"));
        }
        out.extend_from_slice(m.as_bytes());
        out.push(0);
    }
    if out.len() > MAX_REQUEST_LEN {
        return Err(bad(format!(
            "request of {} bytes is larger than {MAX_REQUEST_LEN}",
            out.len()
        )));
    }
    Ok(out)
}

/// Parses a request; anything malformed, unknown or trailing is an error.
pub fn decode_request(bytes: &[u8]) -> Result<Request, ProtoError> {
    if bytes.len() > MAX_REQUEST_LEN {
        return Err(bad(format!(
            "request of {} bytes is larger than {MAX_REQUEST_LEN}",
            bytes.len()
        )));
    }
    if bytes.len() < REQUEST_HEADER_LEN {
        return Err(bad(format!(
            "request of {} bytes is shorter than its {REQUEST_HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if bytes[..4] != MAGIC {
        return Err(bad("request does not start with the keeper's magic 'TCBK'"));
    }
    if bytes[4] != VERSION {
        return Err(bad(format!(
            "request version {} (this keeper speaks {VERSION})",
            bytes[4]
        )));
    }
    let op = match bytes[5] {
        1 => Op::List,
        2 => Op::Get,
        3 => Op::Status,
        n => return Err(bad(format!("unknown operation {n}"))),
    };
    let access = match bytes[6] {
        0 => Access::Best,
        1 => Access::ReadOnly,
        n => return Err(bad(format!("unknown access {n}"))),
    };
    let count = usize::from(bytes[7]);
    if count > MAX_MAP_NAMES {
        return Err(bad(format!(
            "{count} map names in one request, more than {MAX_MAP_NAMES}"
        )));
    }
    let mut rest = &bytes[REQUEST_HEADER_LEN..];
    let mut take = |what: &str| -> Result<String, ProtoError> {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad(format!("{what} is not NUL-terminated")))?;
        let name = std::str::from_utf8(&rest[..end])
            .map_err(|_| bad(format!("{what} is not UTF-8")))?
            .to_string();
        check_name(what, &name)?;
        rest = &rest[end + 1..];
        Ok(name)
    };
    let set = take("set name")?;
    let mut maps = Vec::with_capacity(count);
    for i in 0..count {
        let m = take(&format!("map name {i}"))?;
        if m.is_empty() {
            return Err(bad(format!("map name {i} is empty")));
        }
        maps.push(m);
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes after the last name", rest.len())));
    }
    if op != Op::Get && (!maps.is_empty() || access != Access::Best) {
        return Err(bad("only 'get' takes map names or an access"));
    }
    Ok(Request {
        op: Some(op),
        access,
        set,
        maps,
    })
}

/// A reply message: header then `body`.
pub fn encode_reply(status: Status, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(REPLY_HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, status as u8, flags, 0]);
    out.extend_from_slice(body);
    out
}

/// Splits a reply message into its header and body.
pub fn decode_reply(bytes: &[u8]) -> Result<(ReplyHeader, &[u8]), ProtoError> {
    if bytes.len() < REPLY_HEADER_LEN {
        return Err(bad(format!(
            "reply of {} bytes is shorter than its {REPLY_HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(bad("reply is not from a keeper of protocol version 1"));
    }
    let status = Status::from_u8(bytes[5])
        .ok_or_else(|| bad(format!("unknown reply status {}", bytes[5])))?;
    Ok((
        ReplyHeader {
            status,
            flags: bytes[6],
        },
        &bytes[REPLY_HEADER_LEN..],
    ))
}

/// Cuts `text` into bodies of at most [`MAX_TEXT_CHUNK`] bytes at line
/// ends (a longer line is cut where it must be).
pub fn text_chunks(text: &str) -> Vec<&[u8]> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while bytes.len() - start > MAX_TEXT_CHUNK {
        let window = &bytes[start..start + MAX_TEXT_CHUNK];
        let cut = window
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(MAX_TEXT_CHUNK, |i| i + 1);
        out.push(&bytes[start..start + cut]);
        start += cut;
    }
    out.push(&bytes[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_set_maps_and_access() {
        let r = Request::new(
            Op::Get,
            "verdict.o",
            &["stats".into(), "blocked_ports".into()],
            Access::ReadOnly,
        );
        let bytes = encode_request(&r).unwrap();
        assert_eq!(&bytes[..8], b"TCBK\x01\x02\x01\x02");
        assert_eq!(decode_request(&bytes).unwrap(), r);
        let list = Request::new(Op::List, "", &[], Access::Best);
        assert_eq!(
            decode_request(&encode_request(&list).unwrap()).unwrap(),
            list
        );
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let good =
            encode_request(&Request::new(Op::Get, "s", &["m".into()], Access::Best)).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "shorter"),
            (b"XXXX\x01\x02\x00\x00\x00".to_vec(), "magic"),
            (b"TCBK\x09\x02\x00\x00\x00".to_vec(), "version"),
            (b"TCBK\x01\x09\x00\x00\x00".to_vec(), "unknown operation"),
            (b"TCBK\x01\x02\x07\x00\x00".to_vec(), "unknown access"),
            (b"TCBK\x01\x02\x00\xff\x00".to_vec(), "more than 64"),
            (b"TCBK\x01\x02\x00\x00abc".to_vec(), "not NUL-terminated"),
            (
                b"TCBK\x01\x02\x00\x01s\x00".to_vec(),
                "map name 0 is not NUL",
            ),
            (
                b"TCBK\x01\x02\x00\x01s\x00\x00".to_vec(),
                "map name 0 is empty",
            ),
            (b"TCBK\x01\x02\x00\x00\xff\xfe\x00".to_vec(), "not UTF-8"),
            (b"TCBK\x01\x02\x00\x00a\tb\x00".to_vec(), "tab"),
            (
                [good.clone(), b"x".to_vec()].concat(),
                "after the last name",
            ),
            (b"TCBK\x01\x01\x01\x00\x00".to_vec(), "only 'get'"),
            (vec![b'T'; MAX_REQUEST_LEN + 1], "larger than"),
        ];
        for (bytes, needle) in cases {
            let e = decode_request(&bytes).unwrap_err();
            assert!(e.0.contains(needle), "{needle}: {e}");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(encode_request(&Request::new(Op::Get, &long, &[], Access::Best)).is_err());
    }

    #[test]
    fn reply_header_round_trips_and_rejects_garbage() {
        let b = encode_reply(Status::Denied, FLAG_READ_ONLY, b"no");
        let (h, body) = decode_reply(&b).unwrap();
        assert_eq!(
            (h.status, h.flags, body),
            (Status::Denied, FLAG_READ_ONLY, &b"no"[..])
        );
        assert!(decode_reply(b"TCBK").is_err());
        assert!(decode_reply(b"TCBK\x01\x09\x00\x00").is_err());
        assert!(decode_reply(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn text_is_cut_at_line_ends_into_bounded_chunks() {
        let line = format!("{}\n", "a".repeat(99));
        let text = line.repeat(400); // 40,000 bytes
        let chunks = text_chunks(&text);
        assert_eq!(chunks.len(), 3);
        assert!(chunks
            .iter()
            .all(|c| c.len() <= MAX_TEXT_CHUNK && c.ends_with(b"\n")));
        assert_eq!(chunks.concat(), text.as_bytes());
        assert_eq!(text_chunks(""), vec![&b""[..]]);
    }
}

//! The little of HTTP/1.x the exporter speaks, as pure functions: a
//! request head parsed from a bounded buffer (request line and headers,
//! at most [`MAX_HEAD`] bytes, so a header line without an end costs at
//! most that), and a response head. No I/O here; `server` reads and
//! writes.

/// The most bytes a request head (request line, headers, blank line) may
/// take; a longer one is refused with 431 and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// A request's method, as far as the exporter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the headers of a `GET`.
    Head,
    /// Anything else (answered 405).
    Other,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without a query.
    pub path: String,
    /// The `Accept` header (empty when none).
    pub accept: String,
    /// The connection stays open after the answer (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// It announces a body (`Content-Length` > 0 or `Transfer-Encoding`):
    /// the exporter takes none, answers 413 and closes.
    pub has_body: bool,
}

/// Why a request head is refused: the status to answer before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not an HTTP/1.x request head.
    Bad,
    /// 431: longer than [`MAX_HEAD`].
    TooLarge,
}

impl HeadError {
    /// The status line's code and reason.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            HeadError::Bad => (400, "Bad Request"),
            HeadError::TooLarge => (431, "Request Header Fields Too Large"),
        }
    }
}

/// The request head at the start of `buf`, and the bytes it took; `None`
/// while it is incomplete (and under [`MAX_HEAD`]). Lines end in CRLF or
/// LF; empty lines before the request line are skipped.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut lines = Vec::new();
    let mut at = 0;
    let end = loop {
        let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') else {
            if buf.len() >= MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            return Ok(None);
        };
        let line = &buf[at..at + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += nl + 1;
        if at > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break at;
        }
        lines.push(line);
    };
    let mut words = text(lines[0])?.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HeadError::Bad);
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HeadError::Bad),
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Method::Other,
        _ => return Err(HeadError::Bad),
    };
    let mut req = Request {
        method,
        path: target.split('?').next().unwrap_or("").to_string(),
        accept: String::new(),
        keep_alive: http11,
        has_body: false,
    };
    for line in &lines[1..] {
        let line = text(line)?;
        let (name, value) = line.split_once(':').ok_or(HeadError::Bad)?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "accept" => req.accept = value.to_string(),
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        req.keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        req.keep_alive = true;
                    }
                }
            }
            "content-length" => {
                let n: u64 = value.parse().map_err(|_| HeadError::Bad)?;
                req.has_body |= n > 0;
            }
            "transfer-encoding" => req.has_body = true,
            _ => {}
        }
    }
    Ok(Some((req, end)))
}

fn text(b: &[u8]) -> Result<&str, HeadError> {
    std::str::from_utf8(b).map_err(|_| HeadError::Bad)
}

/// A response head: status, `Content-Type`, `Content-Length` and whether
/// the connection stays open.
pub fn response_head(
    (code, reason): (u16, &str),
    content_type: &str,
    length: usize,
    keep_alive: bool,
) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: {}\r\n\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_with_their_accept_keep_alive_and_length() {
        let two = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\naccept: application/openmetrics-text\r\n\r\nGET / HTTP/1.0\r\n";
        let (r, used) = parse_head(two).unwrap().unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.accept, "application/openmetrics-text");
        assert!(r.keep_alive && !r.has_body);
        assert_eq!(
            &two[used..],
            b"GET / HTTP/1.0\r\n",
            "the next request stays"
        );
        let (r, _) = parse_head(b"\r\nGET / HTTP/1.0\nConnection: Keep-Alive\n\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive);
        let (r, _) = parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive);
        let (r, _) = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.method, Method::Other);
        assert!(r.has_body);
    }

    #[test]
    fn incomplete_heads_wait_and_bad_or_long_ones_are_refused() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(parse_head(b"GET /\r\n\r\n"), Err(HeadError::Bad));
        assert_eq!(parse_head(b"GET / HTTP/2\r\n\r\n"), Err(HeadError::Bad));
        assert_eq!(parse_head(b"get / HTTP/1.1\r\n\r\n"), Err(HeadError::Bad));
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n"),
            Err(HeadError::Bad)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(HeadError::Bad)
        );
        // One line without an end, as long as the bound: refused, not kept.
        let long = vec![b'a'; MAX_HEAD];
        assert_eq!(parse_head(&long), Err(HeadError::TooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        while many.len() < MAX_HEAD + 10 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many), Err(HeadError::TooLarge));
        assert_eq!(
            response_head((200, "OK"), "text/plain", 3, false),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }
}

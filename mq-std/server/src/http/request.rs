//! Reading one HTTP/1.1 request: the request line, the two headers the API
//! needs (`Authorization`, `Content-Length`) and a small body, all bounded.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Largest body accepted (the API's bodies are a few numbers).
const MAX_BODY: usize = 4 * 1024;

/// The methods the port answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET (and HEAD, answered the same way).
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
    /// Anything else.
    Other,
}

/// A request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The query's `key=value` pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The bearer token of `Authorization: Bearer TOKEN`.
    pub bearer: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// Reads one request from `stream`; `InvalidData` errors say what was wrong.
    pub async fn read(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Request> {
        let mut buf = vec![0u8; MAX_HEAD + MAX_BODY];
        let mut len = 0;
        let head_end = loop {
            if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if len >= MAX_HEAD {
                return Err(invalid("request head larger than 8 KiB"));
            }
            let n = stream.read(&mut buf[len..MAX_HEAD]).await?;
            if n == 0 {
                return Err(invalid("the connection closed inside the request head"));
            }
            len += n;
        };
        let mut request = Request::parse_head(&buf[..head_end])?;
        let body_len = request.content_length.unwrap_or(0);
        if body_len > MAX_BODY {
            return Err(invalid("request body larger than 4 KiB"));
        }
        while len < head_end + body_len {
            let n = stream.read(&mut buf[len..head_end + body_len]).await?;
            if n == 0 {
                return Err(invalid("the connection closed inside the request body"));
            }
            len += n;
        }
        request.request.body = buf[head_end..head_end + body_len].to_vec();
        Ok(request.request)
    }

    /// Parses a request head (request line and headers).
    fn parse_head(head: &[u8]) -> io::Result<Parsed> {
        let head = std::str::from_utf8(head).map_err(|_| invalid("request head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or("");
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("request line is not `METHOD PATH HTTP/1.1`"));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(invalid("only HTTP/1.x is spoken here"));
        }
        let method = match method {
            "GET" | "HEAD" => Method::Get,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = percent_decode(path).ok_or_else(|| invalid("bad percent-encoding in path"))?;
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                Some((percent_decode(k)?, percent_decode(v)?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("bad percent-encoding in query"))?;
        let mut bearer = None;
        let mut content_length = None;
        for header in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = header.split_once(':') else {
                return Err(invalid("a header line without a colon"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("authorization") {
                bearer = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .map(|t| t.trim().to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("Content-Length is not a number"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid(
                    "chunked bodies are not accepted; send Content-Length",
                ));
            }
        }
        Ok(Parsed {
            request: Request {
                method,
                path,
                query,
                bearer,
                body: Vec::new(),
            },
            content_length,
        })
    }

    /// The value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

struct Parsed {
    request: Request,
    content_length: Option<usize>,
}

fn invalid(text: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// Decodes `%XX` escapes (and `+` as a space); `None` when malformed or not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_method_path_query_and_bearer() {
        let head = b"POST /api/topics/%24dlq.orders/purge?before=12&x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\n\r\n";
        let p = Request::parse_head(head).unwrap();
        assert_eq!(p.request.method, Method::Post);
        assert_eq!(p.request.path, "/api/topics/$dlq.orders/purge");
        assert_eq!(p.request.param("before"), Some("12"));
        assert_eq!(p.request.param("x"), Some(""));
        assert_eq!(p.request.bearer.as_deref(), Some("s3cret"));
        assert_eq!(p.content_length, Some(2));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET /%zz HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            assert!(Request::parse_head(head).is_err(), "{head:?}");
        }
    }
}

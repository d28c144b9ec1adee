//! Operations into caller buffers.

use super::{EncodeError, Message, Op};

/// Where encoded bytes go: counted only, or written.
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

struct Slice<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Sink for Slice<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

impl Op<'_> {
    /// The bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let mut c = Count(0);
        self.emit(&mut c);
        c.0
    }

    /// Writes the operation at the front of `buf`; returns its length. When
    /// `buf` is too small nothing is written and the error says how much is
    /// needed.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let needed = self.encoded_len();
        if needed > buf.len() {
            return Err(EncodeError { needed });
        }
        let mut s = Slice { buf, pos: 0 };
        self.emit(&mut s);
        Ok(s.pos)
    }

    fn emit(&self, s: &mut impl Sink) {
        match self {
            Op::Info(json) => line(s, b"INFO ", json.as_bytes()),
            Op::Connect(json) => line(s, b"CONNECT ", json.as_bytes()),
            Op::Pub(m) => message(s, b"PUB ", b"HPUB ", None, m),
            Op::Msg { sid, msg } => message(s, b"MSG ", b"HMSG ", Some(sid), msg),
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                s.put(b"SUB ");
                s.put(subject.as_bytes());
                if let Some(q) = queue {
                    s.put(b" ");
                    s.put(q.as_bytes());
                }
                s.put(b" ");
                s.put(sid.as_bytes());
                s.put(b"\r\n");
            }
            Op::Unsub { sid, max } => {
                s.put(b"UNSUB ");
                s.put(sid.as_bytes());
                if let Some(max) = max {
                    s.put(b" ");
                    s.num(*max);
                }
                s.put(b"\r\n");
            }
            Op::Ping => s.put(b"PING\r\n"),
            Op::Pong => s.put(b"PONG\r\n"),
            Op::Ok => s.put(b"+OK\r\n"),
            Op::Err(text) => {
                s.put(b"-ERR '");
                s.put(text.as_bytes());
                s.put(b"'\r\n");
            }
        }
    }
}

fn line(s: &mut impl Sink, name: &[u8], rest: &[u8]) {
    s.put(name);
    s.put(rest);
    s.put(b"\r\n");
}

fn message(
    s: &mut impl Sink,
    plain: &[u8],
    with_headers: &[u8],
    sid: Option<&&str>,
    m: &Message<'_>,
) {
    s.put(if m.headers.is_some() {
        with_headers
    } else {
        plain
    });
    s.put(m.subject.as_bytes());
    if let Some(sid) = sid {
        s.put(b" ");
        s.put(sid.as_bytes());
    }
    if let Some(reply) = m.reply {
        s.put(b" ");
        s.put(reply.as_bytes());
    }
    let header_len = m.headers.map_or(0, <[u8]>::len);
    if m.headers.is_some() {
        s.put(b" ");
        s.num(header_len as u64);
    }
    s.put(b" ");
    s.num((header_len + m.payload.len()) as u64);
    s.put(b"\r\n");
    if let Some(h) = m.headers {
        s.put(h);
    }
    s.put(m.payload);
    s.put(b"\r\n");
}

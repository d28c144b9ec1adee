//! Operations out of received bytes: the control line, then the payload its
//! sizes announce.

use super::{Limits, Message, Op, ParseError, Parsed};

const PUB_USAGE: &str = "Invalid Arguments: PUB <subject> [reply] <size>";
const HPUB_USAGE: &str = "Invalid Arguments: HPUB <subject> [reply] <header size> <total size>";
const MSG_USAGE: &str = "Invalid Arguments: MSG <subject> <sid> [reply] <size>";
const HMSG_USAGE: &str =
    "Invalid Arguments: HMSG <subject> <sid> [reply] <header size> <total size>";
const SUB_USAGE: &str = "Invalid Arguments: SUB <subject> [queue] <sid>";
const UNSUB_USAGE: &str = "Invalid Arguments: UNSUB <sid> [max]";
const JSON_USAGE: &str = "Invalid Arguments: CONNECT and INFO take a JSON object";

/// The most arguments any operation takes.
const MAX_ARGS: usize = 5;

/// A control line's arguments, split at spaces and tabs.
struct Args<'a> {
    items: [&'a str; MAX_ARGS],
    len: usize,
}

impl<'a> Args<'a> {
    fn split(rest: &'a [u8], usage: &'static str) -> Result<Self, ParseError> {
        let text = core::str::from_utf8(rest).map_err(|_| ParseError::BadArguments(usage))?;
        let mut args = Args {
            items: [""; MAX_ARGS],
            len: 0,
        };
        for item in text.split([' ', '\t']).filter(|s| !s.is_empty()) {
            if args.len == MAX_ARGS {
                return Err(ParseError::BadArguments(usage));
            }
            args.items[args.len] = item;
            args.len += 1;
        }
        Ok(args)
    }

    fn get(&self) -> &[&'a str] {
        &self.items[..self.len]
    }
}

/// A decimal size.
fn size(s: &str, usage: &'static str) -> Result<usize, ParseError> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadArguments(usage));
    }
    s.parse().map_err(|_| ParseError::BadArguments(usage))
}

/// The operation name at the front of a control line, and the rest.
fn split_name(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[]),
    }
}

/// Bytes without the spaces and tabs around them.
fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ' && c != b'\t');
    let Some(start) = start else { return &[] };
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .unwrap_or(start);
    &b[start..=end]
}

/// What follows a control line that announces a payload.
struct PayloadSpec<'a> {
    subject: &'a str,
    sid: Option<&'a str>,
    reply: Option<&'a str>,
    header_len: Option<usize>,
    total: usize,
}

impl<'a> Op<'a> {
    /// Parses the operation at the front of `buf`. Returns the operation and
    /// the bytes it took, or how many bytes are needed in all when `buf`
    /// holds only part of it. A control line longer than
    /// `limits.max_control_line`, or a payload above `limits.max_payload`,
    /// is an error as soon as it is seen.
    pub fn parse(buf: &'a [u8], limits: Limits) -> Result<Parsed<'a>, ParseError> {
        let window = &buf[..buf.len().min(limits.max_control_line)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if buf.len() >= limits.max_control_line {
                return Err(ParseError::ControlLineTooLong);
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        let line = match nl {
            0 => &buf[..0],
            _ if buf[nl - 1] == b'\r' => &buf[..nl - 1],
            _ => &buf[..nl],
        };
        let after = nl + 1;
        let (name, rest) = split_name(line);
        let is = |op: &str| name.eq_ignore_ascii_case(op.as_bytes());
        let simple = |op: Op<'a>| {
            if trim(rest).is_empty() {
                Ok(Parsed::Op(op, after))
            } else {
                Err(ParseError::UnknownOperation)
            }
        };
        if is("PUB") || is("HPUB") {
            let headers = is("HPUB");
            let usage = if headers { HPUB_USAGE } else { PUB_USAGE };
            let args = Args::split(rest, usage)?;
            let spec = match (headers, args.get()) {
                (false, &[subject, n]) => (subject, None, None, n),
                (false, &[subject, reply, n]) => (subject, Some(reply), None, n),
                (true, &[subject, h, n]) => (subject, None, Some(h), n),
                (true, &[subject, reply, h, n]) => (subject, Some(reply), Some(h), n),
                _ => return Err(ParseError::BadArguments(usage)),
            };
            let spec = PayloadSpec {
                subject: spec.0,
                sid: None,
                reply: spec.1,
                header_len: spec.2.map(|h| size(h, usage)).transpose()?,
                total: size(spec.3, usage)?,
            };
            return payload(buf, after, spec, limits, usage);
        }
        if is("MSG") || is("HMSG") {
            let headers = is("HMSG");
            let usage = if headers { HMSG_USAGE } else { MSG_USAGE };
            let args = Args::split(rest, usage)?;
            let spec = match (headers, args.get()) {
                (false, &[subject, sid, n]) => (subject, sid, None, None, n),
                (false, &[subject, sid, reply, n]) => (subject, sid, Some(reply), None, n),
                (true, &[subject, sid, h, n]) => (subject, sid, None, Some(h), n),
                (true, &[subject, sid, reply, h, n]) => (subject, sid, Some(reply), Some(h), n),
                _ => return Err(ParseError::BadArguments(usage)),
            };
            let spec = PayloadSpec {
                subject: spec.0,
                sid: Some(spec.1),
                reply: spec.2,
                header_len: spec.3.map(|h| size(h, usage)).transpose()?,
                total: size(spec.4, usage)?,
            };
            return payload(buf, after, spec, limits, usage);
        }
        if is("SUB") {
            let args = Args::split(rest, SUB_USAGE)?;
            let (subject, queue, sid) = match *args.get() {
                [subject, sid] => (subject, None, sid),
                [subject, queue, sid] => (subject, Some(queue), sid),
                _ => return Err(ParseError::BadArguments(SUB_USAGE)),
            };
            return Ok(Parsed::Op(
                Op::Sub {
                    subject,
                    queue,
                    sid,
                },
                after,
            ));
        }
        if is("UNSUB") {
            let args = Args::split(rest, UNSUB_USAGE)?;
            let (sid, max) = match *args.get() {
                [sid] => (sid, None),
                [sid, max] => (sid, Some(size(max, UNSUB_USAGE)? as u64)),
                _ => return Err(ParseError::BadArguments(UNSUB_USAGE)),
            };
            return Ok(Parsed::Op(Op::Unsub { sid, max }, after));
        }
        if is("CONNECT") || is("INFO") {
            let json = core::str::from_utf8(trim(rest))
                .ok()
                .filter(|j| j.starts_with('{'))
                .ok_or(ParseError::BadArguments(JSON_USAGE))?;
            let op = if is("CONNECT") {
                Op::Connect(json)
            } else {
                Op::Info(json)
            };
            return Ok(Parsed::Op(op, after));
        }
        if is("PING") {
            return simple(Op::Ping);
        }
        if is("PONG") {
            return simple(Op::Pong);
        }
        if is("+OK") {
            return simple(Op::Ok);
        }
        if is("-ERR") {
            let text = trim(rest);
            let text = match text {
                [b'\'', inner @ .., b'\''] => inner,
                _ => text,
            };
            let text = core::str::from_utf8(text).map_err(|_| ParseError::UnknownOperation)?;
            return Ok(Parsed::Op(Op::Err(text), after));
        }
        Err(ParseError::UnknownOperation)
    }
}

/// The payload of a `PUB`, `HPUB`, `MSG` or `HMSG` whose control line ended
/// at `after`.
fn payload<'a>(
    buf: &'a [u8],
    after: usize,
    spec: PayloadSpec<'a>,
    limits: Limits,
    usage: &'static str,
) -> Result<Parsed<'a>, ParseError> {
    if spec.header_len.is_some_and(|h| h > spec.total) {
        return Err(ParseError::BadArguments(usage));
    }
    if spec.total > limits.max_payload {
        return Err(ParseError::PayloadTooLarge);
    }
    let end = after + spec.total;
    let Some(&term) = buf.get(end) else {
        return Ok(Parsed::Incomplete(end + 2));
    };
    let consumed = match term {
        b'\n' => end + 1,
        b'\r' => match buf.get(end + 1) {
            None => return Ok(Parsed::Incomplete(end + 2)),
            Some(b'\n') => end + 2,
            Some(_) => return Err(ParseError::PayloadNotTerminated),
        },
        _ => return Err(ParseError::PayloadNotTerminated),
    };
    let body = &buf[after..end];
    let (headers, payload) = match spec.header_len {
        Some(h) => (Some(&body[..h]), &body[h..]),
        None => (None, body),
    };
    let msg = Message {
        subject: spec.subject,
        reply: spec.reply,
        headers,
        payload,
    };
    let op = match spec.sid {
        Some(sid) => Op::Msg { sid, msg },
        None => Op::Pub(msg),
    };
    Ok(Parsed::Op(op, consumed))
}

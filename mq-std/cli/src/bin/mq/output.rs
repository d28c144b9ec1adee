//! How `mq` prints: a message as escaped text on one line or as a JSON object,
//! and every line of output through [`print()`], which treats a reader that went
//! away (`mq bench | head -1`) as the end of the output rather than a crash.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use mq_client::client::Message;
use serde_json::{Map, Value};

use crate::fail::Fail;
use crate::qos::qos_number;

/// Writes `text` to stdout and flushes it. A closed stdout (the reader went
/// away) is not an error: there is no one left to tell, so the command ends
/// normally; any other write error is.
pub fn print(text: &str) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail(format!("cannot write to stdout: {e}"))),
    }
}

/// `println!` through [`print()`]: evaluates to `Result<(), Fail>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::print(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// `bytes` as text on one line: UTF-8 as is, except `\` → `\\`, newline, CR and
/// tab → `\n`, `\r`, `\t`, other control characters → `\u{..}`, and bytes that
/// are not UTF-8 → `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The message as one line of JSON: `topic`, `seq`, `attempt`, `qos`,
/// `payload` (a string when the payload is UTF-8, else `payload_base64`),
/// `reply_to`, `correlation` (likewise, or `correlation_base64`), `headers`
/// (a list of `{"name", "value"}` or `{"name", "value_base64"}`, in order),
/// `ttl_ms`, `priority`.
pub fn json(msg: &Message) -> String {
    let mut obj = Map::new();
    obj.insert("topic".into(), msg.topic.clone().into());
    obj.insert("seq".into(), msg.seq.into());
    obj.insert("attempt".into(), msg.attempt.into());
    obj.insert("qos".into(), qos_number(msg.qos).into());
    put_bytes(&mut obj, "payload", &msg.payload);
    obj.insert(
        "reply_to".into(),
        msg.reply_to.clone().map_or(Value::Null, Value::String),
    );
    match &msg.correlation {
        Some(c) => put_bytes(&mut obj, "correlation", c),
        None => {
            obj.insert("correlation".into(), Value::Null);
        }
    }
    let headers = msg
        .headers
        .iter()
        .map(|(name, value)| {
            let mut h = Map::new();
            h.insert("name".into(), name.clone().into());
            put_bytes(&mut h, "value", value);
            Value::Object(h)
        })
        .collect();
    obj.insert("headers".into(), Value::Array(headers));
    obj.insert(
        "ttl_ms".into(),
        msg.ttl
            .map_or(Value::Null, |t| (t.as_millis() as u64).into()),
    );
    obj.insert("priority".into(), msg.priority.into());
    Value::Object(obj).to_string()
}

/// `key: "text"` when `bytes` are UTF-8, else `key_base64: "..."`.
fn put_bytes(obj: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => obj.insert(key.to_string(), text.into()),
        Err(_) => obj.insert(format!("{key}_base64"), base64(bytes).into()),
    };
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn escape_keeps_text_and_marks_the_rest() {
        assert_eq!(escape("21.5 °C".as_bytes()), "21.5 °C");
        assert_eq!(escape(b"a\nb\\c\td\x01"), "a\\nb\\\\c\\td\\u{1}");
        assert_eq!(escape(b"ok\xff\xfeok"), "ok\\xff\\xfeok");
    }
}

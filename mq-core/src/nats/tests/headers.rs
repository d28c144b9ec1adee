use std::vec::Vec;

use crate::nats::headers::{HeaderBlock, HeaderError, HeaderWriter};

#[test]
fn a_block_with_repeated_keys() {
    let b = HeaderBlock::parse(b"NATS/1.0\r\nA: b\r\nA:  c\r\nTrace-Id: 42\r\n\r\n").unwrap();
    assert_eq!(b.status, None);
    let all: Vec<_> = b.iter().collect();
    assert_eq!(
        all,
        [("A", &b"b"[..]), ("A", &b"c"[..]), ("Trace-Id", &b"42"[..])]
    );
}

#[test]
fn no_responders_status() {
    let b = HeaderBlock::parse(b"NATS/1.0 503\r\n\r\n").unwrap();
    assert_eq!(b.status, Some(503));
    assert_eq!(b.iter().count(), 0);
    let b = HeaderBlock::parse(b"NATS/1.0 408 Request Timeout\r\n\r\n").unwrap();
    assert_eq!(
        (b.status, b.description),
        (Some(408), &b"Request Timeout"[..])
    );
}

#[test]
fn malformed_blocks() {
    assert_eq!(
        HeaderBlock::parse(b"HTTP/1.1\r\n\r\n"),
        Err(HeaderError::Version)
    );
    assert_eq!(
        HeaderBlock::parse(b"NATS/1.0 5x3\r\n\r\n"),
        Err(HeaderError::Status)
    );
    assert_eq!(
        HeaderBlock::parse(b"NATS/1.0\r\nno colon\r\n\r\n"),
        Err(HeaderError::Line)
    );
    assert_eq!(
        HeaderBlock::parse(b"NATS/1.0\r\nA: b\r\n"),
        Err(HeaderError::Unterminated)
    );
    assert_eq!(
        HeaderBlock::parse(b"NATS/1.0\r\nA: b\nc\r\n\r\n"),
        Err(HeaderError::Line)
    );
}

#[test]
fn writer_round_trips_and_skips_what_cannot_travel() {
    let mut buf = [0u8; 128];
    let pairs: [(&str, &[u8]); 3] = [("A", b"1"), ("bad key", b"x"), ("B", b"two words")];
    let want = HeaderWriter::len_for(None, pairs.iter().copied().filter(|(k, _)| *k != "bad key"));
    let mut w = HeaderWriter::new(&mut buf, None).unwrap();
    for (k, v) in pairs {
        w.push(k, v).unwrap();
    }
    let n = w.finish().unwrap();
    assert_eq!(n, want);
    let b = HeaderBlock::parse(&buf[..n]).unwrap();
    let all: Vec<_> = b.iter().collect();
    assert_eq!(all, [("A", &b"1"[..]), ("B", &b"two words"[..])]);

    let mut buf = [0u8; 64];
    let w = HeaderWriter::new(&mut buf, Some((503, ""))).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], b"NATS/1.0 503\r\n\r\n");
    assert_eq!(
        n,
        HeaderWriter::len_for(Some((503, "")), core::iter::empty()) - 1
    );
}

#[test]
fn writer_reports_a_short_buffer() {
    let mut buf = [0u8; 12];
    let mut w = HeaderWriter::new(&mut buf, None).unwrap();
    assert!(w.push("Key", b"value").is_err());
}

//! The NATS codec's rules, one file per part.

mod connect;
mod headers;
mod parse;

use super::{Limits, Op, ParseError, Parsed};

/// Parses one whole operation from `bytes`, which must hold exactly it.
fn one(bytes: &[u8]) -> Op<'_> {
    match Op::parse(bytes, Limits::default()) {
        Ok(Parsed::Op(op, used)) => {
            assert_eq!(used, bytes.len(), "whole input is one operation");
            op
        }
        other => panic!("expected one operation, got {other:?}"),
    }
}

fn err(bytes: &[u8]) -> ParseError {
    match Op::parse(bytes, Limits::default()) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Encodes `op` and checks it parses back to itself.
fn round_trip(op: Op<'_>) {
    let mut buf = [0u8; 512];
    let n = op.encode(&mut buf).expect("fits");
    assert_eq!(n, op.encoded_len());
    assert_eq!(one(&buf[..n]), op);
}

//! The physical limit: what loopback TCP carries with nothing in between. The
//! writer packs length-prefixed frames (4-byte little-endian length, stamped
//! payload) into 64 KiB writes; each reader reads 256 KiB at a time and
//! records every frame. Round trips: one frame echoed back, one at a time.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use super::{ctx_err, join, noted, round_trips_blocking};
use crate::Ctx;
use crate::measure::{Measured, Recorder, Tally};
use crate::workload::{Kind, Shape, Workload};

const BATCH: usize = 64 * 1024;
const READ: usize = 256 * 1024;

pub async fn run(ctx: &Ctx, w: &Workload) -> Result<Measured, String> {
    match w.kind {
        Kind::Stream(shape) => stream(ctx, w, shape).await,
        Kind::Acked => Err("raw TCP has no acknowledged publish".to_string()),
        Kind::RoundTrip => round_trip(w).await,
        Kind::Peer(_) | Kind::Cycles(_) => Err(super::NOT_PEER.to_string()),
    }
}

/// `n` connected pairs: (writer ends, reader ends).
fn pairs(n: usize) -> Result<(Vec<TcpStream>, Vec<TcpStream>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ctx_err("bind"))?;
    let addr = listener.local_addr().map_err(ctx_err("bind"))?;
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..n {
        let w = TcpStream::connect(addr).map_err(ctx_err("connect"))?;
        let (r, _) = listener.accept().map_err(ctx_err("accept"))?;
        w.set_nodelay(true).map_err(ctx_err("nodelay"))?;
        r.set_nodelay(true).map_err(ctx_err("nodelay"))?;
        writers.push(w);
        readers.push(r);
    }
    Ok((writers, readers))
}

/// Reads frames until the writer closes, recording each.
fn read_frames(mut s: TcpStream, mut rec: Recorder) {
    let mut buf = vec![0u8; READ.max(2 * (64 * 1024 + 4))];
    let mut have = 0;
    loop {
        let n = match s.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let mut at = 0;
        while let Some(len) = frame_len(&buf[at..have]) {
            rec.record(&buf[at + 4..at + 4 + len]);
            at += 4 + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

/// The payload length of the whole frame at the start of `buf`, if it is all there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    (buf.len() >= 4 + len).then_some(len)
}

fn push_frame(batch: &mut Vec<u8>, payload: &[u8]) {
    batch.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    batch.extend_from_slice(payload);
}

async fn stream(ctx: &Ctx, w: &Workload, shape: Shape) -> Result<Measured, String> {
    let (mut writers, readers) = pairs(shape.receivers())?;
    let tally = Tally::new();
    let receivers: Vec<_> = readers
        .into_iter()
        .map(|r| {
            let rec = tally.recorder();
            thread::spawn(move || read_frames(r, rec))
        })
        .collect();
    let (count, limit) = (w.count, ctx.limit);
    let mut stamp = tally.stamp(w.size);
    let begin = std::sync::Arc::clone(&tally);
    let writing = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        begin.begin();
        let end = Instant::now() + limit;
        let mut batch = Vec::with_capacity(BATCH + 64 * 1024 + 4);
        let mut sent = 0;
        let mut next = 0;
        while sent < count && Instant::now() < end {
            push_frame(&mut batch, stamp.next());
            sent += 1;
            if batch.len() >= BATCH || sent == count {
                match shape {
                    Shape::FanOut(_) => {
                        for s in &mut writers {
                            s.write_all(&batch).map_err(ctx_err("write"))?;
                        }
                    }
                    Shape::One | Shape::Group(_) => {
                        let n = writers.len();
                        writers[next % n]
                            .write_all(&batch)
                            .map_err(ctx_err("write"))?;
                        next += 1;
                    }
                }
                batch.clear();
            }
        }
        if !batch.is_empty() {
            writers[0].write_all(&batch).map_err(ctx_err("write"))?;
        }
        for s in &writers {
            let _ = s.shutdown(Shutdown::Write);
        }
        Ok(sent)
    });
    let sent = writing
        .await
        .map_err(ctx_err("writer thread"))
        .and_then(|r| r)?;
    let expected = w.expected(sent);
    tally.settle(expected, ctx.limit).await;
    join(receivers).await;
    Ok(noted(w, sent, tally.measured(expected, w.size)))
}

async fn round_trip(w: &Workload) -> Result<Measured, String> {
    let (mut writers, mut readers) = pairs(1)?;
    let (mut requester, mut responder) = (writers.remove(0), readers.remove(0));
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024 + 4];
        loop {
            if responder.read_exact(&mut buf[..4]).is_err() {
                return;
            }
            let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
            if len > buf.len() - 4
                || responder.read_exact(&mut buf[4..4 + len]).is_err()
                || responder.write_all(&buf[..4 + len]).is_err()
            {
                return;
            }
        }
    });
    let w2 = w.clone();
    let measured = tokio::task::spawn_blocking(move || {
        let mut frame = Vec::new();
        let mut buf = vec![0u8; 64 * 1024 + 4];
        let result = round_trips_blocking(&w2, |body| {
            frame.clear();
            push_frame(&mut frame, body);
            requester.write_all(&frame).map_err(ctx_err("write"))?;
            requester
                .read_exact(&mut buf[..4 + body.len()])
                .map_err(ctx_err("read"))?;
            Ok(u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize)
        });
        let _ = requester.shutdown(Shutdown::Both);
        result
    })
    .await
    .map_err(ctx_err("requester thread"))?;
    join(vec![echo]).await;
    measured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_only_when_whole() {
        let mut buf = Vec::new();
        push_frame(&mut buf, b"0123456789");
        assert_eq!(frame_len(&buf), Some(10));
        assert_eq!(frame_len(&buf[..13]), None);
        assert_eq!(frame_len(&buf[..3]), None);
    }
}

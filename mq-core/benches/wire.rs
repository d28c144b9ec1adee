//! Encode and decode rates of a stream-framed publish frame by payload size.
//!
//! `cargo bench -p mq-core --bench wire`. Throughput is reported per frame and in
//! bytes of framed publish; decoding borrows the payload, so its cost should not
//! grow with the payload size.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mq_core::framing::stream::{self, Decoded, StreamDecoder};
use mq_core::wire::{Dedup, Frame, Meta, Publish, QoS};

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (100, "100B"),
    (1024, "1KiB"),
    (65_536, "64KiB"),
];
const MAX_FRAME: u32 = 1 << 20;

fn publish(payload: &[u8]) -> Frame<'_> {
    Frame::Publish(Publish {
        id: 12_345,
        topic: "sensors.kitchen.temp",
        qos: QoS::AtLeastOnce,
        dedup: Some(Dedup {
            producer: 0xDEAD_BEEF,
            seq: 1_000_000,
        }),
        meta: Meta::default(),
        fragment: None,
        payload,
    })
}

fn bench(c: &mut Criterion) {
    for mode in ["encode", "decode"] {
        let mut group = c.benchmark_group(format!("publish_{mode}"));
        for (size, label) in SIZES {
            let payload = vec![0xA5u8; size];
            let frame = publish(&payload);
            let mut buf = vec![0u8; stream::framed_len(&frame)];
            let n = stream::encode_frame(&frame, MAX_FRAME, &mut buf).unwrap();
            group.throughput(Throughput::Bytes(n as u64));
            if mode == "encode" {
                group.bench_function(BenchmarkId::from_parameter(label), |b| {
                    b.iter(|| stream::encode_frame(black_box(&frame), MAX_FRAME, &mut buf).unwrap())
                });
            } else {
                let decoder = StreamDecoder::new(MAX_FRAME);
                group.bench_function(BenchmarkId::from_parameter(label), |b| {
                    b.iter(|| match decoder.decode(black_box(&buf[..n])).unwrap() {
                        Decoded::Frame { frame, consumed } => {
                            black_box(frame);
                            consumed
                        }
                        Decoded::Incomplete { .. } => unreachable!(),
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

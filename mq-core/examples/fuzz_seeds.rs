//! Writes the seed corpus for the fuzz targets in `mq-core/fuzz/corpus/`.
//!
//! Run from the workspace root: `cargo run -p mq-core --example fuzz_seeds`.

use std::fs;
use std::path::Path;

use mq_core::framing::{serial, stream};
use mq_core::wire::*;

fn seeds() -> Vec<Frame<'static>> {
    let limits = Limits {
        max_frame: 65_536,
        credit: 64,
        keepalive_ms: 15_000,
    };
    vec![
        Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            client_id: "sensor-17",
            session: SessionMode::Resume,
            token: Some("s3cret"),
            limits,
        }),
        Frame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            session_present: true,
            limits,
        }),
        Frame::Publish(Publish {
            id: 1,
            topic: "sensors.kitchen.temp",
            qos: QoS::AtLeastOnce,
            dedup: Some(Dedup {
                producer: 9,
                seq: 1,
            }),
            meta: Meta {
                ttl_ms: Some(30_000),
                priority: 1,
                reply_to: Some("replies.a"),
                correlation: Some(b"req-1"),
                headers: Headers::EMPTY,
            },
            fragment: Some(Fragment {
                offset: 0,
                total: 10,
            }),
            payload: b"21.5",
        }),
        Frame::PubAck(PubAck {
            id: 1,
            seq: 42,
            duplicate: false,
        }),
        Frame::PubReject(PubReject {
            id: 2,
            reason: Reason::QueueFull,
        }),
        Frame::Subscribe(Subscribe {
            sub: 3,
            filter: "sensors.*.temp",
            group: Some("workers"),
            start: Start::Last(10),
            qos: QoS::AtLeastOnce,
            credit: 32,
        }),
        Frame::Deliver(Deliver {
            sub: 3,
            topic: "sensors.kitchen.temp",
            seq: 42,
            tag: 7,
            attempt: 2,
            qos: QoS::AtLeastOnce,
            meta: Meta::default(),
            fragment: None,
            payload: &[0, 1, 2, 0, 0, 255],
        }),
        Frame::Ack(Ack { tag: 7 }),
        Frame::Nack(Nack {
            tag: 8,
            requeue: true,
        }),
        Frame::Credit(Credit { sub: 3, credit: 16 }),
        Frame::Ping(5),
        Frame::Close(Close {
            reason: Reason::ShuttingDown,
            text: "bye",
        }),
        Frame::Error(ErrorFrame {
            code: Reason::Malformed,
            text: "bad frame",
        }),
    ]
}

fn write(dir: &Path, name: String, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut all_stream = vec![0x00, 0x10, 0x07]; // max_frame 4097, chunks of 8
    let mut all_serial = vec![0x05]; // chunks of 6
    for (i, frame) in seeds().iter().enumerate() {
        let mut buf = vec![0u8; 1024];
        let n = frame.encode(&mut buf).unwrap();
        write(
            &root.join("frame_decode"),
            format!("seed-{i:02}-{}", frame.kind()),
            &buf[..n],
        );

        let n = stream::encode_frame(frame, 65_536, &mut buf).unwrap();
        let mut s = vec![0xFF, 0x03, 0x00];
        s.extend_from_slice(&buf[..n]);
        write(
            &root.join("stream_decoder"),
            format!("seed-{i:02}-{}", frame.kind()),
            &s,
        );
        all_stream.extend_from_slice(&buf[..n]);

        let n = serial::encode_frame(frame, &mut buf).unwrap();
        let mut s = vec![0x00];
        s.extend_from_slice(&buf[..n]);
        write(
            &root.join("serial_decoder"),
            format!("seed-{i:02}-{}", frame.kind()),
            &s,
        );
        all_serial.extend_from_slice(&buf[..n]);
        all_serial.extend_from_slice(&[3, 9, 9, 0]); // garbage between frames
    }
    write(
        &root.join("stream_decoder"),
        "all-frames".into(),
        &all_stream,
    );
    write(
        &root.join("serial_decoder"),
        "all-frames-with-garbage".into(),
        &all_serial,
    );
    println!("wrote seeds under {}", root.display());
}

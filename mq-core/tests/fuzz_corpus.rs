//! Replays the checked-in fuzz corpus through the fuzz harness bodies, so every
//! `cargo test` exercises what the fuzzers found interesting.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        run(&data);
        count += 1;
    }
    assert!(
        count >= 10,
        "{target}: only {count} corpus files in {}",
        dir.display()
    );
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", mq_core::fuzzing::frame_decode);
}

#[test]
fn stream_decoder_corpus() {
    replay("stream_decoder", mq_core::fuzzing::stream_decoder);
}

#[test]
fn serial_decoder_corpus() {
    replay("serial_decoder", mq_core::fuzzing::serial_decoder);
}

#[test]
fn mqtt_decode_corpus() {
    replay("mqtt_decode", mq_core::fuzzing::mqtt_decode);
}

#[test]
fn mqtt_stream_corpus() {
    replay("mqtt_stream", mq_core::fuzzing::mqtt_stream);
}

#[test]
fn mqtt_topic_corpus() {
    replay("mqtt_topic", mq_core::fuzzing::mqtt_topic);
}

#[test]
fn mqtt_broker_corpus() {
    replay("mqtt_broker", mq_core::fuzzing::mqtt_broker);
}

#[test]
fn nats_parse_corpus() {
    replay("nats_parse", mq_core::fuzzing::nats_parse);
}

#[test]
fn nats_broker_corpus() {
    replay("nats_broker", mq_core::fuzzing::nats_broker);
}

//! Writes the seed corpus for the fuzz targets in `mq-core/fuzz/corpus/`.
//!
//! Run from the workspace root: `cargo run -p mq-core --example fuzz_seeds`.

use std::fs;
use std::path::Path;

use mq_core::framing::{serial, stream};
use mq_core::mqtt;
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
            epoch: 0,
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
    mqtt_seeds(&root);
    println!("wrote seeds under {}", root.display());
}

/// MQTT packets of every type, as a connection in `version` sends them.
fn mqtt_packets(version: mqtt::Version) -> Vec<mqtt::Packet<'static>> {
    use mqtt::*;
    let v5 = version == Version::V5;
    let pid = |n| PacketId::new(n).unwrap();
    let if_v5 = |p: Properties<'static>| if v5 { p } else { Properties::EMPTY };
    let user: &'static [(&str, &str)] = &[("k", "v")];
    let message = if_v5(Properties {
        payload_format: Some(PayloadFormat::Utf8),
        message_expiry: Some(60),
        content_type: Some("text/plain"),
        response_topic: Some("reply/x"),
        correlation_data: Some(b"c1"),
        user: List::new(user),
        ..Properties::EMPTY
    });
    let diagnostics = if_v5(Properties {
        reason_string: Some("why"),
        user: List::new(user),
        ..Properties::EMPTY
    });
    const SUBS: &[Subscription<'static>] = &[
        Subscription {
            filter: "sensors/+/temp",
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        },
        Subscription {
            filter: "$share/g/jobs/#",
            options: SubscriptionOptions::qos(QoS::ExactlyOnce),
        },
    ];
    let ack = Ack::new(pid(7));
    vec![
        Packet::Connect(Connect {
            version,
            clean_start: true,
            keep_alive: 30,
            properties: if_v5(Properties {
                session_expiry: Some(300),
                receive_maximum: core::num::NonZeroU16::new(10),
                maximum_packet_size: core::num::NonZeroU32::new(65_536),
                topic_alias_maximum: Some(8),
                ..Properties::EMPTY
            }),
            client_id: "sensor-17",
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: if_v5(Properties {
                    will_delay: Some(5),
                    ..message
                }),
                topic: "status/sensor-17",
                payload: b"offline",
            }),
            username: Some("sensor"),
            password: Some(b"s3cret"),
        }),
        Packet::ConnAck(ConnAck {
            session_present: version != Version::V3_1,
            reason: ReasonCode::Success,
            properties: if_v5(Properties {
                assigned_client_id: Some("auto-1"),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(true),
                shared_subscription_available: Some(true),
                ..Properties::EMPTY
            }),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QosPid::ExactlyOnce(pid(7)),
            retain: true,
            topic: "sensors/kitchen/temp",
            properties: if_v5(Properties {
                topic_alias: core::num::NonZeroU16::new(1),
                subscription_ids: List::new(&[3]),
                ..message
            }),
            payload: b"21.5",
        }),
        Packet::PubAck(Ack {
            reason: if v5 {
                ReasonCode::QuotaExceeded
            } else {
                ReasonCode::Success
            },
            properties: diagnostics,
            ..ack
        }),
        Packet::PubRec(ack),
        Packet::PubRel(ack),
        Packet::PubComp(ack),
        Packet::Subscribe(Subscribe {
            packet_id: pid(8),
            properties: if_v5(Properties {
                subscription_ids: List::new(&[3]),
                ..Properties::EMPTY
            }),
            subscriptions: List::new(SUBS),
        }),
        Packet::SubAck(SubAck {
            packet_id: pid(8),
            properties: diagnostics,
            reasons: List::new(&[ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized]),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(9),
            properties: Properties::EMPTY,
            filters: List::new(&["sensors/+/temp"]),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: pid(9),
            properties: diagnostics,
            reasons: if v5 {
                List::new(&[ReasonCode::NoSubscriptionExisted])
            } else {
                List::EMPTY
            },
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::NORMAL),
    ]
}

/// Seeds of the MQTT targets: every packet of every version, whole
/// conversations for the stream decoder, topics for the mapping.
fn mqtt_seeds(root: &Path) {
    use mqtt::{Auth, Packet, Properties, ReasonCode, Version};
    let versions = [(0u8, Version::V3_1), (1, Version::V3_1_1), (2, Version::V5)];
    for (tag, version) in versions {
        let mut packets = mqtt_packets(version);
        if version == Version::V5 {
            packets.push(Packet::Auth(Auth {
                reason: ReasonCode::ContinueAuthentication,
                properties: Properties {
                    auth_method: Some("SCRAM-SHA-256"),
                    auth_data: Some(b"nonce"),
                    ..Properties::EMPTY
                },
            }));
        }
        // Maximum packet size 4097, chunks of 8, this version.
        let mut conversation = vec![0xFF, 0x0F, 0x07, tag];
        for (i, packet) in packets.iter().enumerate() {
            let mut buf = vec![0u8; packet.encoded_len(version)];
            packet.encode(version, &mut buf).unwrap();
            let name = format!("seed-v{tag}-{i:02}-{:?}", packet.packet_type()).to_lowercase();
            let mut seed = vec![tag];
            seed.extend_from_slice(&buf);
            write(&root.join("mqtt_decode"), name.clone(), &seed);
            // Alone, fed a byte at a time.
            let mut alone = vec![0xFF, 0x0F, 0x00, tag];
            alone.extend_from_slice(&buf);
            write(&root.join("mqtt_stream"), name, &alone);
            conversation.extend_from_slice(&buf);
        }
        write(
            &root.join("mqtt_stream"),
            format!("conversation-v{tag}"),
            &conversation,
        );
    }
    let topics = [
        "sensors/kitchen/temp",
        "/leading/slash",
        "a//empty/",
        "dots.and*stars>here",
        "caf\u{e9} 100% %2E %25",
        "$SYS/broker/uptime",
        "$share/workers/jobs/#",
        "a/+/c/#",
        "sensors.%.caf%C3%A9",
        "a%2Fb.c#.d+",
    ];
    for (i, t) in topics.iter().enumerate() {
        write(
            &root.join("mqtt_topic"),
            format!("seed-{i:02}"),
            t.as_bytes(),
        );
    }
    nats_seeds(root);
}

/// NATS operations as a person or a client sends them: alone for the
/// parser, and after a chunk size and a time step for the broker.
fn nats_seeds(root: &Path) {
    let sessions: [(&str, &[u8]); 12] = [
        ("telnet", b"PUB orders 5\r\nhello\r\nSUB orders 1\r\nPUB orders 5\r\nhello\r\nPING\r\n"),
        ("connect", b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"echo\":false,\"auth_token\":\"x\"}\r\nPING\r\n"),
        ("hpub", b"HPUB a r 22 24\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nhi\r\n"),
        ("hpub_status", b"HPUB a 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"),
        ("queue", b"SUB q grp 1\r\nSUB q grp 2\r\nUNSUB 1 2\r\nPUB q 1\r\na\r\nPUB q 1\r\nb\r\n"),
        ("request", b"SUB _INBOX.x.* 9\r\nPUB svc _INBOX.x.1 2\r\nhi\r\nPUB _INBOX.x.1 2\r\nok\r\n"),
        ("msg_info", b"INFO {\"server_id\":\"x\"}\r\nMSG a 1 r 2\r\nhi\r\nHMSG a 1 12 12\r\nNATS/1.0\r\n\r\n\r\n+OK\r\n-ERR 'x'\r\nPONG\r\n"),
        ("unknown", b"FOO bar\r\nPING\r\n"),
        ("bad_size", b"PUB a 3\r\nhelloo\r\nPUB a x\r\n"),
        ("lf_only", b"sub a 1\npub a 2\nhi\nping\n"),
        ("wildcards", b"SUB a.* 1\r\nSUB a.> 2\r\nPUB a.b.c 0\r\n\r\nPUB a.b 1\r\nx\r\nUNSUB 2\r\n"),
        ("bad_subjects", b"SUB a..b 1\r\nPUB a.* 1\r\nx\r\nPUB $sys 0\r\n\r\n"),
    ];
    for (i, (name, bytes)) in sessions.iter().enumerate() {
        write(&root.join("nats_parse"), name.to_string(), bytes);
        let mut seed = vec![(i * 37) as u8, (i % 5) as u8];
        seed.extend_from_slice(bytes);
        write(&root.join("nats_broker"), name.to_string(), &seed);
    }
}

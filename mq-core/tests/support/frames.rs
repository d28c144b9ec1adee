//! Arbitrary frames for property tests: owned parts that build any `Frame` variant.

use mq_core::wire::mesh::Interest;
use mq_core::wire::*;
use proptest::prelude::*;

/// Owned material a frame borrows from.
#[derive(Debug, Clone)]
pub struct Parts {
    kind: u8,
    text: String,
    text2: String,
    bytes: Vec<u8>,
    bytes2: Vec<u8>,
    headers: Vec<u8>,
    nums: [u64; 4],
    flags: u8,
    reason: u16,
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        ("[a-z]{1,8}", prop::collection::vec(any::<u8>(), 0..8)),
        0..3,
    )
    .prop_map(|pairs| {
        let mut buf = vec![0u8; 256];
        let mut b = HeadersBuilder::new(&mut buf);
        for (k, v) in &pairs {
            b.push(k, v).unwrap();
        }
        let len = b.finish().as_encoded().len();
        buf.truncate(len);
        buf
    })
}

/// Any frame kind with small random contents; payloads up to `max_payload` bytes.
pub fn parts(max_payload: usize) -> impl Strategy<Value = Parts> {
    (
        0u8..22,
        "[a-z.$*>]{0,24}",
        "\\PC{0,12}",
        prop::collection::vec(any::<u8>(), 0..=max_payload),
        prop::collection::vec(any::<u8>(), 0..6),
        header_bytes(),
        any::<[u64; 4]>(),
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(kind, text, text2, bytes, bytes2, headers, nums, flags, reason)| Parts {
                kind,
                text,
                text2,
                bytes,
                bytes2,
                headers,
                nums,
                flags,
                reason,
            },
        )
}

impl Parts {
    fn bit(&self, n: u8) -> bool {
        self.flags & (1 << n) != 0
    }

    fn qos(&self) -> QoS {
        if self.bit(0) {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        }
    }

    fn meta(&self) -> Meta<'_> {
        Meta {
            ttl_ms: self.bit(1).then_some(self.nums[3] as u32),
            priority: self.flags,
            reply_to: self.bit(2).then_some(self.text2.as_str()),
            correlation: self.bit(3).then_some(self.bytes2.as_slice()),
            headers: Headers::from_encoded(&self.headers).unwrap(),
        }
    }

    fn fragment(&self) -> Option<Fragment> {
        self.bit(4).then_some(Fragment {
            offset: self.nums[2],
            total: self.nums[3],
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_frame: self.nums[0] as u32,
            credit: self.nums[1] as u32,
            keepalive_ms: self.nums[2] as u32,
        }
    }

    /// The frame these parts describe.
    pub fn frame(&self) -> Frame<'_> {
        let [a, b, c, _] = self.nums;
        let reason = Reason::from_code(self.reason);
        match self.kind {
            0 => Frame::Hello(Hello {
                version: a as u16,
                client_id: &self.text,
                session: if self.bit(5) {
                    SessionMode::Resume
                } else {
                    SessionMode::Clean
                },
                token: self.bit(6).then_some(self.text2.as_str()),
                limits: self.limits(),
            }),
            1 => Frame::Welcome(Welcome {
                version: a as u16,
                session_present: self.bit(5),
                limits: self.limits(),
                epoch: b,
            }),
            2 => Frame::Publish(Publish {
                id: a as u32,
                topic: &self.text,
                qos: self.qos(),
                dedup: self.bit(5).then_some(Dedup {
                    producer: b,
                    seq: c,
                }),
                meta: self.meta(),
                fragment: self.fragment(),
                payload: &self.bytes,
            }),
            3 => Frame::PubAck(PubAck {
                id: a as u32,
                seq: b,
                duplicate: self.bit(5),
            }),
            4 => Frame::PubReject(PubReject {
                id: a as u32,
                reason,
            }),
            5 => Frame::Subscribe(Subscribe {
                sub: a as u32,
                filter: &self.text,
                group: self.bit(5).then_some(self.text2.as_str()),
                start: match self.flags % 4 {
                    0 => Start::New,
                    1 => Start::Seq(b),
                    2 => Start::Last(b as u32),
                    _ => Start::Cursor,
                },
                qos: self.qos(),
                credit: c as u32,
            }),
            6 => Frame::SubAck(SubAck { sub: a as u32 }),
            7 => Frame::SubReject(SubReject {
                sub: a as u32,
                reason,
            }),
            8 => Frame::Unsubscribe(Unsubscribe { sub: a as u32 }),
            9 => Frame::UnsubAck(UnsubAck { sub: a as u32 }),
            10 => Frame::Deliver(Deliver {
                sub: a as u32,
                topic: &self.text,
                seq: b,
                tag: c,
                attempt: self.reason,
                qos: self.qos(),
                meta: self.meta(),
                fragment: self.fragment(),
                payload: &self.bytes,
            }),
            11 => Frame::Ack(Ack { tag: a }),
            12 => Frame::Nack(Nack {
                tag: a,
                requeue: self.bit(5),
            }),
            13 => Frame::Credit(Credit {
                sub: a as u32,
                credit: b as u32,
            }),
            14 => Frame::Ping(a),
            15 => Frame::Pong(a),
            16 => Frame::Close(Close {
                reason,
                text: &self.text2,
            }),
            17 => Frame::Error(ErrorFrame {
                code: reason,
                text: &self.text2,
            }),
            18 => Frame::Admin(Admin {
                id: a as u32,
                request: &self.bytes,
            }),
            19 => Frame::AdminAnswer(AdminAnswer {
                id: a as u32,
                body: &self.bytes,
            }),
            21 => Frame::AckMessage(AckMessage {
                sub: a as u32,
                topic_hash: b,
                seq: a,
            }),
            _ => Frame::Interest(match a % 4 {
                0 => Interest::Begin,
                1 => Interest::Add(&self.text),
                2 => Interest::Remove(&self.text),
                _ => Interest::End,
            }),
        }
    }
}

//! The frames a link writes.

use alloc::format;

use super::{Ctrl, LinkConn, OUTBOX_SUB};
use crate::framing::stream;
use crate::wire::mesh::{Interest, NODE_PREFIX};
use crate::wire::{
    self, Close, EncodeError, ErrorFrame, Frame, Hello, PROTOCOL_VERSION, QoS, SessionMode, Start,
    Subscribe,
};

/// Why a frame was not written.
pub(super) enum Unsent {
    /// The buffer has no room for it now.
    Wait,
    /// No longer to be said (a group left before its join was written).
    Moot,
    /// Larger than the peer's maximum frame.
    TooLarge,
}

impl LinkConn {
    pub(super) fn encode(&self, c: &Ctrl, buf: &mut [u8]) -> Result<usize, Unsent> {
        let client;
        let frame = match c {
            Ctrl::Hello => {
                client = format!("{NODE_PREFIX}{}", self.node);
                Frame::Hello(Hello {
                    version: PROTOCOL_VERSION,
                    client_id: &client,
                    session: SessionMode::Resume,
                    token: self.token.as_deref(),
                    limits: self.own,
                })
            }
            Ctrl::Subscribe => Frame::Subscribe(Subscribe {
                sub: OUTBOX_SUB,
                filter: ">",
                group: None,
                start: Start::New,
                qos: QoS::AtLeastOnce,
                credit: self.own.credit,
            }),
            Ctrl::Interest(i) => Frame::Interest(*i),
            Ctrl::Add(f) => Frame::Interest(Interest::Add(f)),
            Ctrl::Join(sub) => {
                // A group left again before this was written is moot.
                let (filter, group) = self.joined.get(sub).ok_or(Unsent::Moot)?;
                Frame::Subscribe(Subscribe {
                    sub: *sub,
                    filter,
                    group: Some(group),
                    start: Start::New,
                    qos: QoS::AtLeastOnce,
                    credit: self.own.credit,
                })
            }
            Ctrl::Leave(sub) => Frame::Unsubscribe(wire::Unsubscribe { sub: *sub }),
            Ctrl::Remove(f) => Frame::Interest(Interest::Remove(f)),
            Ctrl::Ack(tag) => Frame::Ack(wire::Ack { tag: *tag }),
            Ctrl::Nack(tag, requeue) => Frame::Nack(wire::Nack {
                tag: *tag,
                requeue: *requeue,
            }),
            Ctrl::Ping(n) => Frame::Ping(*n),
            Ctrl::Pong(n) => Frame::Pong(*n),
            Ctrl::Close(reason, text) => Frame::Close(Close {
                reason: *reason,
                text,
            }),
            Ctrl::Error(code, text) => Frame::Error(ErrorFrame { code: *code, text }),
        };
        stream::encode_frame(&frame, self.peer_max_frame, buf).map_err(|e| match e {
            EncodeError::BufferTooSmall { .. } => Unsent::Wait,
            _ => Unsent::TooLarge,
        })
    }
}

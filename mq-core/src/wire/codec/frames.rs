//! Every frame's fields, and [`Frame`] as a tagged union of them.

use super::{Reader, Sink, Wire, wire_struct};
use crate::wire::{
    Ack, AckMessage, Admin, AdminAnswer, Close, Credit, DecodeError, Deliver, ErrorFrame, Frame,
    Hello, Nack, PubAck, PubReject, Publish, Reason, SubAck, SubReject, Subscribe, UnsubAck,
    Unsubscribe, Welcome,
};

wire_struct!(Hello<'a> {
    version,
    client_id,
    session,
    token,
    limits
});
wire_struct!(Welcome {
    version,
    session_present,
    limits,
    epoch
});
wire_struct!(Publish<'a> {
    id,
    topic,
    qos,
    dedup,
    meta,
    fragment,
    payload
});
wire_struct!(PubAck { id, seq, duplicate });
wire_struct!(PubReject { id, reason });
wire_struct!(Subscribe<'a> {
    sub,
    filter,
    group,
    start,
    qos,
    credit
});
wire_struct!(SubAck { sub });
wire_struct!(SubReject { sub, reason });
wire_struct!(Unsubscribe { sub });
wire_struct!(UnsubAck { sub });
wire_struct!(Deliver<'a> {
    sub,
    topic,
    seq,
    tag,
    attempt,
    qos,
    meta,
    fragment,
    payload
});
wire_struct!(Ack { tag });
wire_struct!(AckMessage {
    sub,
    topic_hash,
    seq
});
wire_struct!(Nack { tag, requeue });
wire_struct!(Credit { sub, credit });
wire_struct!(Close<'a> { reason, text });
wire_struct!(ErrorFrame<'a> { code, text });
wire_struct!(Admin<'a> { id, request });
wire_struct!(AdminAnswer<'a> { id, body });

/// How many variants [`Frame`] has: its tags are `0..FRAME_KINDS`.
const FRAME_KINDS: u32 = 22;

impl Frame<'_> {
    /// The variant index postcard writes in front of the fields.
    pub(crate) const fn tag(&self) -> u8 {
        match self {
            Frame::Hello(_) => 0,
            Frame::Welcome(_) => 1,
            Frame::Publish(_) => 2,
            Frame::PubAck(_) => 3,
            Frame::PubReject(_) => 4,
            Frame::Subscribe(_) => 5,
            Frame::SubAck(_) => 6,
            Frame::SubReject(_) => 7,
            Frame::Unsubscribe(_) => 8,
            Frame::UnsubAck(_) => 9,
            Frame::Deliver(_) => 10,
            Frame::Ack(_) => 11,
            Frame::Nack(_) => 12,
            Frame::Credit(_) => 13,
            Frame::Ping(_) => 14,
            Frame::Pong(_) => 15,
            Frame::Close(_) => 16,
            Frame::Error(_) => 17,
            Frame::Admin(_) => 18,
            Frame::AdminAnswer(_) => 19,
            Frame::Interest(_) => 20,
            Frame::AckMessage(_) => 21,
        }
    }
}

impl<'a> Wire<'a> for Frame<'a> {
    fn write<W: Sink>(&self, w: &mut W) {
        w.byte(self.tag());
        match self {
            Frame::Hello(f) => f.write(w),
            Frame::Welcome(f) => f.write(w),
            Frame::Publish(f) => f.write(w),
            Frame::PubAck(f) => f.write(w),
            Frame::PubReject(f) => f.write(w),
            Frame::Subscribe(f) => f.write(w),
            Frame::SubAck(f) => f.write(w),
            Frame::SubReject(f) => f.write(w),
            Frame::Unsubscribe(f) => f.write(w),
            Frame::UnsubAck(f) => f.write(w),
            Frame::Deliver(f) => f.write(w),
            Frame::Ack(f) => f.write(w),
            Frame::Nack(f) => f.write(w),
            Frame::Credit(f) => f.write(w),
            Frame::Ping(v) | Frame::Pong(v) => v.write(w),
            Frame::Close(f) => f.write(w),
            Frame::Error(f) => f.write(w),
            Frame::Admin(f) => f.write(w),
            Frame::AdminAnswer(f) => f.write(w),
            Frame::Interest(f) => f.write(w),
            Frame::AckMessage(f) => f.write(w),
        }
    }

    fn read(r: &mut Reader<'a>) -> Self {
        // For any receiver only a bad tag fails, already marked in `r`.
        read_frame(r, Receiver::Any).unwrap_or_else(|_| Frame::Ping(r.fail()))
    }
}

/// Which frames an encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// Every frame (the broker, tools, tests, hosts' clients).
    Any,
    /// Those a client session sends ([`write_from_client`]).
    Client,
}

/// `frame` as `sender` writes it. Inlined, so that for a constant `sender`
/// only its encoder is compiled in.
#[inline(always)]
pub(crate) fn write_frame<W: Sink>(frame: &Frame<'_>, w: &mut W, sender: Sender) {
    match sender {
        Sender::Any => frame.write(w),
        Sender::Client => write_from_client(frame, w),
    }
}

/// Writes `frame` if a client session sends it (hello, publish, subscribe,
/// unsubscribe, ack, ack by message, nack, credit, ping, pong, close, error; admin with
/// `alloc`), byte for byte as [`Wire::write`] does; any other frame is
/// [`refuse`](Writer::refuse)d, unwritten, so that a client carries no code
/// to encode the frames only brokers send.
pub(crate) fn write_from_client<W: Sink>(frame: &Frame<'_>, w: &mut W) {
    // The tag written once, before the fields (at each arm it was a call
    // more on devices).
    if !written_by_clients(frame) {
        return w.refuse();
    }
    w.byte(frame.tag());
    match frame {
        Frame::Hello(f) => f.write(w),
        Frame::Publish(f) => f.write(w),
        Frame::Subscribe(f) => f.write(w),
        Frame::Unsubscribe(f) => f.write(w),
        Frame::Ack(f) => f.write(w),
        Frame::AckMessage(f) => f.write(w),
        Frame::Nack(f) => f.write(w),
        Frame::Credit(f) => f.write(w),
        Frame::Ping(v) | Frame::Pong(v) => v.write(w),
        Frame::Close(f) => f.write(w),
        Frame::Error(f) => f.write(w),
        #[cfg(feature = "alloc")]
        Frame::Admin(f) => f.write(w),
        _ => {}
    }
}

/// Whether [`write_from_client`] writes `frame`.
const fn written_by_clients(frame: &Frame<'_>) -> bool {
    match frame {
        Frame::Hello(_)
        | Frame::Publish(_)
        | Frame::Subscribe(_)
        | Frame::Unsubscribe(_)
        | Frame::Ack(_)
        | Frame::AckMessage(_)
        | Frame::Nack(_)
        | Frame::Credit(_)
        | Frame::Ping(_)
        | Frame::Pong(_)
        | Frame::Close(_)
        | Frame::Error(_) => true,
        #[cfg(feature = "alloc")]
        Frame::Admin(_) => true,
        _ => false,
    }
}

/// Which frames a decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// Every frame (the broker, tools, tests).
    Any,
    /// Those a client receives: a frame only clients send (and without
    /// `alloc` an `AdminAnswer`) is refused by its tag, unread, so a client
    /// carries no code to decode one.
    Client,
}

/// The tags of the frames only clients send (a node link's `Interest`
/// included: its sender is the client of the link).
const fn sent_by_clients(tag: u32) -> bool {
    matches!(tag, 0 | 2 | 5 | 8 | 11 | 12 | 13 | 18 | 20 | 21)
}

/// The tags a client refuses unread: those only clients send, and for a
/// client that cannot `ask` (without `alloc`) an `AdminAnswer` too: it
/// answers an `Admin`, which only a session with `alloc` sends, so the
/// session would refuse it as a protocol violation once decoded, and a
/// device carries no code to decode it.
const fn refused_by_clients(tag: u32, ask: bool) -> bool {
    sent_by_clients(tag) || (!ask && tag == 19)
}

/// A frame, for `receiver`. Inlined, so that for a constant `receiver` the
/// arms it refuses are not compiled in.
#[inline(always)]
pub(crate) fn read_frame<'a>(
    r: &mut Reader<'a>,
    receiver: Receiver,
) -> Result<Frame<'a>, DecodeError> {
    let tag = r.variant(FRAME_KINDS);
    r.check()?;
    if receiver == Receiver::Client && refused_by_clients(tag, cfg!(feature = "alloc")) {
        return Err(DecodeError::Unexpected);
    }
    // Three pairs of the broker's frames have the same fields: each pair is
    // read by one arm, then told apart by its tag. A client inlines this
    // decoder into its receive path, where each arm was a copy of the reads
    // (`Ping` and `Pong` paired the same way made the firmware larger).
    Ok(match tag {
        0 => Frame::Hello(Wire::read(r)),
        1 => Frame::Welcome(Wire::read(r)),
        2 => Frame::Publish(Wire::read(r)),
        3 => Frame::PubAck(Wire::read(r)),
        4 | 7 => {
            let id = r.u32();
            let reason = Reason::read(r);
            match tag {
                4 => Frame::PubReject(PubReject { id, reason }),
                _ => Frame::SubReject(SubReject { sub: id, reason }),
            }
        }
        5 => Frame::Subscribe(Wire::read(r)),
        6 | 9 => {
            let sub = r.u32();
            match tag {
                6 => Frame::SubAck(SubAck { sub }),
                _ => Frame::UnsubAck(UnsubAck { sub }),
            }
        }
        8 => Frame::Unsubscribe(Wire::read(r)),
        10 => Frame::Deliver(Wire::read(r)),
        11 => Frame::Ack(Wire::read(r)),
        12 => Frame::Nack(Wire::read(r)),
        13 => Frame::Credit(Wire::read(r)),
        14 => Frame::Ping(r.u64()),
        15 => Frame::Pong(r.u64()),
        16 | 17 => {
            let reason = Reason::read(r);
            let text = Wire::read(r);
            match tag {
                16 => Frame::Close(Close { reason, text }),
                _ => Frame::Error(ErrorFrame { code: reason, text }),
            }
        }
        18 => Frame::Admin(Wire::read(r)),
        19 => Frame::AdminAnswer(Wire::read(r)),
        20 => Frame::Interest(Wire::read(r)),
        _ => Frame::AckMessage(Wire::read(r)),
    })
}

#[cfg(test)]
mod tests {
    use super::{refused_by_clients, sent_by_clients};

    #[test]
    fn only_a_client_that_cannot_ask_refuses_admin_answers() {
        for tag in 0..=super::FRAME_KINDS {
            assert_eq!(refused_by_clients(tag, true), sent_by_clients(tag), "{tag}");
            let admin_answer = tag == 19;
            assert_eq!(
                refused_by_clients(tag, false),
                sent_by_clients(tag) || admin_answer,
                "{tag}"
            );
        }
    }
}

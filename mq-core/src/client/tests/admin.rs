//! Admin requests: sent once connected, one waiting at a time, answers in
//! order with the messages.

use super::*;
use crate::client::AdminError;
use crate::wire::{AdminAnswer, AdminRequest};

#[test]
fn admin_request_goes_out_and_its_answer_comes_back_in_order() {
    let mut t = T::std();
    let purge = AdminRequest::Purge {
        topic: "orders",
        before: 7,
    };
    assert_eq!(t.s.admin(purge), Err(AdminError::NotConnected));
    t.handshake(false, limits(4096, 0));
    let id = t.s.admin(purge).unwrap();
    assert_eq!(t.s.admin(AdminRequest::Topics), Err(AdminError::Busy));
    let sent = t.tx();
    assert_eq!(sent.len(), 1);
    let Frame::Admin(a) = frame(&sent[0]) else {
        panic!("not an admin frame")
    };
    assert_eq!(a.id, id.0);
    assert_eq!(AdminRequest::decode(a.request), Ok(purge));
    // Sent: the next one may be asked.
    let next = t.s.admin(AdminRequest::Topics).unwrap();
    assert_ne!(next, id);
    t.tx();

    let sub = t.subscribe("orders");
    assert!(t.feed(Frame::Deliver(deliver(
        sub.0,
        "orders",
        1,
        1,
        QoS::AtMostOnce,
        b"m"
    ))));
    assert!(t.feed(Frame::AdminAnswer(AdminAnswer {
        id: id.0,
        body: b"\x03\x01\x00",
    })));
    let ev = t.ev();
    assert_eq!(ev.len(), 2);
    assert_eq!(msg(&ev[0]).payload, b"m");
    assert_eq!(ev[1], Ev::AdminAnswer(id.0, b"\x03\x01\x00".to_vec()));
}

#[test]
fn a_topic_longer_than_the_session_holds_is_refused() {
    let mut t = T::std();
    t.handshake(false, limits(4096, 0));
    let long = "t".repeat(crate::topic::MAX_TOPIC_LEN + 1);
    let req = AdminRequest::DeleteTopic { topic: &long };
    assert_eq!(t.s.admin(req), Err(AdminError::TopicTooLong));
    assert!(t.tx().is_empty());
}

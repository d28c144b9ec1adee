//! Managing topics and sessions: listings, purge and delete, live, over the
//! wire, racing the store, and after a restart from the records.

use super::*;
use crate::broker::admin::{AdminReply, AdminRequest, TopicInfo};

fn topics(h: &mut H) -> Vec<TopicInfo> {
    match h.b.admin(h.now, &AdminRequest::Topics).0 {
        AdminReply::Topics { topics, .. } => topics,
        other => panic!("{other:?}"),
    }
}

fn topic(h: &mut H, name: &str) -> Option<TopicInfo> {
    topics(h).into_iter().find(|t| t.name == name)
}

fn seqs(h: &mut H, name: &str) -> Vec<u64> {
    let req = AdminRequest::Messages {
        topic: name,
        from: 0,
        limit: 100,
        max_payload: 8,
    };
    match h.b.admin(h.now, &req).0 {
        AdminReply::Messages(list) => list.messages.iter().map(|m| m.seq).collect(),
        other => panic!("{other:?}"),
    }
}

/// An admin frame's body.
fn encoded(req: AdminRequest<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let n = req.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn admin(h: &mut H, req: AdminRequest<'_>) -> AdminReply {
    let reply = h.b.admin(h.now, &req).0;
    h.drain();
    reply
}

/// A broker restored from `h`'s records (a restart on the same store).
fn restarted(h: &H) -> H {
    restored(&h.records)
}

/// A broker restored from `h`'s snapshot (a restart after a compaction).
fn compacted(h: &H) -> H {
    restored(&h.b.snapshot().unwrap().records)
}

fn restored<R: AsRef<[u8]>>(records: &[R]) -> H {
    H::restored_from(Config::default(), records)
}

#[test]
fn topics_show_sequences_retention_subscribers_and_counts() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "a.>", None, 10);
    h.subscribe(s, 2, "a.b", Some("g"), 10);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "a.b", QoS::AtLeastOnce, &[i; 4]);
    }
    h.publish(p, 0, "c", QoS::AtMostOnce, b"x");
    let t = topics(&mut h);
    assert_eq!(
        t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["a.b", "c"]
    );
    assert_eq!(
        t[0],
        TopicInfo {
            name: "a.b".into(),
            first_seq: 1,
            last_seq: 3,
            retained: 3,
            retained_bytes: 12,
            subscribers: 2,
            messages_in: 3,
            bytes_in: 12,
        }
    );
    assert_eq!((t[1].subscribers, t[1].last_seq), (0, 1));

    let req = AdminRequest::Messages {
        topic: "a.b",
        from: 2,
        limit: 1,
        max_payload: 2,
    };
    let AdminReply::Messages(list) = h.b.admin(h.now, &req).0 else {
        panic!()
    };
    assert_eq!(list.total, 3);
    assert_eq!(list.messages.len(), 1);
    assert_eq!(list.messages[0].seq, 2);
    assert_eq!(list.messages[0].size, 4);
    assert_eq!(list.messages[0].payload, [2, 2]);
}

#[test]
fn sessions_show_their_queues_connected_or_away() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (d, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(d, 7, "jobs", None, 1);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "jobs", QoS::AtLeastOnce, &[i]);
    }
    let tag = h.deliveries(d)[0].tag;
    h.send(
        d,
        Frame::Nack(Nack {
            tag,
            requeue: false,
        }),
    );
    h.send(
        d,
        Frame::Close(Close {
            reason: Reason::Normal,
            text: "",
        }),
    );
    h.b.handle_closed(d, h.now);
    h.drain();
    let AdminReply::Sessions { sessions, .. } = admin(&mut h, AdminRequest::Sessions) else {
        panic!()
    };
    let dev = sessions.iter().find(|s| s.client == "dev").unwrap();
    assert!(!dev.connected && dev.persistent);
    assert_eq!(dev.subscriptions.len(), 1);
    let sub = &dev.subscriptions[0];
    assert_eq!((sub.id, sub.filter.as_str()), (7, "jobs"));
    assert_eq!(sub.waiting, 2);
    assert_eq!(sub.dead_lettered, 1);
    let publisher = sessions.iter().find(|s| s.client == "pub").unwrap();
    assert!(publisher.connected && !publisher.persistent);
}

#[test]
fn purge_drops_retained_and_waiting_copies_and_holds_across_a_restart() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (d, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(d, 1, "log", None, 1);
    for i in 1..=5u8 {
        h.publish(p, u32::from(i), "log", QoS::AtLeastOnce, &[i]);
    }
    // One in flight (seq 1), four waiting.
    let first = h.deliveries(d);
    assert_eq!(payloads(&first), [[1u8]]);
    let reply = admin(
        &mut h,
        AdminRequest::Purge {
            topic: "log",
            before: 4,
        },
    );
    // Retained 1..=3, waiting 2 and 3 (seq 1 was in flight, and is gone too).
    assert_eq!(
        reply,
        AdminReply::Purged {
            retained: 3,
            queued: 2
        }
    );
    assert_eq!(seqs(&mut h, "log"), [4, 5]);
    assert_eq!(topic(&mut h, "log").unwrap().first_seq, 4);
    // The in-flight copy's credit came back: the next one flows; its ack
    // is ignored.
    h.ack(d, first[0].tag);
    let rest = h.deliveries(d);
    assert_eq!(payloads(&rest), [[4u8]]);

    let mut c = compacted(&h);
    assert_eq!(seqs(&mut c, "log"), [4, 5]);
    let mut r = restarted(&h);
    assert_eq!(seqs(&mut r, "log"), [4, 5]);
    // The numbering continues past the topic's reservation (1 + 2^20):
    // the numbers a power cut could have taken are never given again.
    assert_eq!(topic(&mut r, "log").unwrap().last_seq, 1 << 20);
    // The away session's queue holds what the live one still owes: 4 (in
    // flight there) and 5.
    let (d2, present) = r.connect("dev", SessionMode::Resume);
    assert!(present);
    r.subscribe(d2, 1, "log", None, 1);
    let four = r.deliveries(d2);
    assert_eq!(payloads(&four), [[4u8]]);
    r.ack(d2, four[0].tag);
    assert_eq!(payloads(&r.deliveries(d2)), [[5u8]]);
}

#[test]
fn a_purge_cuts_messages_still_waiting_for_the_store() {
    let mut h = H::new(Config::default());
    h.auto_persist = false;
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (s, _) = h.connect("sub", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 10);
    h.persist();
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"a");
    h.publish(p, 2, "t", QoS::AtLeastOnce, b"b");
    assert!(h.take(p).is_empty(), "acked before stored");
    let reply = admin(
        &mut h,
        AdminRequest::Purge {
            topic: "t",
            before: 2,
        },
    );
    assert_eq!(
        reply,
        AdminReply::Purged {
            retained: 0,
            queued: 0
        }
    );
    h.persist();
    // The publisher is answered; only seq 2 is delivered and retained.
    assert_eq!(h.take(p).len(), 2);
    assert_eq!(payloads(&h.deliveries(s)), [b"b"]);
    assert_eq!(seqs(&mut h, "t"), [2]);
    let mut r = restarted(&h);
    assert_eq!(seqs(&mut r, "t"), [2]);
    let mut c = compacted(&h);
    assert_eq!(seqs(&mut c, "t"), [2]);
}

#[test]
fn delete_forgets_a_topic_and_its_numbering() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    let (d, _) = h.connect("dev", SessionMode::Resume);
    h.subscribe(d, 1, "t", None, 10);
    for i in 1..=3u8 {
        h.publish(p, u32::from(i), "t", QoS::AtLeastOnce, &[i]);
    }
    for dv in h.deliveries(d) {
        h.ack(d, dv.tag);
    }
    h.publish(p, 4, "t", QoS::AtLeastOnce, &[4]);
    h.take(p);
    let reply = admin(&mut h, AdminRequest::DeleteTopic { topic: "t" });
    assert_eq!(
        reply,
        AdminReply::Deleted {
            retained: 4,
            queued: 0
        }
    );
    assert!(topic(&mut h, "t").is_none());
    assert_eq!(
        admin(&mut h, AdminRequest::DeleteTopic { topic: "t" }),
        AdminReply::refused(Reason::UnknownId, "no such topic")
    );
    // The in-flight copy of 4 is gone; its late ack moves no cursor.
    let late = h.deliveries(d);
    h.ack(d, late[0].tag);
    // Numbering starts again; the subscription stays and gets the new ones.
    h.publish(p, 5, "t", QoS::AtLeastOnce, b"new");
    assert_eq!(
        h.take(p),
        [Got::PubAck {
            id: 5,
            seq: 1,
            dup: false
        }]
    );
    assert_eq!(payloads(&h.deliveries(d)), [b"new"]);

    let mut c = compacted(&h);
    assert_eq!(seqs(&mut c, "t"), [1]);
    let mut r = restarted(&h);
    let t = topic(&mut r, "t").unwrap();
    // Past the new numbering's reservation.
    assert_eq!((t.first_seq, t.last_seq), (1, 1 << 20));
    // The cursor of the old numbering is forgotten: replay from it gets the
    // new message.
    let (d2, _) = r.connect("dev", SessionMode::Resume);
    r.send(d2, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    r.take(d2);
    r.subscribe_at(d2, 2, "t", None, 10, Start::Cursor);
    assert_eq!(payloads(&r.deliveries(d2)), [b"new"]);
}

#[test]
fn admin_frames_need_the_admin_permission() {
    let tokens = vec![
        (
            "ops".to_string(),
            Permissions {
                admin: true,
                ..Permissions::all()
            },
        ),
        (
            "app".to_string(),
            Permissions {
                admin: false,
                ..Permissions::all()
            },
        ),
    ];
    let mut h = H::new(Config {
        auth: Auth {
            tokens,
            ..Auth::default()
        },
        ..Config::default()
    });
    let app = h.connect_with("app", SessionMode::Clean, Some("app"));
    h.take(app);
    h.publish(app, 1, "t", QoS::AtLeastOnce, b"x");
    h.take(app);
    let body = encoded(AdminRequest::Purge {
        topic: "t",
        before: 100,
    });
    let purge = Frame::Admin(Admin {
        id: 9,
        request: &body,
    });
    h.send(app, purge);
    let [Got::Admin(9, AdminReply::Refused { reason, text })] = &h.take(app)[..] else {
        panic!()
    };
    assert_eq!(*reason, Reason::NotAuthorized);
    assert!(text.contains("admin"));
    assert_eq!(seqs(&mut h, "t"), [1], "nothing purged");

    let ops = h.connect_with("ops", SessionMode::Clean, Some("ops"));
    h.take(ops);
    h.send(ops, purge);
    assert_eq!(
        h.take(ops),
        [Got::Admin(
            9,
            AdminReply::Purged {
                retained: 1,
                queued: 0
            }
        )]
    );
    h.send(
        ops,
        Frame::Admin(Admin {
            id: 10,
            request: &encoded(AdminRequest::Topics),
        }),
    );
    let [Got::Admin(10, AdminReply::Topics { topics, truncated })] = &h.take(ops)[..] else {
        panic!()
    };
    assert_eq!((topics.len(), *truncated), (1, false));
}

#[test]
fn a_listing_larger_than_the_peer_frame_is_truncated() {
    let mut h = H::new(Config::default());
    h.max_frame = 1024;
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for i in 0..200u32 {
        let name = alloc::format!("topic.number.{i}");
        h.publish(p, 0, &name, QoS::AtMostOnce, b"x");
    }
    h.send(
        p,
        Frame::Admin(Admin {
            id: 1,
            request: &encoded(AdminRequest::Topics),
        }),
    );
    let [Got::Admin(1, AdminReply::Topics { topics, truncated })] = &h.take(p)[..] else {
        panic!()
    };
    assert!(*truncated);
    assert!(!topics.is_empty() && topics.len() < 200);
}

#[test]
fn a_replay_under_way_skips_what_a_purge_removed() {
    let mut h = H::new(Config::default());
    let (p, _) = h.connect("pub", SessionMode::Clean);
    for i in 1..=5u8 {
        h.publish(p, u32::from(i), "r", QoS::AtLeastOnce, &[i]);
    }
    let (s, _) = h.connect("reader", SessionMode::Clean);
    h.subscribe_at(s, 1, "r", None, 1, Start::Seq(0));
    let one = h.deliveries(s);
    assert_eq!(payloads(&one), [[1u8]]);
    admin(
        &mut h,
        AdminRequest::Purge {
            topic: "r",
            before: 4,
        },
    );
    // The in-flight 1 was taken too: credit is back, the replay goes on at 4.
    let four = h.deliveries(s);
    assert_eq!(payloads(&four), [[4u8]]);
    h.ack(s, four[0].tag);
    assert_eq!(payloads(&h.deliveries(s)), [[5u8]]);
}

#[test]
fn a_malformed_admin_request_ends_only_its_connection() {
    let mut h = H::new(Config::default());
    let (bad, _) = h.connect("bad", SessionMode::Clean);
    let (good, _) = h.connect("good", SessionMode::Clean);
    h.subscribe(good, 1, "t", None, 10);
    h.send(
        bad,
        Frame::Admin(Admin {
            id: 1,
            request: &[200, 1, 2],
        }),
    );
    assert_eq!(h.take(bad), [Got::Error(Reason::ProtocolViolation)]);
    assert!(h.closed.contains(&bad));
    let (p, _) = h.connect("pub", SessionMode::Clean);
    h.publish(p, 1, "t", QoS::AtLeastOnce, b"still");
    assert_eq!(payloads(&h.deliveries(good)), [b"still"]);
}

//! A node's link codec against a scripted peer: the frames it receives are
//! written here, and what it answers is read back.

use super::*;

/// What the link said to its peer, as far as these tests look.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Ack(u64),
    Nack(u64, bool),
    /// A subscription: its id, filter, group and credit.
    Sub(u32, String, Option<String>, u32),
    Unsub(u32),
    Other,
}

/// Node `a`, with a link to the scripted peer `p`.
struct Peer {
    h: H,
    link: ConnId,
    /// The credit the link's outbox subscription asked for.
    credit: u32,
}

/// Node `a`'s link to `p`, opened.
fn open_link(h: &mut H) -> ConnId {
    let link = h.b.connect_link(h.now, "a", "p", None).unwrap();
    h.mqtt.insert(link, Vec::new());
    link
}

impl Peer {
    fn new(cfg: Config) -> Peer {
        Peer::on(H::new(cfg), false)
    }

    /// Node `a` as `h` holds it, with a link to `p` that `p` takes.
    fn on(mut h: H, session_present: bool) -> Peer {
        let link = open_link(&mut h);
        let mut p = Peer { h, link, credit: 0 };
        p.welcome(session_present);
        p
    }

    /// The link closes and a new one opens, which the peer, whose store
    /// has `epoch`, takes.
    fn relink(&mut self, session_present: bool, epoch: u64) {
        self.h.b.handle_closed(self.link, self.h.now);
        self.link = open_link(&mut self.h);
        self.welcome_in(session_present, epoch);
    }

    /// A session `s` subscribed to `t` (credit 64), what was said so far
    /// taken.
    fn subscriber(&mut self) -> ConnId {
        let (s, _) = self.h.connect("s", SessionMode::Resume);
        self.h.subscribe(s, 1, "t", None, 64);
        self.said();
        s
    }

    /// The peer takes the link.
    fn welcome(&mut self, session_present: bool) {
        self.welcome_in(session_present, 0);
    }

    /// The peer, whose store has `epoch`, takes the link.
    fn welcome_in(&mut self, session_present: bool, epoch: u64) {
        self.feed(Frame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            session_present,
            limits: Limits {
                max_frame: 1 << 20,
                credit: 64,
                keepalive_ms: 0,
            },
            epoch,
        }));
        for s in self.said() {
            if let Said::Sub(1, f, None, credit) = s {
                assert_eq!(f, ">");
                self.credit = credit;
            }
        }
    }

    fn feed(&mut self, frame: Frame<'_>) {
        let mut buf = vec![0u8; 1 << 16];
        let n = encode_frame(&frame, u32::MAX, &mut buf).unwrap();
        let used = self.h.b.handle_input(self.link, self.h.now, &buf[..n]);
        assert_eq!(used, n);
        self.h.drain();
    }

    /// What the link said since the last call.
    fn said(&mut self) -> Vec<Said> {
        self.h.drain();
        let bytes = core::mem::take(self.h.mqtt.get_mut(&self.link).unwrap());
        let dec = StreamDecoder::new(u32::MAX);
        let mut rest = &bytes[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let Decoded::Frame { frame, consumed } = dec.decode(rest).unwrap() else {
                panic!("partial frame");
            };
            rest = &rest[consumed..];
            out.push(match frame {
                Frame::Ack(a) => Said::Ack(a.tag),
                Frame::Nack(n) => Said::Nack(n.tag, n.requeue),
                Frame::Subscribe(s) => Said::Sub(
                    s.sub,
                    s.filter.to_string(),
                    s.group.map(ToString::to_string),
                    s.credit,
                ),
                Frame::Unsubscribe(u) => Said::Unsub(u.sub),
                _ => Said::Other,
            });
        }
        out
    }

    /// A persistent member `w` of group `g` on `jobs` at this node, and the
    /// id the link joined that group under.
    fn member(&mut self) -> (ConnId, u32) {
        let (w, _) = self.h.connect("w", SessionMode::Resume);
        self.h.subscribe(w, 1, "jobs", Some("g"), 8);
        let said = self.said();
        (w, Peer::joined(&said, "jobs", "g"))
    }

    /// The id the link joined `group` of `filter` under.
    fn joined(said: &[Said], filter: &str, group: &str) -> u32 {
        said.iter()
            .find_map(|s| match s {
                Said::Sub(id, f, Some(g), _) if f == filter && g == group => Some(*id),
                _ => None,
            })
            .expect("joined")
    }
}

fn deliver<'a>(sub: u32, topic: &'a str, seq: u64, tag: u64, payload: &'a [u8]) -> Deliver<'a> {
    crate::client::tests::deliver(sub, topic, seq, tag, QoS::AtLeastOnce, payload)
}

fn fragment<'a>(d: Deliver<'a>, offset: u64, total: u64) -> Frame<'a> {
    Frame::Deliver(Deliver {
        fragment: Some(Fragment { offset, total }),
        ..d
    })
}

#[test]
fn a_fragmented_group_job_is_taken_or_refused_whole_at_its_first_fragment() {
    let mut p = Peer::new(Config::default());
    let (w, sub) = p.member();
    p.feed(fragment(deliver(sub, "jobs", 1, 5, b"aa"), 0, 6));
    // The member leaves and comes back mid-message: the job is still whole.
    p.h.send(w, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    p.feed(fragment(deliver(sub, "jobs", 1, 5, b"bb"), 2, 6));
    p.h.subscribe(w, 2, "jobs", Some("g"), 8);
    p.feed(fragment(deliver(sub, "jobs", 1, 5, b"cc"), 4, 6));
    assert_eq!(payloads(&p.h.deliveries(w)), [b"aabbcc"]);
    assert!(p.said().contains(&Said::Ack(5)));
    // No member at its first fragment: nacked once, its rest skipped, and
    // the next message is not mixed with it.
    p.h.send(w, Frame::Unsubscribe(Unsubscribe { sub: 2 }));
    p.feed(fragment(deliver(sub, "jobs", 2, 6, b"xx"), 0, 4));
    p.h.subscribe(w, 3, "jobs", Some("g"), 8);
    p.feed(fragment(deliver(sub, "jobs", 2, 6, b"yy"), 2, 4));
    let said = p.said();
    assert_eq!(
        said.iter()
            .filter(|s| matches!(s, Said::Nack(6, true)))
            .count(),
        1
    );
    assert!(!said.contains(&Said::Ack(6)));
    let sub = Peer::joined(&said, "jobs", "g");
    p.feed(fragment(deliver(sub, "jobs", 3, 7, b"zz"), 0, 4));
    p.feed(fragment(deliver(sub, "jobs", 3, 7, b"zz"), 2, 4));
    assert_eq!(payloads(&p.h.deliveries(w)), [b"zzzz"]);
}

#[test]
fn a_redelivery_below_the_dedup_window_is_stored_not_dropped() {
    let cfg = Config {
        dedup_window: 4,
        ..Config::default()
    };
    let mut p = Peer::new(cfg);
    let s = p.subscriber();
    // Seq 1 was refused here (say its queue was full) and comes back after
    // more than a window of newer messages were stored.
    for seq in 2..=7 {
        p.feed(Frame::Deliver(deliver(1, "t", seq, seq, b"new")));
    }
    p.feed(Frame::Deliver(deliver(1, "t", 1, 1, b"late")));
    let got = p.h.deliveries(s);
    assert_eq!(got.len(), 7);
    assert_eq!(got.last().unwrap().payload, b"late");
    // What is remembered as stored is still a duplicate.
    p.feed(Frame::Deliver(deliver(1, "t", 7, 8, b"new")));
    assert!(p.h.deliveries(s).is_empty());
    assert!(p.said().contains(&Said::Ack(8)));
}

#[test]
fn a_client_cannot_pose_as_a_link_s_producer() {
    let mut p = Peer::new(Config::default());
    let s = p.subscriber();
    // The key a link files p's messages on "t" under is public.
    let (c, _) = p.h.connect("c", SessionMode::Clean);
    let producer = crate::wire::mesh::mesh_producer(("p", 0), "t", None);
    for seq in [1, 1 << 62] {
        let dedup = Some(Dedup { producer, seq });
        let meta = Meta::default();
        p.h.publish_with(c, 1, "t", QoS::AtLeastOnce, dedup, meta, b"fake");
    }
    assert_eq!(p.h.deliveries(s).len(), 2);
    p.feed(Frame::Deliver(deliver(1, "t", 1, 1, b"real")));
    assert_eq!(payloads(&p.h.deliveries(s)), [b"real"]);
    // Kept apart across a snapshot and a restart too.
    let h2 = H::restored_from(Config::default(), p.h.b.snapshot().unwrap().records);
    let mut p2 = Peer::on(h2, true);
    let (s, _) = p2.h.connect("s", SessionMode::Resume);
    p2.h.subscribe(s, 1, "t", None, 64);
    p2.h.deliveries(s);
    p2.feed(Frame::Deliver(deliver(1, "t", 2, 2, b"next")));
    p2.feed(Frame::Deliver(deliver(1, "t", 1, 3, b"again")));
    assert_eq!(payloads(&p2.h.deliveries(s)), [b"next"]);
}

#[test]
fn groups_whose_ids_hash_alike_are_joined_under_ids_of_their_own() {
    let mut p = Peer::new(Config::default());
    // These two hash to the same `group_sub`.
    let (x, y) = ("g96538", "g304080");
    let hash = crate::wire::mesh::group_sub;
    assert_eq!(hash("jobs", x), hash("jobs", y));
    let (wx, _) = p.h.connect("wx", SessionMode::Resume);
    p.h.subscribe(wx, 1, "jobs", Some(x), 8);
    let (wy, _) = p.h.connect("wy", SessionMode::Resume);
    p.h.subscribe(wy, 1, "jobs", Some(y), 8);
    let said = p.said();
    let (sx, sy) = (
        Peer::joined(&said, "jobs", x),
        Peer::joined(&said, "jobs", y),
    );
    assert_ne!(sx, sy);
    // Each group's jobs go to that group's members.
    p.feed(Frame::Deliver(deliver(sx, "jobs", 1, 1, b"for x")));
    p.feed(Frame::Deliver(deliver(sy, "jobs", 1, 2, b"for y")));
    assert_eq!(payloads(&p.h.deliveries(wx)), [b"for x"]);
    assert_eq!(payloads(&p.h.deliveries(wy)), [b"for y"]);
    // Leaving one leaves it under its own id.
    p.h.send(wy, Frame::Unsubscribe(Unsubscribe { sub: 1 }));
    assert_eq!(p.said().last(), Some(&Said::Unsub(sy)));
}

#[test]
fn a_group_job_for_members_that_are_all_away_goes_back_to_the_peer() {
    let mut p = Peer::new(Config::default());
    let (w, sub) = p.member();
    p.h.b.handle_closed(w, p.h.now);
    p.feed(Frame::Deliver(deliver(sub, "jobs", 1, 1, b"job")));
    assert_eq!(p.said(), [Said::Nack(1, true)]);
    // Back, it takes the next one.
    let (w, _) = p.h.connect("w", SessionMode::Resume);
    p.h.subscribe(w, 1, "jobs", Some("g"), 8);
    p.feed(Frame::Deliver(deliver(sub, "jobs", 2, 2, b"next")));
    assert_eq!(payloads(&p.h.deliveries(w)), [b"next"]);
}

#[test]
fn an_ack_that_does_not_fit_the_buffer_waits_for_the_next() {
    let mut p = Peer::new(Config::default());
    p.h.b.pause_transmit(p.link);
    p.feed(Frame::Deliver(deliver(1, "t", 1, 1, b"x")));
    p.h.b.resume_transmit(p.link);
    // Too small a buffer for the ack: nothing is written, nothing dropped.
    let mut tiny = [0u8; 2];
    assert!(p.h.b.poll_transmit(p.h.now, &mut tiny).is_none());
    p.feed(Frame::Deliver(deliver(1, "t", 2, 2, b"y")));
    assert_eq!(p.said(), [Said::Ack(1), Said::Ack(2)]);
}

#[test]
fn what_a_crash_gives_again_is_still_within_the_dedup_window() {
    // Room for the catalog's page of p's messages and a few of its link's.
    let cfg = Config {
        dedup_window: OFFLINE_BATCH + 8,
        ..Config::default()
    };
    let mut p = Peer::new(cfg.clone());
    assert_eq!(p.credit, 8);
    let (s, _) = p.h.connect("s", SessionMode::Resume);
    p.h.subscribe(s, 1, "t", None, 1000);
    p.said();
    // A page of p's messages from the catalog, and as many newer ones as
    // the credit lets p have unacked on the link: all stored here, and then
    // this node crashes before the catalog or p hear of it.
    let page = 1..=OFFLINE_BATCH as u64;
    let link = page.end() + 1..=page.end() + u64::from(p.credit);
    for id in page.clone() {
        let m = super::offline::offline("p", id, "t", b"x");
        p.h.b.deliver_offline(p.h.now, &m).unwrap();
    }
    for seq in link.clone() {
        p.feed(Frame::Deliver(deliver(1, "t", seq, seq, b"x")));
    }
    let got = p.h.deliveries(s);
    assert_eq!(got.len(), page.clone().chain(link.clone()).count());
    for d in got {
        p.h.ack(s, d.tag);
    }
    let h2 = H::restored_from(cfg, p.h.b.snapshot().unwrap().records);
    let mut p2 = Peer::on(h2, true);
    let (s, _) = p2.h.connect("s", SessionMode::Resume);
    p2.h.subscribe(s, 1, "t", None, 1000);
    assert!(p2.h.deliveries(s).is_empty());
    // The page read again, the link's deliveries given again: duplicates.
    for id in page.clone() {
        let m = super::offline::offline("p", id, "t", b"x");
        p2.h.b.deliver_offline(p2.h.now, &m).unwrap();
    }
    for seq in link.clone() {
        p2.feed(Frame::Deliver(deliver(1, "t", seq, seq, b"x")));
    }
    assert!(p2.h.deliveries(s).is_empty());
    assert_eq!(
        p2.h.b.mesh_stats().deduplicated as usize,
        page.chain(link).count()
    );
}

#[test]
fn a_peer_whose_store_started_again_is_not_taken_for_its_old_self() {
    let mut p = Peer::new(Config::default());
    let s = p.subscriber();
    p.relink(false, 7);
    for seq in 1..=3 {
        p.feed(Frame::Deliver(deliver(1, "t", seq, seq, b"old")));
    }
    assert_eq!(p.h.deliveries(s).len(), 3);
    // The same store again (a restart, a new link): still duplicates.
    p.relink(true, 7);
    p.feed(Frame::Deliver(deliver(1, "t", 2, 1, b"again")));
    assert!(p.h.deliveries(s).is_empty());
    assert!(p.said().contains(&Said::Ack(1)));
    // A new store numbers its messages from 1 again: they are new.
    p.relink(false, 8);
    for seq in 1..=3 {
        p.feed(Frame::Deliver(deliver(1, "t", seq, seq, b"new")));
    }
    assert_eq!(payloads(&p.h.deliveries(s)), [b"new"; 3]);
}

#[test]
fn a_store_keeps_its_epoch_and_an_old_log_s_is_zero() {
    let seeded = |seed| Config {
        seed,
        ..Config::default()
    };
    let mut h = H::new(seeded(1));
    let epoch = h.b.store_epoch();
    assert_ne!(epoch, 0);
    assert_ne!(H::new(seeded(2)).b.store_epoch(), epoch);
    // Written with the first record, kept across restarts (whatever the
    // seed then) and snapshots.
    let (c, _) = h.connect("c", SessionMode::Resume);
    h.publish(c, 1, "t", QoS::AtLeastOnce, b"x");
    assert_eq!(
        Record::decode(&h.records[0]),
        Ok(Record::StoreEpoch { epoch })
    );
    let again = H::restored_from(seeded(3), &h.records);
    assert_eq!(again.b.store_epoch(), epoch);
    let snap = h.b.snapshot().unwrap().records;
    assert_eq!(H::restored_from(seeded(3), &snap).b.store_epoch(), epoch);
    // A log from before epochs: 0, and written so.
    let mut old = H::restored_from(seeded(4), &h.records[1..]);
    assert_eq!(old.b.store_epoch(), 0);
    let (c, _) = old.connect("c2", SessionMode::Resume);
    old.publish(c, 1, "t", QoS::AtLeastOnce, b"y");
    let written = old.records.iter().map(|r| Record::decode(r).unwrap());
    assert!(
        written
            .clone()
            .any(|r| r == Record::StoreEpoch { epoch: 0 })
    );
    let old = H::restored_from(seeded(5), h.records[1..].iter().chain(&old.records));
    assert_eq!(old.b.store_epoch(), 0);
}

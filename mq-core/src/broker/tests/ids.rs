//! Message ids are never handed out twice by one store: a node's peers
//! deduplicate what it forwards by its id (under the store's epoch), so an
//! id given again makes them drop the new message as a duplicate. Nor are a
//! topic's sequence numbers: a subscriber that resumes after the last one
//! it saw would skip a new message given a number again.

use super::*;

/// The messages among `records`.
fn messages(records: &[Vec<u8>]) -> impl Iterator<Item = MessageRecord<'_>> {
    records.iter().filter_map(|r| match Record::decode(r) {
        Ok(Record::Message(m)) => Some(m),
        _ => None,
    })
}

/// The ids of the messages among `records`.
fn ids(records: &[Vec<u8>]) -> Vec<u64> {
    messages(records).map(|m| m.id).collect()
}

/// The sequence numbers of the messages among `records`.
fn seqs(records: &[Vec<u8>]) -> Vec<u64> {
    messages(records).map(|m| m.seq).collect()
}

/// Where the last id reservation is in `records`.
fn last_reservation(records: &[Vec<u8>]) -> usize {
    records
        .iter()
        .rposition(|r| matches!(Record::decode(r), Ok(Record::IdReserve { .. })))
        .expect("a reservation")
}

/// Publishes `n` QoS 1 messages from `c`; their ids.
fn publish(h: &mut H, c: ConnId, n: u32) -> Vec<u64> {
    let before = h.records.len();
    for id in 1..=n {
        h.publish(c, id, "t", QoS::AtLeastOnce, b"x");
    }
    ids(&h.records[before..])
}

#[test]
fn a_power_cut_that_kept_only_the_synced_records_gives_no_id_again() {
    let mut h = H::new(Config::default());
    let (c, _) = h.connect("c", SessionMode::Resume);
    let old = publish(&mut h, c, 5);
    assert_eq!(old, [1, 2, 3, 4, 5]);
    // A store that syncs now and then (`fsync = "interval"`) may lose
    // everything after the last record it had to sync: the reservation,
    // written ahead of the messages.
    let synced = last_reservation(&h.records);
    assert!(ids(&h.records[..=synced]).is_empty());
    let mut again = H::restored_from(Config::default(), &h.records[..=synced]);
    let (c, _) = again.connect("c", SessionMode::Resume);
    let new = publish(&mut again, c, 2);
    assert!(new.iter().all(|id| *id > 5), "{new:?} reuses {old:?}");
}

#[test]
fn a_compaction_keeps_the_reservation_of_the_ids_after_it() {
    let mut h = H::new(Config::default());
    let (c, _) = h.connect("c", SessionMode::Resume);
    publish(&mut h, c, 3);
    let snap = h.b.snapshot().expect("drained").records;
    // More ids of the same block, then a power cut loses them: what the
    // snapshot holds is what is left.
    let lost = publish(&mut h, c, 3);
    let mut again = H::restored_from(Config::default(), &snap);
    let (c, _) = again.connect("c", SessionMode::Resume);
    let new = publish(&mut again, c, 1);
    assert!(new[0] > lost[2], "{new:?} reuses {lost:?}");
}

#[test]
fn a_qos0_message_that_starts_a_block_of_ids_goes_out_once_it_is_stored() {
    let mut h = H::new(Config::default());
    let (s, _) = h.connect("s", SessionMode::Clean);
    h.subscribe(s, 1, "t", None, 64);
    let (p, _) = h.connect("p", SessionMode::Clean);
    // The first block of ids, and the topic's block of sequence numbers.
    for id in 1..=8 {
        h.publish(p, id, "t", QoS::AtMostOnce, b"a");
    }
    assert_eq!(h.deliveries(s).len(), 8);
    // Id 9 starts the next block (8 in unit tests): its message is not
    // delivered while a power cut could still lose the reservation.
    h.auto_persist = false;
    h.publish(p, 9, "t", QoS::AtMostOnce, b"b");
    let last = h.records.last().expect("a record");
    assert_eq!(Record::decode(last), Ok(Record::IdReserve { until: 17 }));
    assert!(h.deliveries(s).is_empty());
    h.persist();
    assert_eq!(payloads(&h.deliveries(s)), [b"b"]);
}

#[test]
fn a_power_cut_that_kept_only_the_synced_records_gives_no_sequence_number_again() {
    let mut h = H::new(Config::default());
    let (c, _) = h.connect("c", SessionMode::Resume);
    publish(&mut h, c, 5);
    assert_eq!(seqs(&h.records), [1, 2, 3, 4, 5]);
    // A store that syncs now and then keeps what must be synced (and what
    // came before it): none of the QoS 1 messages here.
    let kept = &h.records[..h.synced];
    assert!(seqs(kept).is_empty());
    let mut again = H::restored_from(Config::default(), kept);
    let (c, _) = again.connect("c", SessionMode::Resume);
    publish(&mut again, c, 2);
    let new = seqs(&again.records);
    assert!(new.iter().all(|seq| *seq > 5), "{new:?} reuses 1 to 5");
}

#[test]
fn a_qos1_message_in_a_block_a_qos0_one_reserved_gets_a_synced_reservation() {
    let mut h = H::new(Config::default());
    let (c, _) = h.connect("c", SessionMode::Resume);
    // A QoS 0 message's reservation is an ordinary record.
    h.publish(c, 0, "t", QoS::AtMostOnce, b"x");
    publish(&mut h, c, 3);
    assert_eq!(seqs(&h.records), [2, 3, 4]);
    let kept = &h.records[..h.synced];
    let mut again = H::restored_from(Config::default(), kept);
    let (c, _) = again.connect("c", SessionMode::Resume);
    publish(&mut again, c, 1);
    let new = seqs(&again.records);
    assert!(new.iter().all(|seq| *seq > 4), "{new:?} reuses 2 to 4");
}

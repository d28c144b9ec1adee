//! Each decision of the catalog round.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::broker::{OFFLINE_BATCH, OfflineError, OfflineItem};

fn row<'a>(session: &'a str, node: &'a str, filter: &'a str) -> InterestRow<'a> {
    InterestRow {
        session,
        node,
        filter,
        group: None,
    }
}

/// Fan-out interest in `s`, as the broker declares it.
fn fan_out(s: &[&str]) -> Vec<(String, Option<String>)> {
    s.iter().map(|f| (f.to_string(), None)).collect()
}

fn round() -> CatalogRound {
    CatalogRound::new("a", &Config::default())
}

#[test]
fn interest_handed_on_is_the_own_rows_of_other_nodes_groups_included() {
    let grouped = |session| InterestRow {
        group: Some("g"),
        ..row(session, "c", "jobs.>")
    };
    let rows = [
        row("$node.a", "a", "a.>"),
        row("$node.b", "b", "b.>"),
        row("$node.c", "c", "c.1"),
        row("$node.c", "c", "c.2"),
        grouped("$node.c g"),
        // A group's row under another session is not c's own.
        grouped("$node.c"),
        // A client session on node d, not d's own interest.
        row("client-1", "d", "d.>"),
        row("$node.e", "e", "e.>"),
    ];
    let listing = round().listing(&rows, &["a", "b"]);
    assert_eq!(listing.listed, ["a", "b", "c", "d", "e"]);
    let c = vec![("c.1", None), ("c.2", None), ("jobs.>", Some("g"))];
    assert_eq!(listing.away, [("c", c), ("e", vec![("e.>", None)])]);
    // The live ones' too, kept while they are not linked.
    assert_eq!(listing.live, [("b", vec![("b.>", None)])]);
    // This node is never away to itself, live or not.
    let listing = round().listing(&rows[..1], &[]);
    assert_eq!(listing.away, []);
    let listing = round().listing(&rows[..1], &["a"]);
    assert_eq!(listing.live, []);
}

#[test]
fn interest_is_written_as_the_difference_from_the_catalog_or_the_last_write_when_unread() {
    let mut r = round();
    let rows = [
        row("$node.a", "a", "old.>"),
        row("$node.a", "a", "kept"),
        row("client-1", "a", "other"),
    ];
    let write = r.write_interest(Some(&rows), &fan_out(&["kept", "new"]));
    assert_eq!(write.add, fan_out(&["new"]));
    assert_eq!(write.remove, fan_out(&["old.>"]));
    r.handle_interest_written(true);
    let now = [row("$node.a", "a", "kept"), row("$node.a", "a", "new")];
    let write = r.write_interest(Some(&now), &fan_out(&["kept", "new"]));
    assert!(write.is_empty());
    r.handle_interest_written(true);
    // Not read: the last write counts.
    let write = r.write_interest(None, &fan_out(&["new"]));
    assert_eq!(write.remove, fan_out(&["kept"]));
    assert_eq!(write.add, []);
}

#[test]
fn rows_the_catalog_lost_are_written_again() {
    let mut r = round();
    let rows = [row("$node.a", "a", "t")];
    assert!(r.write_interest(Some(&rows), &fan_out(&["t"])).is_empty());
    r.handle_interest_written(true);
    // The catalog came back without its data: nothing of this node's is listed.
    let write = r.write_interest(Some(&[]), &fan_out(&["t"]));
    assert_eq!(write.add, fan_out(&["t"]));
    assert_eq!(write.remove, []);
}

#[test]
fn groups_are_written_each_under_a_session_of_their_own() {
    let mut r = round();
    assert_eq!(r.row_session(None), "$node.a");
    assert_eq!(r.row_session(Some("w")), "$node.a w");
    let old = InterestRow {
        group: Some("old"),
        ..row("$node.a old", "a", "t")
    };
    let rows = [row("$node.a", "a", "t"), old];
    let declared = [
        ("t".to_string(), None),
        ("t".to_string(), Some("w".to_string())),
    ];
    let write = r.write_interest(Some(&rows), &declared);
    assert_eq!(write.add, [("t".to_string(), Some("w".to_string()))]);
    assert_eq!(write.remove, [("t".to_string(), Some("old".to_string()))]);
}

#[test]
fn a_failed_write_reads_the_catalog_again() {
    let mut r = round();
    let rows = [row("$node.a", "a", "x")];
    assert_eq!(
        r.write_interest(Some(&[]), &fan_out(&["x"])).add,
        fan_out(&["x"])
    );
    r.handle_interest_written(false);
    // Had the add been remembered as written, nothing would be added now.
    assert_eq!(
        r.write_interest(Some(&[]), &fan_out(&["x"])).add,
        fan_out(&["x"])
    );
    r.handle_interest_written(false);
    assert!(r.write_interest(Some(&rows), &fan_out(&["x"])).is_empty());
}

#[test]
fn interest_not_read_is_all_added_and_nothing_removed() {
    let mut r = round();
    let write = r.write_interest(None, &fan_out(&["x", "y"]));
    assert_eq!(write.add, fan_out(&["x", "y"]));
    assert_eq!(write.remove, []);
}

fn item(recipient: &str, id: u64) -> OfflineItem {
    OfflineItem {
        recipient: recipient.into(),
        id,
        epoch: 1,
        topic: "t".into(),
        meta: Vec::new(),
        payload: Vec::new(),
        ttl: None,
        group: None,
    }
}

#[test]
fn the_rest_of_a_batch_fails_once_the_catalog_is_unavailable() {
    let mut h = HandOn::new(vec![item("b", 1), item("c", 2), item("b", 3), item("c", 4)]);
    assert_eq!(h.next_item().map(|i| i.id), Some(1));
    h.handle(Handed::Stored);
    assert_eq!(h.next_item().map(|i| i.id), Some(2));
    h.handle(Handed::Full);
    assert_eq!(h.next_item().map(|i| i.id), Some(3));
    h.handle(Handed::Failed);
    assert_eq!(h.next_item(), None);
    let results = h.into_results();
    let want = [
        ("b", 1, Handed::Stored),
        ("c", 2, Handed::Full),
        ("b", 3, Handed::Failed),
        ("c", 4, Handed::Failed),
    ];
    let want: Vec<_> = want.iter().map(|&(r, i, h)| (r.into(), i, h)).collect();
    assert_eq!(results, want);
}

#[test]
fn an_item_not_reported_fails_with_the_rest() {
    let mut h = HandOn::new(vec![item("b", 1), item("b", 2), item("b", 3)]);
    h.next_item();
    h.handle(Handed::Stored);
    h.next_item();
    assert_eq!(h.next_item(), None);
    let results: Vec<Handed> = h.into_results().into_iter().map(|r| r.2).collect();
    assert_eq!(results, [Handed::Stored, Handed::Failed, Handed::Failed]);
    let mut h = HandOn::new(vec![item("b", 1), item("b", 2)]);
    h.next_item();
    let results: Vec<Handed> = h.into_results().into_iter().map(|r| r.2).collect();
    assert_eq!(results, [Handed::Failed, Handed::Failed]);
}

#[test]
fn a_batch_is_given_out_in_runs_for_one_recipient_each() {
    let items = [("b", 1), ("b", 2), ("c", 3), ("b", 4), ("b", 5), ("b", 6)];
    let mut h = HandOn::new(items.iter().map(|&(r, i)| item(r, i)).collect());
    let ids = |run: Vec<OfflineItem>| run.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(h.next_run()), [1, 2]);
    h.handle(Handed::Stored);
    h.handle(Handed::Full);
    assert_eq!(ids(h.next_run()), [3]);
    h.handle(Handed::Stored);
    // A run the catalog could not take: it fails, and the rest with it.
    assert_eq!(ids(h.next_run()), [4, 5, 6]);
    h.handle(Handed::Failed);
    assert!(h.next_run().is_empty());
    let results: Vec<(u64, Handed)> = (h.into_results().into_iter()).map(|r| (r.1, r.2)).collect();
    let failed = Handed::Failed;
    let want = [
        (1, Handed::Stored),
        (2, Handed::Full),
        (3, Handed::Stored),
        (4, failed),
        (5, failed),
        (6, failed),
    ];
    assert_eq!(results, want);
    // A run only partly reported: the rest of it fails when the next is asked for.
    let mut h = HandOn::new(vec![item("b", 1), item("b", 2), item("c", 3)]);
    h.next_run();
    h.handle(Handed::Stored);
    assert!(h.next_run().is_empty());
    let results: Vec<Handed> = h.into_results().into_iter().map(|r| r.2).collect();
    assert_eq!(results, [Handed::Stored, Handed::Failed, Handed::Failed]);
}

#[test]
fn a_run_holds_no_more_than_its_bytes_but_for_its_first_message() {
    let sized = |id, len| OfflineItem {
        payload: vec![0; len],
        ..item("b", id)
    };
    let half = RUN_BYTES / 2;
    let items = vec![
        sized(1, RUN_BYTES * 2),
        sized(2, half),
        sized(3, half - 2),
        sized(4, 1),
    ];
    let mut h = HandOn::new(items);
    let ids = |run: Vec<OfflineItem>| run.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(h.next_run()), [1], "larger than a run: alone");
    h.handle(Handed::Stored);
    // 2 and 3 weigh RUN_BYTES with their topics; 4 goes in the next run.
    assert_eq!(ids(h.next_run()), [2, 3]);
    h.handle(Handed::Stored);
    h.handle(Handed::Stored);
    assert_eq!(ids(h.next_run()), [4]);
}

#[test]
fn batches_follow_one_another_while_full_for_half_a_heartbeat() {
    let beat = core::time::Duration::from_secs(1);
    let ms = core::time::Duration::from_millis;
    assert!(hand_on_again(OFFLINE_BATCH, ms(0), beat));
    assert!(hand_on_again(OFFLINE_BATCH, ms(499), beat));
    assert!(!hand_on_again(OFFLINE_BATCH, ms(500), beat));
    assert!(!hand_on_again(OFFLINE_BATCH - 1, ms(0), beat));
}

/// A round with pages of 4 (a window of 5: the link's credit is 1).
fn small() -> CatalogRound {
    let cfg = Config {
        dedup_window: 5,
        ..Config::default()
    };
    CatalogRound::new("a", &cfg)
}

const OK: Result<(), OfflineError> = Ok(());

#[test]
fn pages_are_no_larger_than_the_window_allows() {
    assert_eq!(round().next_page().max, OFFLINE_BATCH);
    assert_eq!(small().next_page().max, 4);
}

#[test]
fn a_full_page_taken_whole_moves_on_once_acked() {
    let mut r = small();
    assert_eq!(r.next_page().after, None);
    let ack = r.handle_page(&[3, 4, 6, 9], &[OK; 4]);
    assert_eq!(ack, [3, 4, 6, 9]);
    r.handle_acked(true);
    assert_eq!(r.next_page().after, Some(9));
    // Each page once: a read that fails starts from the head.
    assert_eq!(r.next_page().after, None);
}

#[test]
fn a_failed_ack_starts_from_the_head() {
    let mut r = small();
    r.next_page();
    r.handle_page(&[3, 4, 6, 9], &[OK; 4]);
    r.handle_acked(false);
    assert_eq!(r.next_page().after, None);
}

#[test]
fn a_page_not_full_starts_from_the_head() {
    let mut r = small();
    r.next_page();
    assert_eq!(r.handle_page(&[3, 4, 6], &[OK; 3]), [3, 4, 6]);
    r.handle_acked(true);
    assert_eq!(r.next_page().after, None);
}

#[test]
fn rejected_messages_are_removed_and_refused_or_malformed_stay() {
    let mut r = small();
    r.next_page();
    let results = [
        Err(OfflineError::Rejected),
        Err(OfflineError::Malformed),
        OK,
        Err(OfflineError::Refused),
    ];
    assert_eq!(r.handle_page(&[1, 2, 3, 4], &results), [1, 3]);
    r.handle_acked(true);
    // Refused for now: from the head again, in order.
    assert_eq!(r.next_page().after, None);
}

#[test]
fn a_full_page_of_malformed_messages_moves_on_without_an_ack() {
    let mut r = small();
    r.next_page();
    let ack = r.handle_page(&[1, 2, 3, 4], &[Err(OfflineError::Malformed); 4]);
    assert_eq!(ack, Vec::<u64>::new());
    assert_eq!(r.next_page().after, Some(4));
}

#[test]
fn an_empty_page_starts_from_the_head() {
    let mut r = small();
    r.next_page();
    assert_eq!(r.handle_page(&[], &[]), Vec::<u64>::new());
    assert_eq!(r.next_page().after, None);
}

#[test]
fn another_page_is_read_in_the_round_after_a_full_one_taken_and_acked() {
    let beat = core::time::Duration::from_secs(1);
    let at = core::time::Duration::from_millis;
    let mut r = small();
    assert!(!r.drain_again(at(0), beat), "nothing read yet");
    r.next_page();
    r.handle_page(&[3, 4, 6, 9], &[OK; 4]);
    assert!(!r.drain_again(at(0), beat), "its ack first");
    r.handle_acked(true);
    assert!(r.drain_again(at(499), beat));
    assert!(!r.drain_again(at(500), beat), "half the heartbeat is spent");
    // A page not full, a refused message, a failed ack: the next round.
    r.next_page();
    r.handle_page(&[10, 11], &[OK; 2]);
    r.handle_acked(true);
    assert!(!r.drain_again(at(0), beat));
    r.next_page();
    r.handle_page(&[1, 2, 3, 4], &[OK, OK, Err(OfflineError::Refused), OK]);
    r.handle_acked(true);
    assert!(!r.drain_again(at(0), beat));
    r.next_page();
    r.handle_page(&[1, 2, 3, 4], &[OK; 4]);
    r.handle_acked(false);
    assert!(!r.drain_again(at(0), beat));
}

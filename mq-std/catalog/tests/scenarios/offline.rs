//! Offline queues: order, ack, idempotence, bounds, expiry, and two nodes at
//! once.

use std::time::Duration;

use mq_catalog::{Catalog, Enqueued, Envelope, Error};

use super::NewPlace;
use crate::support::{envelope, eventually, seqs_from};

async fn stored(catalog: &Catalog, recipient: &str, message: &Envelope) -> u64 {
    match catalog.enqueue(recipient, message).await.unwrap() {
        Enqueued::Stored(id) => id,
        other => panic!("enqueue of a new message: {other:?}"),
    }
}

pub async fn offline_reads_in_order_and_removes_only_on_ack(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let mut ids = Vec::new();
    for seq in 1..=5 {
        ids.push(stored(&catalog, "r1", &envelope("a", seq)).await);
    }
    let other = stored(&catalog, "r2", &envelope("a", 1)).await;
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let all = catalog.read("r1", None, 100).await.unwrap().messages;
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    for (seq, message) in (1..).zip(&all) {
        let sent = envelope("a", seq);
        assert_eq!(
            (
                &message.topic,
                &message.payload,
                &message.meta,
                &message.origin
            ),
            (&sent.topic, &sent.payload, &sent.meta, &sent.origin)
        );
        assert_eq!(message.expires_at, None);
    }
    assert!(all.windows(2).all(|w| w[0].enqueued_at <= w[1].enqueued_at));

    assert!(
        catalog
            .read("r1", None, 0)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    // Paging after an id; reading removes nothing.
    let page = catalog.read("r1", Some(ids[1]), 2).await.unwrap().messages;
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), &ids[2..4]);
    assert_eq!(catalog.queue_len("r1").await.unwrap(), 5);

    assert_eq!(catalog.ack("r1", &ids[..2]).await.unwrap(), 2);
    assert_eq!(
        catalog.ack("r1", &ids[..2]).await.unwrap(),
        0,
        "acked twice"
    );
    assert_eq!(catalog.ack("r1", &[other]).await.unwrap(), 0, "r2's id");
    let rest = catalog.read("r1", None, 100).await.unwrap().messages;
    assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), &ids[2..]);
    assert_eq!(catalog.queue_len("r2").await.unwrap(), 1);
    assert_eq!(catalog.ack("r1", &ids[2..]).await.unwrap(), 3);
    assert!(
        catalog
            .read("r1", None, 100)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(catalog.queue_len("r1").await.unwrap(), 0);
    place.clean().await;
}

pub async fn enqueue_is_idempotent_on_the_origin(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let first = stored(&catalog, "r", &envelope("a", 1)).await;
    let retry = catalog.enqueue("r", &envelope("a", 1)).await.unwrap();
    assert_eq!(retry, Enqueued::Duplicate(first));
    assert_eq!(catalog.queue_len("r").await.unwrap(), 1);

    // Another incarnation, node or recipient is another message.
    let mut restarted = envelope("a", 1);
    restarted.origin.incarnation += 1;
    stored(&catalog, "r", &restarted).await;
    stored(&catalog, "r", &envelope("b", 1)).await;
    stored(&catalog, "s", &envelope("a", 1)).await;
    assert_eq!(catalog.queue_len("r").await.unwrap(), 3);
    // A group's job is filed under its node and group (`OfflineItem::origin`).
    stored(&catalog, "r", &envelope("a 3 t.> w", 1)).await;
    let again = catalog.enqueue("r", &envelope("a 3 t.> w", 1)).await;
    assert!(matches!(again, Ok(Enqueued::Duplicate(_))));
    assert_eq!(catalog.queue_len("r").await.unwrap(), 4);
    place.clean().await;
}

pub async fn queues_are_bounded(place: NewPlace) {
    let place = place().with_queue_limit(3);
    let catalog = place.open().await;
    let mut ids = Vec::new();
    for seq in 1..=3 {
        ids.push(stored(&catalog, "r", &envelope("a", seq)).await);
    }
    match catalog.enqueue("r", &envelope("a", 4)).await {
        Err(Error::QueueFull { recipient, limit }) => {
            assert_eq!((recipient.as_str(), limit), ("r", 3))
        }
        other => panic!("the fourth message: {other:?}"),
    }
    // A retry of a stored message is still recognised when full.
    assert_eq!(
        catalog.enqueue("r", &envelope("a", 3)).await.unwrap(),
        Enqueued::Duplicate(ids[2])
    );
    // Other recipients have queues of their own.
    stored(&catalog, "s", &envelope("a", 4)).await;
    // Nothing was dropped; an ack makes room.
    let kept = catalog.read("r", None, 10).await.unwrap().messages;
    assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    catalog.ack("r", &ids[..1]).await.unwrap();
    stored(&catalog, "r", &envelope("a", 4)).await;
    assert_eq!(catalog.queue_len("r").await.unwrap(), 3);
    place.clean().await;
}

pub async fn expired_messages_are_neither_read_nor_counted(place: NewPlace) {
    let place = place().with_queue_limit(2);
    let catalog = place.open().await;
    let short = Envelope {
        ttl: Some(Duration::from_millis(300)),
        ..envelope("a", 1)
    };
    stored(&catalog, "r", &short).await;
    let kept = stored(&catalog, "r", &envelope("a", 2)).await;
    let read = catalog.read("r", None, 10).await.unwrap().messages;
    assert_eq!(read.len(), 2);
    assert!(
        read[0]
            .expires_at
            .is_some_and(|at| at > read[0].enqueued_at)
    );
    eventually("the short TTL expires", Duration::from_secs(30), || async {
        catalog.read("r", None, 10).await.unwrap().messages.len() == 1
    })
    .await;
    assert_eq!(
        catalog.read("r", None, 10).await.unwrap().messages[0].id,
        kept
    );
    // Counted as read: the expired one is not, though still stored.
    assert_eq!(catalog.queue_len("r").await.unwrap(), 1);
    // The queue is at its limit of two only with the expired one counted:
    // the next enqueue drops it and fits.
    stored(&catalog, "r", &envelope("a", 3)).await;
    assert_eq!(catalog.queue_len("r").await.unwrap(), 2);
    place.clean().await;
}

/// Two handles (two nodes, for SQLite two connections to one file) register,
/// enqueue for one recipient and read at the same time.
pub async fn two_nodes_share_one_catalog_concurrently(place: NewPlace) {
    const EACH: u64 = 100;
    let place = place().with_queue_limit(2 * EACH);
    let (one, two) = (place.open().await, place.open().await);
    let node = |catalog: Catalog, name: &'static str| async move {
        let me = catalog
            .register(name, "h:1", Duration::from_secs(60))
            .await
            .unwrap();
        for seq in 1..=EACH {
            stored(&catalog, "r", &envelope(name, seq)).await;
            if seq % 10 == 0 {
                catalog
                    .heartbeat(&me, Duration::from_secs(60))
                    .await
                    .unwrap();
                catalog.read("r", None, 20).await.unwrap();
            }
        }
        (catalog, me)
    };
    let (first, second) = tokio::join!(tokio::spawn(node(one, "a")), tokio::spawn(node(two, "b")));
    let ((one, a), (two, b)) = (first.unwrap(), second.unwrap());
    assert_ne!(a.incarnation, b.incarnation);
    assert_eq!(one.live_nodes().await.unwrap().nodes.len(), 2);
    assert_eq!(two.queue_len("r").await.unwrap(), 2 * EACH);

    // Every message once, in order per origin.
    let all = one.read("r", None, 1000).await.unwrap().messages;
    for origin in ["a", "b"] {
        assert_eq!(
            seqs_from(&all, origin),
            (1..=EACH).collect::<Vec<_>>(),
            "from {origin}"
        );
    }

    // Both deliver the same queue: at least once, and each id acked once.
    let ids: Vec<u64> = all.iter().map(|m| m.id).collect();
    let (half_one, half_two) = ids.split_at(ids.len() / 2);
    let (acked_one, acked_two) = tokio::join!(one.ack("r", &ids), two.ack("r", half_two));
    let (acked_one, acked_two) = (acked_one.unwrap(), acked_two.unwrap());
    assert_eq!(
        acked_one + acked_two,
        2 * EACH,
        "{} + {}",
        half_one.len(),
        half_two.len()
    );
    assert_eq!(one.queue_len("r").await.unwrap(), 0);

    // Both register the same node at once: two incarnations, the older fenced.
    let (x, y) = tokio::join!(
        one.register("c", "h:1", Duration::from_secs(60)),
        two.register("c", "h:2", Duration::from_secs(60))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let (older, newer) = if x.incarnation < y.incarnation {
        (x, y)
    } else {
        (y, x)
    };
    assert!(matches!(
        one.heartbeat(&older, Duration::from_secs(60)).await,
        Err(Error::Fenced { .. })
    ));
    two.heartbeat(&newer, Duration::from_secs(60))
        .await
        .unwrap();
    place.clean().await;
}

/// Two nodes enqueue for one recipient at once, past its bound: exactly the
/// limit is stored, every other attempt is told the queue is full.
pub async fn concurrent_enqueues_respect_the_bound(place: NewPlace) {
    const LIMIT: u64 = 30;
    let place = place().with_queue_limit(LIMIT);
    let (one, two) = (place.open().await, place.open().await);
    let node = |catalog: Catalog, name: &'static str| async move {
        let (mut stored, mut full) = (0, 0);
        for seq in 1..=LIMIT {
            match catalog.enqueue("r", &envelope(name, seq)).await {
                Ok(Enqueued::Stored(_)) => stored += 1,
                Err(Error::QueueFull { .. }) => full += 1,
                other => panic!("enqueue from {name}: {other:?}"),
            }
        }
        (stored, full)
    };
    let (a, b) = tokio::join!(tokio::spawn(node(one, "a")), tokio::spawn(node(two, "b")));
    let ((stored_a, full_a), (stored_b, full_b)) = (a.unwrap(), b.unwrap());
    assert_eq!(stored_a + stored_b, LIMIT);
    assert_eq!(full_a + full_b, LIMIT);
    let catalog = place.open().await;
    assert_eq!(catalog.queue_len("r").await.unwrap(), LIMIT);
    place.clean().await;
}

pub async fn enqueue_all_answers_each_message_in_order(place: NewPlace) {
    let place = place().with_queue_limit(3);
    let catalog = place.open().await;
    let first = stored(&catalog, "r", &envelope("a", 1)).await;
    let batch = [
        envelope("a", 2),
        envelope("a", 1),
        envelope("a", 2),
        envelope("a", 3),
        envelope("a", 4),
    ];
    let answers = catalog.enqueue_all("r", &batch).await.unwrap();
    assert_eq!(answers.len(), 5);
    let Ok(Enqueued::Stored(second)) = answers[0] else {
        panic!("a new message: {:?}", answers[0]);
    };
    assert!(second > first);
    // Duplicates of one stored before and of one earlier in the batch.
    assert!(matches!(answers[1], Ok(Enqueued::Duplicate(id)) if id == first));
    assert!(matches!(answers[2], Ok(Enqueued::Duplicate(id)) if id == second));
    assert!(matches!(answers[3], Ok(Enqueued::Stored(id)) if id > second));
    assert!(matches!(answers[4], Err(Error::QueueFull { limit: 3, .. })));
    let read = catalog.read("r", None, 10).await.unwrap().messages;
    let seqs: Vec<u64> = read.iter().map(|m| m.origin.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(read[1].payload, batch[0].payload);
    assert!(catalog.enqueue_all("r", &[]).await.unwrap().is_empty());
    // A message that is not valid: the call fails, nothing is stored.
    let mut bad = envelope("b", 9);
    bad.topic.clear();
    catalog.ack("r", &[first]).await.unwrap();
    let refused = catalog.enqueue_all("r", &[envelope("b", 8), bad]).await;
    assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
    assert_eq!(catalog.queue_len("r").await.unwrap(), 2);
    place.clean().await;
}

/// A row that cannot be decoded (a negative origin sequence; a TEXT payload,
/// an enqueue time before 1970 or a Redis hash evicted) is skipped and
/// reported by id: the messages behind it are still read, paging goes past
/// it, and an ack removes it.
pub async fn an_unreadable_message_does_not_hold_back_the_others(place: NewPlace) {
    let place = place();
    let catalog = place.open().await;
    let mut ids = Vec::new();
    for seq in 1..=5 {
        ids.push(stored(&catalog, "r", &envelope("a", seq)).await);
    }
    place.corrupt_message("r", ids[0]).await;
    place.garble_message("r", ids[2]).await;

    let page = catalog.read("r", None, 10).await.unwrap();
    assert_eq!(seqs_from(&page.messages, "a"), [2, 4, 5]);
    let bad: Vec<u64> = page.unreadable.iter().map(|u| u.id).collect();
    assert_eq!(bad, [ids[0], ids[2]]);
    for unreadable in &page.unreadable {
        assert!(
            matches!(unreadable.reason, Error::Malformed(_)),
            "{unreadable:?}"
        );
    }
    assert_eq!(page.last_id(), Some(ids[4]));
    // A page of two rows: one unreadable, one message; the next starts
    // after both.
    let first = catalog.read("r", None, 2).await.unwrap();
    assert_eq!((first.rows(), first.last_id()), (2, Some(ids[1])));
    assert_eq!(seqs_from(&first.messages, "a"), [2]);
    let next = catalog.read("r", first.last_id(), 2).await.unwrap();
    assert_eq!(seqs_from(&next.messages, "a"), [4]);
    assert_eq!(
        next.unreadable.iter().map(|u| u.id).collect::<Vec<_>>(),
        [ids[2]]
    );

    // They stay, counted, until acked; then the rest reads clean.
    assert_eq!(catalog.queue_len("r").await.unwrap(), 5);
    assert_eq!(catalog.ack("r", &bad).await.unwrap(), 2);
    assert_eq!(catalog.queue_len("r").await.unwrap(), 3);
    let rest = catalog.read("r", None, 10).await.unwrap();
    assert_eq!(seqs_from(&rest.messages, "a"), [2, 4, 5]);
    assert!(rest.unreadable.is_empty(), "{:?}", rest.unreadable);
    place.clean().await;
}
